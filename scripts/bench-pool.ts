// A pool of up to a hundred nodes, simulated (issue 31, item 5): fake hives (8 GPUs each, real HTTP, one process of
// their own) announce themselves to a real queen with 7 workers each (one GPU left free), all answering one-token
// completions. At 1, 10 and 100 nodes: GET /v1/cluster, /v1/workers and the first /v1/cluster/events record, `rbee
// status`, placing a new worker (POST /v1/workers: the queen's placement over every node, then the node's spawn), and
// the scheduler's choice per request (one-token requests, 32 at a time: req/s and the queen's CPU µs each); the
// queen's RSS at each size; then a soak (nodes leaving and joining while requests run) sampling its RSS. The queen checks
// its hives every 2 s, as a pool's queen would.
//   bun scripts/bench-pool.ts [--nodes 1,10,100] [--soak-s 60] [--json]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { RBEE_CLI, startDaemon } from "./lib/daemon";
import { processUsage } from "./lib/proc-usage";

const { values: opts } = parseArgs({ options: { nodes: { type: "string", default: "1,10,100" }, "soak-s": { type: "string", default: "60" }, json: { type: "boolean", default: false } } });
const MODEL = "file:/fake/pool-bench.gguf";
const GPUS = 8;
const GiB = 2 ** 30;

// ---- the fake pool: hives on ports of their own, workers answering at one shared URL.
if (process.env.BENCH_POOL_FAKE) {
  const queenUrl = process.env.BENCH_POOL_FAKE;
  const sse = (text: string) => `data: {"id":"c","object":"text_completion","created":0,"model":"m","choices":[{"index":0,"text":${JSON.stringify(text)},"logprobs":null,"finish_reason":null}]}\n\n`;
  const workerServer = Bun.serve({
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      if (req.method === "GET") return Response.json({ ready: true, ok: true });
      const body = (await req.json()) as { stream?: boolean };
      if (!body.stream) return Response.json({ id: "c", object: "text_completion", created: 0, model: "m", choices: [{ index: 0, text: " tok", finish_reason: "length", logprobs: null }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2, prompt_tokens_details: { cached_tokens: 0 } } });
      return new Response(`${sse(" tok")}data: [DONE]\n\n`, { headers: { "content-type": "text/event-stream" } });
    },
  });
  const workerUrl = `http://127.0.0.1:${workerServer.port}`;
  const model = { id: "fake", ref: MODEL, name: "pool-bench", provider: "file", path: "/fake/pool-bench.gguf", size_bytes: GiB, sha256: "", architecture: "llama", parameter_count: null, quantization: "Q8_0", context_length: 2048, shape: { layers: 16, embedding: 2048, feedForward: 8192, heads: 32, kvWidthK: 512, kvWidthV: 512, headDimK: 64, vocab: 32000, trainCtx: 2048 }, chat_template: null, downloaded_at: new Date().toISOString(), last_used_at: null, status: "ready" };
  let nextWorker = 0;
  const worker = (node: string, gpu: number) => ({ id: `w-${node}-${nextWorker++}`, model_id: "fake", model_ref: MODEL, state: "ready", pid: process.pid, url: workerUrl, backend: "cuda", device: `GPU ${gpu}`, devices: [gpu], slots_total: 4, started_at: new Date().toISOString(), ready_at: new Date().toISOString() });
  const hives = new Map<string, { url: string; workers: ReturnType<typeof worker>[]; server: ReturnType<typeof Bun.serve> }>();
  const devices = (h: { workers: { devices: number[] }[] }) => ({
    platform: "linux-x64", backend: "cuda", backends: ["cuda", "cpu"], ram_total_bytes: 512 * GiB, ram_free_bytes: 400 * GiB, cpu_cores: 64,
    gpus: Array.from({ length: GPUS }, (_, index) => ({ index, name: "Fake H100", vram_total_bytes: 80 * GiB, vram_free_bytes: (h.workers.some((w) => w.devices[0] === index) ? 60 : 79) * GiB, uuid: null, pci_bus: null })),
  });
  const announce = (node: string) => {
    const h = hives.get(node)!;
    return fetch(`${queenUrl}/v1/hives/ready`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ node, url: h.url, pid: process.pid, devices: devices(h), models: [model], workers: h.workers }) }).then((r) => r.ok);
  };
  const addHive = async (node: string) => {
    const entry = { url: "", workers: Array.from({ length: GPUS - 1 }, (_, gpu) => worker(node, gpu)), server: undefined as unknown as ReturnType<typeof Bun.serve> };
    entry.server = Bun.serve({
      port: 0,
      idleTimeout: 0,
      async fetch(req) {
        const path = new URL(req.url).pathname;
        if (path === "/v1/health") return Response.json({ ok: true });
        if (path === "/v1/devices") return Response.json(devices(entry));
        if (path === "/v1/models") return Response.json({ models: [model] });
        if (path === "/v1/workers" && req.method === "GET") return Response.json({ workers: entry.workers });
        if (path === "/v1/workers/spawn") {
          const { devices: pinned } = (await req.json()) as { devices?: number[] };
          const w = worker(node, pinned?.[0] ?? 0);
          entry.workers.push(w);
          return Response.json({ worker: w }, { status: 201 });
        }
        const stop = /^\/v1\/workers\/([^/]+)\/stop$/.exec(path);
        if (stop) {
          entry.workers = entry.workers.filter((w) => w.id !== stop[1]);
          return Response.json({ stopped: stop[1] });
        }
        return Response.json({ error: { code: "NOT_FOUND", message: path } }, { status: 404 });
      },
    });
    entry.url = `http://127.0.0.1:${entry.server.port}`;
    hives.set(node, entry);
    if (!(await announce(node))) throw new Error(`the queen refused ${node}`);
  };
  // Commands on stdin, one a line: "grow N" (hives up to N), "leave NODE", "join NODE"; each answered "ok".
  console.error(`listening on ${workerUrl}`);
  for await (const line of console) {
    const [cmd, arg] = line.trim().split(" ");
    if (cmd === "grow") for (let i = hives.size; i < Number(arg); i++) await addHive(`node-${i}`);
    else if (cmd === "leave") {
      const h = hives.get(arg!)!;
      h.server.stop(true);
      hives.delete(arg!);
    } else if (cmd === "join") await addHive(arg!);
    console.log("ok");
  }
  process.exit(0);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
