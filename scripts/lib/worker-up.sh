# Sourced by the GPU scripts: `worker_up PORT LOG ARGS...` starts `rbee worker ARGS --port PORT` from this tree with its
# stderr in LOG and waits until it is ready: $worker_pid is its process, $ready its /v1/ready answer ("" where it
# exited first, refusing). `worker_down PORT` shuts it down and waits for it.
worker_up() {
  local port=$1 log=$2; shift 2
  bun src/cli.ts worker --port "$port" "$@" 2>"$log" &
  worker_pid=$!
  ready=""
  for _ in $(seq 1 900); do
    ready=$(curl -sf "localhost:$port/v1/ready") && echo "$ready" | grep -q '"ready":true' && return 0
    kill -0 "$worker_pid" 2>/dev/null || { ready=""; wait "$worker_pid" 2>/dev/null; return 1; }
    sleep 0.2
  done
  ready=""
  return 1
}
worker_down() { curl -s -X POST "localhost:$1/v1/shutdown" >/dev/null; wait "$worker_pid"; }
