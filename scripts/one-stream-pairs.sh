#!/usr/bin/env bash
# One stream against llama-bench's tg128, alternating in one run (the lent GPU machines drift by more than the gap):
# each pair is llama-bench (5 repetitions), then a fresh worker (32 slots) measured by bench-worker.ts at one stream for
# 12 requests of 128 tokens. Prints both and their ratio, end to end and per stream after the first token.
#   bash scripts/one-stream-pairs.sh MODEL.gguf [PAIRS]   (on the GPU machine, after bench-gpu.sh's set-up: INSTALL_ONLY=1)
set -uo pipefail
model=${1:?model} pairs=${2:-8}
bins=node_modules/@node-llama-cpp/linux-x64-cuda/bins/linux-x64-cuda
for _ in $(seq "$pairs"); do
  tg=$("$bins/llama-bench" -m "$model" -p 0 -n 128 -r 5 -o json 2>/dev/null | bun -e 'console.log(JSON.parse(await Bun.stdin.text())[0].avg_ts.toFixed(1))')
  bun scripts/bench-worker.ts --model "$model" --gpu cuda --levels 1 --rounds 12 --json --no-reference 2>/dev/null | bun -e '
    const x = JSON.parse(await Bun.stdin.text()).rbee[0], tg = Number(process.argv[1]);
    const pct = (v) => `${(100 * v / tg).toFixed(1)}%`;
    console.log(`llama-bench ${tg}\trbee ${x.tokensPerS.toFixed(0)} (${pct(x.tokensPerS)})\tper stream ${x.decodeTokensPerS.toFixed(0)} (${pct(x.decodeTokensPerS)})\tTTFT p50 ${x.ttftP50Ms.toFixed(1)} ms`);
  ' "$tg"
done
