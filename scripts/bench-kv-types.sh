#!/usr/bin/env bash
# KV cache types on a GPU machine (issue 33): for the synthetic 1B and 8B, a worker of 32 slots × CTX tokens with
# --kv-type f16, q8_0 and q4_0 in turn: the types it made, the VRAM llama.cpp allocated for the context against rbee's
# estimate (src/inference/memory-plan.ts) and nvidia-smi's figure, and tok/s at 1, 8 and 32 streams (bench-worker over
# HTTP, 128 tokens, median of three rounds). f16 is the reference in the same run.
#   bash scripts/bench-kv-types.sh [OUT_DIR]     (after ../shared/gpu's set-up and scripts/bench-gpu.sh's INSTALL_ONLY=1)
set -uo pipefail
OUT=${1:-${OUT:-/tmp/rbee-kv}}
MODELS=${MODELS:-/opt/models}
CTX=${CTX:-4096}
SHAPES=${SHAPES:-1b 8b}
mkdir -p "$OUT" "$MODELS"
source "$(dirname "$0")/lib/worker-up.sh"
vram_used() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
echo "| model | kv | made | context VRAM (llama.cpp) | estimate | nvidia-smi +MiB | tok/s 1 / 8 / 32 |" | tee "$OUT/table.md"
echo "| --- | --- | --- | --- | --- | --- | --- |" | tee -a "$OUT/table.md"
for shape in $SHAPES; do
  model="$MODELS/$shape.gguf"
  [ -f "$model" ] || bun scripts/synth-model.ts "$model" --shape "$shape"
  for kv in f16 q8_0 q4_0; do
    before=$(vram_used)
    if ! worker_up 8396 "$OUT/worker-$shape-$kv.log" --model "$model" --gpu cuda --slots 32 --ctx "$CTX" --queue 256 --kv-type "$kv"; then
      echo "| $shape | $kv | refused: $(tail -1 "$OUT/worker-$shape-$kv.log" | cut -c1-200) | | | | |" | tee -a "$OUT/table.md"
      continue
    fi
    during=$(vram_used)
    bun scripts/bench-worker.ts --url http://127.0.0.1:8396 --rounds 3 --json >"$OUT/bench-$shape-$kv.json" 2>/dev/null
    bun -e '
      import { statSync } from "node:fs";
      import { readModelShape } from "./src/inference/gguf-metadata";
      import { estimateMemory } from "./src/inference/memory-plan";
      const [model, shape, kv, ctx, ready, before, during, bench] = process.argv.slice(1);
      const r = JSON.parse(ready), MiB = 2 ** 20;
      const e = estimateMemory(await readModelShape(model), { weightsBytes: statSync(model).size, slots: 32, ctxPerSlot: +ctx, onGpu: true, kv: { k: kv, v: kv } });
      const rates = JSON.parse(await Bun.file(bench).text()).rbee.map((x) => x.tokensPerS.toFixed(0)).join(" / ");
      const context = r.context_bytes.vram / MiB, estimate = (e.kvBytes + e.computeBytes) / MiB;
      console.log(`| ${shape} | ${kv} | ${r.kv_types.k}/${r.kv_types.v} | ${context.toFixed(0)} MiB | ${estimate.toFixed(0)} MiB (${(estimate / context).toFixed(3)}) | ${+during - +before} | ${rates} |`);
    ' "$model" "$shape" "$kv" "$CTX" "$ready" "$before" "$during" "$OUT/bench-$shape-$kv.json" | tee -a "$OUT/table.md"
    worker_down 8396
  done
done
