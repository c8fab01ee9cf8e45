#!/usr/bin/env bash
# The worker on a GPU machine, in one run: synthetic 1B and 8B Q8_0 models; llama.cpp's own llama-bench,
# llama-batched-bench and llama-server (over HTTP, with the same client) on them; bench-worker over HTTP at 1, 8 and 32
# streams with rbee's rebuilt addon and, as the in-run reference, with the stock addon (RBEE_STOCK_ADDON=1); the
# backend fallback; and VRAM freed on exit.
#   bash scripts/bench-gpu.sh [OUT_DIR]          (on the GPU machine, after ../shared/gpu's set-up; see docs/performance.md)
# ADDON_DIR: a llama-addon.node linked here against that machine's CUDA build (scripts/build-addon.ts --into), put in
# place first, and ADDON_DIR/tools: llama.cpp's tools built by scripts/build-llama-tools.sh against that CUDA build
# (LLAMA=0 skips them). BACKEND_CHECK=0 skips the fallback check; NAIVE=1 adds node-llama-cpp's plain way as a third run.
set -uo pipefail
OUT=${1:-${OUT:-/tmp/rbee-gpu}}
MODELS=${MODELS:-/opt/models}
mkdir -p "$OUT" "$MODELS"
vram_used() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"

ADDON_DIR=${ADDON_DIR:-.device/c}
CUDA_BINS=node_modules/@node-llama-cpp/linux-x64-cuda/bins/linux-x64-cuda
if [ -f "$ADDON_DIR/llama-addon.node" ] && [ -d "$CUDA_BINS" ]; then
  cp "$ADDON_DIR/llama-addon.node" "$CUDA_BINS/llama-addon.node.new" && mv "$CUDA_BINS/llama-addon.node.new" "$CUDA_BINS/llama-addon.node"
  cp "$ADDON_DIR/rbee-addon.json" "$CUDA_BINS/" && echo "rbee addon installed in $CUDA_BINS"
fi

