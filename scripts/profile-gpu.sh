#!/usr/bin/env bash
# Where a step's time goes on the GPU machine, for the synthetic 1B: the raw loop without HTTP (profile-step.ts, stock
# and batched sampling), then the worker over HTTP with RBEE_PROFILE_STEPS=1 (native call, JavaScript between calls,
# token emission, per step, logged each time the worker goes idle): one worker per concurrency, then one for all.
#   bash scripts/profile-gpu.sh [MODEL]    (on the GPU machine, after bench-gpu.sh's set-up)
set -uo pipefail
MODEL=${1:-/opt/models/1b.gguf}
[ -f "$MODEL" ] || bun scripts/synth-model.ts "$MODEL" --shape 1b
[ "${RAW:-1}" = 1 ] && bun scripts/profile-step.ts "$MODEL" --gpu cuda --threads ${THREADS:-1,16} --fa ${FA:-on,off} --temperature 0.8 --streams 1,8,32 --sampling stock,batched
for levels in ${LEVELS:-1 8 32 1,8,32}; do
  echo "== levels $levels"
  RBEE_PROFILE_STEPS=1 bun scripts/bench-worker.ts --model "$MODEL" --gpu cuda --levels $levels --rounds 3 --no-reference 2>&1 | grep -v "^model\|concurrent" | sed 's/.*"steps"/steps/'
done
