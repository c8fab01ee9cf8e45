#!/usr/bin/env bash
# On a GPU machine: what a worker takes for 4, 32 and 64 slots (the VRAM it reports, what llama.cpp allocated for the
# context, nvidia-smi's figure) against rbee's estimate (src/inference/memory-plan.ts), and VRAM after it exits.
#   bash scripts/gpu-memory.sh MODEL.gguf CTX [SLOTS...]      (after ../shared/gpu's set-up; see docs/performance.md)
set -uo pipefail
model=${1:?model}; ctx=${2:?ctx per slot}; shift 2
source "$(dirname "$0")/lib/worker-up.sh"
vram_used() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1; }
counts=("$@"); [ ${#counts[@]} -gt 0 ] || counts=(4 32 64)
for slots in "${counts[@]}"; do
  before=$(vram_used)
  if ! worker_up 8397 /tmp/gpu-memory-worker.log --model "$model" --gpu cuda --slots "$slots" --ctx "$ctx"; then
    echo "$slots slots x $ctx: refused: $(grep -o '"msg":"[^"]*' /tmp/gpu-memory-worker.log | tail -1)"
    continue
  fi
  during=$(vram_used)
  bun -e '
    import { statSync } from "node:fs";
    import { readModelShape } from "./src/inference/gguf-metadata";
    import { estimateMemory } from "./src/inference/memory-plan";
    const [model, slots, ctx, ready, before, during] = process.argv.slice(1);
    const r = JSON.parse(ready), MiB = 2 ** 20;
    const e = estimateMemory(await readModelShape(model), { weightsBytes: statSync(model).size, slots: +slots, ctxPerSlot: +ctx, onGpu: true });
    const smi = (+during - +before);
    console.log(`${slots} slots x ${r.ctx_per_slot}: worker reports ${(r.vram_bytes / MiB).toFixed(0)} MiB VRAM (context ${(r.context_bytes.vram / MiB).toFixed(0)} MiB), nvidia-smi +${smi} MiB; estimate ${(e.vramBytes / MiB).toFixed(0)} MiB (weights ${(e.weightsBytes / MiB).toFixed(0)}, KV ${(e.kvBytes / MiB).toFixed(0)}, compute ${(e.computeBytes / MiB).toFixed(0)}): estimate/reported ${(e.vramBytes / r.vram_bytes).toFixed(3)}, context estimate/llama.cpp ${((e.kvBytes + e.computeBytes) / r.context_bytes.vram).toFixed(3)}`);
  ' "$model" "$slots" "$ctx" "$ready" "$before" "$during"
  worker_down 8397
  echo "   VRAM after exit: $(vram_used) MiB (before: $before MiB)"
done
