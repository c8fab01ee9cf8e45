#!/usr/bin/env bash
# Two settings of the worker measured against each other in one run: fresh workers alternate A, B, B, A, A, B… over
# HTTP (scripts/bench-worker.ts), because the lent GPU machines differ more from call to call than one change gains,
# and the order swaps every pair so that a drift over the run does not favour one side.
#   bash scripts/ab-worker.sh MODEL PAIRS 'VAR=a …' 'VAR=b …' [bench-worker options, e.g. --gpu cuda --levels 1,8,32]
# Prints each run's tok/s per level, then each side's mean and B/A. OUT (default /tmp/rbee-ab) keeps the JSON.
set -euo pipefail
model=${1:?model} pairs=${2:?pairs} a=${3:?settings A} b=${4:?settings B}
shift 4
out=${OUT:-/tmp/rbee-ab}
mkdir -p "$out"
for pair in $(seq 1 "$pairs"); do
  order=$( ((pair % 2)) && echo "A B" || echo "B A")
  for side in $order; do
    settings=$([ $side = A ] && echo "$a" || echo "$b")
    # shellcheck disable=SC2086 # the settings are words on purpose
    env $settings bun scripts/bench-worker.ts --model "$model" --json --no-reference "$@" >"$out/$side-$pair.json" 2>"$out/$side-$pair.log"
    echo "$side ($settings): $(bun -e 'console.log(JSON.parse(await Bun.file(process.argv[1]).text()).rbee.map((x) => x.tokensPerS.toFixed(0)).join(" / "))' "$out/$side-$pair.json") tok/s"
  done
done
bun -e '
  const [out, pairs] = [process.argv[1], Number(process.argv[2])];
  const load = async (side) => Promise.all(Array.from({ length: pairs }, async (_, i) => JSON.parse(await Bun.file(`${out}/${side}-${i + 1}.json`).text()).rbee));
  const [a, b] = [await load("A"), await load("B")];
  const mean = (runs, level, key) => runs.reduce((sum, run) => sum + run[level][key], 0) / runs.length;
  for (const [level, x] of a[0].entries()) {
    const [ma, mb] = [mean(a, level, "tokensPerS"), mean(b, level, "tokensPerS")];
    const [da, db] = [mean(a, level, "decodeTokensPerS"), mean(b, level, "decodeTokensPerS")];
    const [ta, tb] = [mean(a, level, "ttftP50Ms"), mean(b, level, "ttftP50Ms")];
    console.log(`${x.concurrency} streams: A ${ma.toFixed(0)}  B ${mb.toFixed(0)}  B/A ${(mb / ma).toFixed(3)}  (per stream ${da.toFixed(0)} / ${db.toFixed(0)}, TTFT p50 ${ta.toFixed(1)} / ${tb.toFixed(1)} ms)`);
  }
' "$out" "$pairs"