if [ -d "$ADDON_DIR/tools" ] && [ -d "$CUDA_BINS" ]; then cp "$ADDON_DIR"/tools/* "$CUDA_BINS/"; fi
# llama.cpp's RPC backend and rpc-server linked against that build (scripts/build-addon.ts --into puts them in rpc/).
if [ -d "$ADDON_DIR/rpc" ] && [ -d "$CUDA_BINS" ]; then rm -rf "$CUDA_BINS/rpc" && cp -r "$ADDON_DIR/rpc" "$CUDA_BINS/rpc"; fi

[ "${INSTALL_ONLY:-0}" = 1 ] && exit 0

# llama.cpp on the same model and GPU: llama-bench tg128, llama-batched-bench's decode speed at 1/8/32 sequences, and
# llama-server with 32 slots measured by the same HTTP client as rbee.
llama_cpp_reference() {
  local model=$1 shape=$2
  "$CUDA_BINS/llama-bench" -m "$model" -p 0 -n 128 -r 5 2>/dev/null | tee "$OUT/llama-bench-$shape.md" | grep tg128
  "$CUDA_BINS/llama-batched-bench" -m "$model" -c 16384 -b 2048 -ub 512 -npp 128 -ntg 128 -npl 1,8,32 2>/dev/null |
    tee "$OUT/llama-batched-bench-$shape.md" | grep '^|'
  "$CUDA_BINS/llama-server" -m "$model" --port 8398 -np 32 -c $((32 * 256)) --no-webui >"$OUT/llama-server-$shape.log" 2>&1 &
  local server=$!
  for _ in $(seq 1 600); do curl -sf localhost:8398/health >/dev/null && break; sleep 0.2; done
  bun scripts/bench-worker.ts --url http://127.0.0.1:8398 --rounds 3 --json >"$OUT/llama-server-$shape.json"
  kill $server; wait $server 2>/dev/null
  bun -e 'for (const x of JSON.parse(await Bun.file(process.argv[1]).text()).rbee) console.log(`llama-server ${x.concurrency}\t${x.tokensPerS.toFixed(0)} tok/s (${x.decodeTokensPerS.toFixed(0)} per stream after the first token) TTFT p50 ${x.ttftP50Ms.toFixed(1)} p99 ${x.ttftP99Ms.toFixed(1)} ms`)' "$OUT/llama-server-$shape.json" | tee -a "$OUT/table-$shape.txt"
}

for shape in 1b 8b; do
  [ -f "$MODELS/$shape.gguf" ] || bun scripts/synth-model.ts "$MODELS/$shape.gguf" --shape "$shape"
done

# A worker on the 1B at port 8399 with the given options, its stderr in $1, once it is ready; worker_down stops it.
# Settings for it go before the call (VAR=value worker_up …): bash passes them to the worker.
worker_up() {
  local log=$1; shift
  bun src/cli.ts worker --model "$MODELS/1b.gguf" --port 8399 "$@" 2>"$log" &
  worker_pid=$!
  for _ in $(seq 1 600); do curl -sf localhost:8399/v1/ready | grep -q '"ready":true' && break; sleep 0.2; done
}
worker_down() { curl -s -X POST localhost:8399/v1/shutdown >/dev/null; wait "$worker_pid"; }

[ "${BACKEND_CHECK:-1}" = 1 ] && echo "== backend choice" && for visible in "" "-1"; do
  log="$OUT/worker-auto${visible:+-no-cuda}.log"
  if [ -n "$visible" ]; then export CUDA_VISIBLE_DEVICES=$visible; else unset CUDA_VISIBLE_DEVICES; fi
  RBEE_CACHE_DIR="$OUT/cache${visible}" worker_up "$log" --gpu auto
  echo "CUDA_VISIBLE_DEVICES='$visible': $(curl -s localhost:8399/v1/ready)" | tee -a "$OUT/backend.txt"
  grep -h '"level":"warn"' "$log" | tee -a "$OUT/backend.txt"
  worker_down
done
unset CUDA_VISIBLE_DEVICES
rm -rf "$OUT"/cache*

# The graph keys (src/inference/native/graph-keys.cpp) must not change what the worker generates, and neither must the
# slot count nor the run: greedy text of 4-slot workers with and without the keys and of a one-slot worker twice.
# Each worker is asked twice: the second time its slot holds the prompt (prompt cache) and only the prompt's last token is
# evaluated again, as a batch of one, which the GPU computes with other kernels than a batch of the whole prompt: on a
# synthetic model's nearly flat logits the text may then part from the fresh one after a while (llama-server's
# cache_prompt documents the same). Fresh texts must all be the same, and so must cached ones.
greedy() { # name, slots (settings before the call go to the worker)
  worker_up /dev/null --gpu cuda --slots "$2"
  for run in "" -cached; do
    curl -s localhost:8399/v1/completions -H 'content-type: application/json' \
      -d '{"prompt":"Once upon a time","max_tokens":200,"temperature":0,"ignore_eos":true}' | bun -e 'console.log(JSON.parse(await Bun.stdin.text()).choices[0].text)' >"$OUT/greedy-$1$run.txt"
  done
  worker_down
}
[ "${BACKEND_CHECK:-1}" = 1 ] && echo "== greedy text: 4 slots with and without graph keys, 1 slot twice; fresh, then from the prompt cache" && {
  greedy slots4 4; RBEE_GRAPH_KEYS=0 greedy slots4-no-keys 4; greedy slots1-a 1; greedy slots1-b 1
  for run in "" -cached; do
    for other in slots4-no-keys slots1-a slots1-b; do
      cmp -s "$OUT/greedy-slots4$run.txt" "$OUT/greedy-$other$run.txt" && echo "$other$run: same text" || echo "$other$run: TEXT DIFFERS"
    done
  done
  bun -e 'const [a, b] = await Promise.all(process.argv.slice(1).map(async (f) => (await Bun.file(f).text()).split(" ")));
    let i = 0; while (i < a.length && a[i] === b[i]) i++;
    console.log(i === a.length && a.length === b.length ? "cached text: same as fresh" : `cached text: same as fresh for ${i} of ${a.length} words`);' "$OUT/greedy-slots4.txt" "$OUT/greedy-slots4-cached.txt"
}

reference=$([ "${NAIVE:-0}" = 1 ] || echo --no-reference)
for shape in ${SHAPES:-1b 8b}; do
  echo "== $shape"
  [ "${LLAMA:-1}" = 1 ] && [ -x "$CUDA_BINS/llama-server" ] && llama_cpp_reference "$MODELS/$shape.gguf" "$shape"
  before=$(vram_used)
  bun scripts/bench-worker.ts --model "$MODELS/$shape.gguf" --gpu cuda --rounds 3 --json $reference >"$OUT/bench-$shape.json" 2>"$OUT/bench-$shape.log"
  RBEE_STOCK_ADDON=1 bun scripts/bench-worker.ts --model "$MODELS/$shape.gguf" --gpu cuda --rounds 3 --json --no-reference >"$OUT/bench-$shape-stock.json" 2>"$OUT/bench-$shape-stock.log"
  after=$(vram_used)
  echo "$shape: VRAM used before ${before} MiB, after the workers exited ${after} MiB" | tee -a "$OUT/vram.txt"
  grep -ho '"sampling":"[a-z-]*"\|sampling[^,}]*' "$OUT/bench-$shape.log" "$OUT/bench-$shape-stock.log" | sort | uniq -c
  bun -e '
    const r = JSON.parse(await Bun.file(process.argv[1]).text()), s = JSON.parse(await Bun.file(process.argv[2]).text());
    for (const [i, x] of r.rbee.entries()) { const st = s.rbee[i], n = r.reference?.[i];
      console.log(`${x.concurrency}\tbatched ${x.tokensPerS.toFixed(0)} tok/s (${x.decodeTokensPerS.toFixed(0)} per stream after the first token) TTFT p50 ${x.ttftP50Ms.toFixed(1)} p99 ${x.ttftP99Ms.toFixed(1)} ms\tstock ${st.tokensPerS.toFixed(0)} tok/s TTFT p50 ${st.ttftP50Ms.toFixed(1)} ms\tratio ${(x.tokensPerS / st.tokensPerS).toFixed(2)}${n ? `\tnaive ${n.tokensPerS.toFixed(0)}` : ""}`); }
  ' "$OUT/bench-$shape.json" "$OUT/bench-$shape-stock.json" | tee -a "$OUT/table-$shape.txt"
done
