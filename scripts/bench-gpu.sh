#!/usr/bin/env bash
# The worker on a GPU machine, in one run: synthetic 1B and 8B Q8_0 models, bench-worker (rbee over HTTP, and the
# plain node-llama-cpp way as the in-run reference) at 1, 8 and 32 streams, the backend fallback, and VRAM freed on exit.
#   bash scripts/bench-gpu.sh [OUT_DIR]          (on the GPU machine, after ../shared/gpu's set-up; see docs/performance.md)
set -uo pipefail
OUT=${1:-${OUT:-/tmp/rbee-gpu}}
MODELS=${MODELS:-/opt/models}
mkdir -p "$OUT" "$MODELS"
vram_used() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"

for shape in 1b 8b; do
  [ -f "$MODELS/$shape.gguf" ] || bun scripts/synth-model.ts "$MODELS/$shape.gguf" --shape "$shape"
done

echo "== backend choice"
for visible in "" "-1"; do
  log="$OUT/worker-auto${visible:+-no-cuda}.log"
  if [ -n "$visible" ]; then export CUDA_VISIBLE_DEVICES=$visible; else unset CUDA_VISIBLE_DEVICES; fi
  RBEE_CACHE_DIR="$OUT/cache${visible}" bun src/cli.ts worker --model "$MODELS/1b.gguf" --port 8399 --gpu auto 2>"$log" &
  pid=$!
  for _ in $(seq 1 600); do curl -sf localhost:8399/v1/ready | grep -q '"ready":true' && break; sleep 0.2; done
  echo "CUDA_VISIBLE_DEVICES='$visible': $(curl -s localhost:8399/v1/ready)" | tee -a "$OUT/backend.txt"
  grep -h '"level":"warn"' "$log" | tee -a "$OUT/backend.txt"
  curl -s -X POST localhost:8399/v1/shutdown >/dev/null; wait $pid
done
unset CUDA_VISIBLE_DEVICES
rm -rf "$OUT"/cache*

for shape in 1b 8b; do
  echo "== $shape"
  before=$(vram_used)
  bun scripts/bench-worker.ts --model "$MODELS/$shape.gguf" --gpu cuda --rounds 3 --json >"$OUT/bench-$shape.json" 2>"$OUT/bench-$shape.log"
  after=$(vram_used)
  echo "$shape: VRAM used before ${before} MiB, after the worker exited ${after} MiB" | tee -a "$OUT/vram.txt"
  bun -e '
    const r = JSON.parse(await Bun.file(process.argv[1]).text());
    for (const [i, x] of r.rbee.entries()) { const n = r.reference[i];
      console.log(`${x.concurrency}\trbee ${x.tokensPerS.toFixed(0)} tok/s\tTTFT p50 ${x.ttftP50Ms.toFixed(1)} p99 ${x.ttftP99Ms.toFixed(1)} ms\tnaive ${n ? n.tokensPerS.toFixed(0) : "-"} tok/s\tratio ${n ? (x.tokensPerS / n.tokensPerS).toFixed(2) : "-"}`); }
  ' "$OUT/bench-$shape.json" | tee "$OUT/table-$shape.txt"
done
