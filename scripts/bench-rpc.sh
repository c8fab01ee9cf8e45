#!/usr/bin/env bash
# One model over several machines, measured on one GPU machine: each model on the GPU alone, then through llama.cpp's
# RPC backend, rpc-server lending that GPU: every layer remote (the worker on the CPU backend), and half remote, half
# local; each through a loopback forwarder where the queen's SSH tunnel would be (that machine has no sshd: the tunnel's
# own cost is scripts/bench-tunnel.ts's), and every layer remote straight to the server. tok/s at 1 and 8 streams
# (bench-worker over HTTP) and the time from start to ready.
#   bash scripts/bench-rpc.sh [OUT_DIR]   (after ../shared/gpu's set-up; ADDON_DIR as scripts/bench-gpu.sh takes it)
set -uo pipefail
OUT=${1:-${OUT:-/tmp/rbee-rpc}}
MODELS=${MODELS:-/opt/models}
mkdir -p "$OUT" "$MODELS"
INSTALL_ONLY=1 bash scripts/bench-gpu.sh "$OUT" >/dev/null
CUDA_BINS=node_modules/@node-llama-cpp/linux-x64-cuda/bins/linux-x64-cuda
[ -x "$CUDA_BINS/rpc/rpc-server" ] || { echo "no rpc-server in $CUDA_BINS/rpc (ADDON_DIR from build-addon.ts --into)" >&2; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"

(cd "$CUDA_BINS" && exec ./rpc/rpc-server -H 127.0.0.1 -p 50052 -d CUDA0) >"$OUT/rpc-server.log" 2>&1 &
server=$!
bun scripts/lib/tcp-forward.ts 50052 >"$OUT/forward.port" &
forward=$!
for _ in $(seq 1 100); do [ -s "$OUT/forward.port" ] && break; sleep 0.1; done
FWD=$(cat "$OUT/forward.port")

# variant NAME MODEL worker-args…: start to ready (ms), then 1 and 8 streams of 128 tokens, three rounds each.
variant() {
  local name=$1 model=$2
  shift 2
  local started=$(date +%s%N)
  bun src/cli.ts worker --model "$model" --port 8399 --slots 8 --ctx 256 "$@" 2>"$OUT/worker-$name.log" &
  local pid=$!
  for _ in $(seq 1 1200); do curl -sf localhost:8399/v1/ready | grep -q '"ready":true' && break; kill -0 $pid 2>/dev/null || break; sleep 0.1; done
  local ready_ms=$(( ($(date +%s%N) - started) / 1000000 ))
  bun scripts/bench-worker.ts --url http://127.0.0.1:8399 --levels 1,8 --rounds 3 --json >"$OUT/bench-$name.json" 2>>"$OUT/worker-$name.log"
  bun -e 'const [name, ms, file] = process.argv.slice(1); let rows = []; try { rows = JSON.parse(await Bun.file(file).text()).rbee } catch {} ; console.log(`${name}\tready ${ms} ms\t${rows.map((x) => `${x.concurrency}: ${x.tokensPerS.toFixed(1)} tok/s (${x.decodeTokensPerS.toFixed(1)} per stream after the first token)`).join("\t") || "FAILED"}`)' "$name" "$ready_ms" "$OUT/bench-$name.json" | tee -a "$OUT/table.txt"
  curl -s -X POST localhost:8399/v1/shutdown >/dev/null
  wait $pid
}

for shape in ${SHAPES:-1b 8b}; do
  model=$MODELS/$shape.gguf
  [ -f "$model" ] || bun scripts/synth-model.ts "$model" --shape "$shape" >/dev/null
  cat "$model" >/dev/null # in the page cache for every variant alike
  variant "$shape-gpu" "$model" --gpu cuda
  variant "$shape-rpc-all" "$model" --gpu cpu --rpc "127.0.0.1:$FWD"
  variant "$shape-rpc-half" "$model" --gpu cuda --rpc "127.0.0.1:$FWD" --tensor-split 1,1
  variant "$shape-rpc-all-direct" "$model" --gpu cpu --rpc 127.0.0.1:50052
done
kill $forward $server 2>/dev/null
wait 2>/dev/null
cp "$OUT/table.txt" "$OUT/rpc-table.txt" 2>/dev/null