async function timed(times: number, f: () => Promise<unknown>): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < times; i++) {
    const t = performance.now();
    await f();
    ms.push(performance.now() - t);
  }
  return +median(ms).toFixed(2);
}

const home = mkdtempSync(join(tmpdir(), "rbee-bench-pool-"));
// BENCH_POOL_PROFILE=DIR: the queen runs under Bun's CPU profiler, its profile (markdown) written there on exit.
const profile = process.env.BENCH_POOL_PROFILE;
const queenExe = profile ? [process.execPath, "--cpu-prof-md", `--cpu-prof-dir=${profile}`, ...RBEE_CLI.slice(1)] : undefined;
const queen = await startDaemon(["queen", "--port", "0", "--home", home, "--queue", "4096", "--hive-check-interval", "2", "--allow-cpu"], process.env, queenExe);
const fake = Bun.spawn([process.execPath, import.meta.path], { stdin: "pipe", stdout: "pipe", stderr: "pipe", env: { ...process.env, BENCH_POOL_FAKE: queen.url } });
const lines = (async function* () {
  let buffer = "";
  for await (const chunk of fake.stdout) {
    buffer += new TextDecoder().decode(chunk);
    let at: number;
    while ((at = buffer.indexOf("\n")) !== -1) {
      yield buffer.slice(0, at);
      buffer = buffer.slice(at + 1);
    }
  }
})();
const command = async (line: string) => {
  fake.stdin.write(`${line}\n`);
  fake.stdin.flush();
  const { value } = await lines.next();
  if (value !== "ok") throw new Error(`fake pool: ${value}`);
};
const rows: Record<string, unknown>[] = [];
try {
  for (const nodes of opts.nodes.split(",").map(Number)) {
    await command(`grow ${nodes}`);
    const workers = ((await (await fetch(`${queen.url}/v1/workers`)).json()) as { workers: unknown[] }).workers.length;
    const cluster = await timed(20, () => fetch(`${queen.url}/v1/cluster`).then((r) => r.arrayBuffer()));
    const workerList = await timed(20, () => fetch(`${queen.url}/v1/workers`).then((r) => r.arrayBuffer()));
    const events = await timed(5, async () => {
      const controller = new AbortController();
      const res = await fetch(`${queen.url}/v1/cluster/events`, { signal: controller.signal });
      await res.body!.getReader().read();
      controller.abort();
    });
    const status = await timed(3, () => Bun.spawn([...RBEE_CLI, "status"], { env: { ...process.env, RBEE_QUEEN_URL: queen.url }, stdout: "ignore", stderr: "ignore" }).exited);
    // One placement a size: each node has one GPU free, and a new replica takes a free GPU.
    const place = await timed(1, async () => {
      const res = await fetch(`${queen.url}/v1/workers`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: MODEL }) });
      if (!res.ok) throw new Error(`placing a worker: ${await res.text()}`);
    });
    const before = processUsage(queen.proc.pid);
    const total = 1000;
    let sent = 0;
    const started = performance.now();
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (sent++ < total) {
        const res = await fetch(`${queen.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: MODEL, prompt: "Once", max_tokens: 1 }) });
        await res.arrayBuffer();
      }
    }));
    const after = processUsage(queen.proc.pid);
    rows.push({ nodes, workers, clusterMs: cluster, workersMs: workerList, clusterEventsFirstMs: events, statusMs: status, placeMs: place, reqPerS: Math.round(total / ((performance.now() - started) / 1000)), usPerRequest: Math.round(((after.cpuS - before.cpuS) * 1e6) / total), rssMiB: Math.round(after.rssBytes / 2 ** 20) });
    console.error(JSON.stringify(rows.at(-1)));
  }
  // Soak: a node leaves and joins every second while requests run; the queen's RSS every tenth of the run.
  const soakS = Number(opts["soak-s"]);
  const rss: number[] = [];
  const nodes = Math.max(...opts.nodes.split(",").map(Number));
  let running = true;
  const load = Promise.all(Array.from({ length: 16 }, async () => {
    while (running) await fetch(`${queen.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: MODEL, prompt: "Once", max_tokens: 1 }) }).then((r) => r.arrayBuffer(), () => undefined);
  }));
  const soakStart = performance.now();
  for (let s = 0; performance.now() - soakStart < soakS * 1000; s++) {
    const node = `node-${s % nodes}`;
    await command(`leave ${node}`);
    await Bun.sleep(500);
    await command(`join ${node}`);
    await Bun.sleep(500);
    if (s % Math.max(1, Math.round(soakS / 10)) === 0) rss.push(Math.round(processUsage(queen.proc.pid).rssBytes / 2 ** 20));
  }
  running = false;
  await load;
  rows.push({ soakS, rssMiB: rss });
} finally {
  fake.kill();
  await queen.stop();
  rmSync(home, { recursive: true, force: true });
}
if (opts.json) console.log(JSON.stringify(rows));
else {
  console.log("| nodes | workers | GET /v1/cluster | GET /v1/workers | first /v1/cluster/events record | rbee status | placing a worker | one-token requests | queen CPU per request | queen RSS |");
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const r of rows as Record<string, any>[])
    if (r.nodes) console.log(`| ${r.nodes} | ${r.workers} | ${r.clusterMs} ms | ${r.workersMs} ms | ${r.clusterEventsFirstMs} ms | ${r.statusMs} ms | ${r.placeMs} ms | ${r.reqPerS} req/s | ${r.usPerRequest} µs | ${r.rssMiB} MiB |`);
    else console.log(`\nsoak ${r.soakS} s (a node leaving and joining every second, 16 requests at a time): queen RSS ${r.rssMiB.join(", ")} MiB`);
}
process.exit(0);
