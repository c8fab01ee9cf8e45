// The queen's relay alone (issue 31): a fake worker (and fake hive) registered with a real queen, writing OpenAI stream
// chunks either *paced* (every stream one token per step, all streams stepping together as a GPU worker does) or in a
// *burst* (as fast as the reader takes them). The same load goes straight to the fake worker, through a bare Bun
// pass-through proxy (fetch the worker, return its body: the yardstick) and through the queen, in each of its
// dialects. Reported per level: tok/s, the queen's and the proxy's CPU µs per token (from /proc, each process's own
// accounting), their RSS, and the TTFT each adds over direct; then CPU µs per request for one-token requests.
//   bun scripts/bench-relay.ts [--levels 1,8,64,256] [--tokens 64] [--step-ms 4] [--modes paced,burst] [--requests 2000] [--json]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startDaemon } from "./lib/daemon";
import { processUsage } from "./lib/proc-usage";
import { percentile } from "./lib/http-load";

const { values: opts } = parseArgs({
  options: {
    levels: { type: "string", default: "1,8,64,256" },
    tokens: { type: "string", default: "64" },
    "step-ms": { type: "string", default: "4" },
    modes: { type: "string", default: "paced,burst" },
    requests: { type: "string", default: "2000" },
    json: { type: "boolean", default: false },
  },
});
const TOKENS = Number(opts.tokens);
const STEP_MS = Number(opts["step-ms"]);
const MODEL = "file:/fake/relay-bench.gguf";
const encoder = new TextEncoder();

// ---- the fake worker: one process of its own (so its CPU is not the queen's), serving every POST as an OpenAI stream.
if (process.env.BENCH_RELAY_WORKER) {
  const paced = process.env.BENCH_RELAY_WORKER === "paced";
  const streams = new Set<ReadableStreamDefaultController<Uint8Array>>();
  const left = new Map<ReadableStreamDefaultController<Uint8Array>, number>();
  const chunk = (text: string) => encoder.encode(`data: {"id":"c","object":"chat.completion.chunk","created":0,"model":"m","choices":[{"index":0,"delta":{"content":${JSON.stringify(text)}},"text":${JSON.stringify(text)},"logprobs":null,"finish_reason":null}]}\n\n`);
  const ending = (n: number) =>
    encoder.encode(`data: {"id":"c","object":"chat.completion.chunk","created":0,"model":"m","choices":[{"index":0,"delta":{},"text":"","logprobs":null,"finish_reason":"length"}]}\n\ndata: {"id":"c","object":"chat.completion.chunk","created":0,"model":"m","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":${n},"total_tokens":${n + 4},"prompt_tokens_details":{"cached_tokens":0}}}\n\ndata: [DONE]\n\n`);
  const TOKEN = chunk(" tok");
  const step = (c: ReadableStreamDefaultController<Uint8Array>, total: number) => {
    const n = left.get(c)!;
    if (n === 0) {
      c.enqueue(ending(total));
      c.close();
      streams.delete(c);
      return;
    }
    c.enqueue(TOKEN);
    left.set(c, n - 1);
  };
  if (paced) setInterval(() => [...streams].forEach((c) => step(c, Number(process.env.BENCH_RELAY_TOKENS))), STEP_MS);
  const server = Bun.serve({
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      if (req.method === "GET") return Response.json(path === "/v1/ready" ? { ready: true } : { ok: true, status: "ok" });
      const body = (await req.json()) as { max_tokens?: number; n_predict?: number; stream?: boolean; options?: { num_predict?: number } };
      const total = body.max_tokens ?? body.n_predict ?? body.options?.num_predict ?? TOKENS;
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          left.set(c, total);
          if (paced) streams.add(c);
        },
        pull(c) {
          if (!paced) step(c, total);
        },
        cancel() {},
      });
      return new Response(stream, { headers: { "content-type": "text/event-stream" } });
    },
  });
  console.error(`listening on http://127.0.0.1:${server.port}`);
  await new Promise(() => {});
}

// ---- the bare pass-through proxy, the yardstick.
if (process.env.BENCH_RELAY_PROXY) {
  const target = process.env.BENCH_RELAY_PROXY;
  const server = Bun.serve({
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const res = await fetch(`${target}${url.pathname}`, { method: req.method, headers: req.headers, body: req.body });
      return new Response(res.body, { status: res.status, headers: res.headers });
    },
  });
  console.error(`listening on http://127.0.0.1:${server.port}`);
  await new Promise(() => {});
}


/** One streamed request: its time to first data record and the records it got. */
async function one(url: string, path: string, body: object): Promise<{ ttftMs: number; records: number }> {
  const start = performance.now();
  const res = await fetch(`${url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${await res.text()}`);
  let ttftMs = 0;
  let records = 0;
  for await (const chunk of res.body!) {
    if (!ttftMs) ttftMs = performance.now() - start;
    const text = new TextDecoder().decode(chunk);
    for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) records++;
  }
  return { ttftMs, records };
}

const DIALECTS: Record<string, { path: string; body: (tokens: number, stream?: boolean) => object }> = {
  openai: { path: "/v1/completions", body: (t, stream = true) => ({ model: MODEL, prompt: "Once", max_tokens: t, stream }) },
  ollama: { path: "/api/generate", body: (t, stream = true) => ({ model: MODEL, prompt: "Once", options: { num_predict: t }, stream }) },
  anthropic: { path: "/v1/messages", body: (t, stream = true) => ({ model: MODEL, max_tokens: t, messages: [{ role: "user", content: "Once" }], stream }) },
  llamacpp: { path: "/completion", body: (t, stream = true) => ({ model: MODEL, prompt: "Once", n_predict: t, stream }) },
};

/** Rounds of `concurrency` streams until at least MIN_LEVEL_S has passed: /proc counts CPU time in 10 ms ticks. */
const MIN_LEVEL_S = 2;
async function level(url: string, dialect: string, concurrency: number, tokens: number) {
  const d = DIALECTS[dialect]!;
  const started = performance.now();
  const ttfts: number[] = [];
  let rounds = 0;
  do {
    const results = await Promise.all(Array.from({ length: concurrency }, () => one(url, d.path, d.body(tokens))));
    ttfts.push(...results.map((r) => r.ttftMs));
    rounds++;
  } while (performance.now() - started < MIN_LEVEL_S * 1000);
  const wallS = (performance.now() - started) / 1000;
  ttfts.sort((a, b) => a - b);
  return { tokens: rounds * concurrency * tokens, tokensPerS: (rounds * concurrency * tokens) / wallS, ttftP50Ms: percentile(ttfts, 50) };
}

const self = [process.execPath, import.meta.path];
const home = mkdtempSync(join(tmpdir(), "rbee-bench-relay-"));
const rows: Record<string, unknown>[] = [];
try {
  for (const mode of opts.modes.split(",")) {
    const worker = await startDaemon([], { ...process.env, BENCH_RELAY_WORKER: mode, BENCH_RELAY_TOKENS: String(TOKENS) }, self);
    const proxy = await startDaemon([], { ...process.env, BENCH_RELAY_PROXY: worker.url }, self);
    // BENCH_RELAY_PROFILE=DIR: the queen runs under Bun's CPU profiler, its profile (markdown) written there on exit.
    const profile = process.env.BENCH_RELAY_PROFILE;
    const queenExe = profile ? [process.execPath, "--cpu-prof-md", `--cpu-prof-dir=${profile}`, join(import.meta.dir, "..", "src", "cli.ts")] : undefined;
    const queen = await startDaemon(["queen", "--port", "0", "--home", home, "--queue", "4096", "--hive-check-interval", "3600"], process.env, queenExe);
    // The fake worker is also the fake hive that announces it.
    const workerInfo = { id: "w-fake", model_id: "fake", model_ref: MODEL, state: "ready", pid: worker.proc.pid, url: worker.url, backend: "cpu", device: "cpu", devices: null, slots_total: 4096, started_at: new Date().toISOString(), ready_at: new Date().toISOString() };
    const fakeModel = { id: "fake", ref: MODEL, name: "relay-bench", provider: "file", path: "/fake/relay-bench.gguf", size_bytes: 1, status: "ready", shape: null, downloaded_at: new Date().toISOString() };
    const announced = await fetch(`${queen.url}/v1/hives/ready`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ node: "fakehost", url: worker.url, pid: worker.proc.pid, devices: { gpus: [], ram_free_bytes: 2 ** 34, ram_total_bytes: 2 ** 34 }, models: [fakeModel], workers: [workerInfo] }) });
    if (!announced.ok) throw new Error(`announce: ${await announced.text()}`);
    for (const concurrency of opts.levels.split(",").map(Number)) {
      const direct = await level(worker.url, "openai", concurrency, TOKENS);
      const viaProxy = { before: processUsage(proxy.proc.pid) };
      const proxied = await level(proxy.url, "openai", concurrency, TOKENS);
      const proxyCpu = processUsage(proxy.proc.pid).cpuS - viaProxy.before.cpuS;
      for (const dialect of Object.keys(DIALECTS)) {
        const before = processUsage(queen.proc.pid);
        const relayed = await level(queen.url, dialect, concurrency, TOKENS);
        const after = processUsage(queen.proc.pid);
        const tokens = relayed.tokens;
        rows.push({
          mode, concurrency, dialect,
          directTokS: Math.round(direct.tokensPerS), proxyTokS: Math.round(proxied.tokensPerS), queenTokS: Math.round(relayed.tokensPerS),
          queenUsPerToken: +(((after.cpuS - before.cpuS) * 1e6) / tokens).toFixed(1), proxyUsPerToken: +((proxyCpu * 1e6) / proxied.tokens).toFixed(1),
          queenRssMiB: Math.round(after.rssBytes / 2 ** 20), proxyRssMiB: Math.round(processUsage(proxy.proc.pid).rssBytes / 2 ** 20),
          ttftAddedMs: { proxy: +(proxied.ttftP50Ms - direct.ttftP50Ms).toFixed(2), queen: +(relayed.ttftP50Ms - direct.ttftP50Ms).toFixed(2) },
        });
        if (!opts.json) console.error(JSON.stringify(rows.at(-1)));
      }
    }
    // Per request: one-token requests, 64 at a time.
    const perRequest = async (url: string, pid: number, dialect = "openai") => {
      const before = processUsage(pid).cpuS;
      const total = Number(opts.requests);
      let sent = 0;
      const started = performance.now();
      await Promise.all(Array.from({ length: 64 }, async () => {
        while (sent++ < total) await one(url, DIALECTS[dialect]!.path, DIALECTS[dialect]!.body(1));
      }));
      return { reqPerS: Math.round(total / ((performance.now() - started) / 1000)), usPerRequest: Math.round(((processUsage(pid).cpuS - before) * 1e6) / total) };
    };
    rows.push({ mode, perRequest: { queen: await perRequest(queen.url, queen.proc.pid), proxy: await perRequest(proxy.url, proxy.proc.pid) } });
    if (!opts.json) console.error(JSON.stringify(rows.at(-1)));
    await queen.stop();
    await proxy.stop();
    await worker.stop();
  }
} finally {
  rmSync(home, { recursive: true, force: true });
}
if (opts.json) console.log(JSON.stringify(rows));
else {
  console.log("| mode | streams | dialect | direct tok/s | proxy tok/s | queen tok/s | queen CPU µs/token | proxy CPU µs/token | queen / proxy RSS MiB | TTFT added p50, proxy / queen |");
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const r of rows as Record<string, any>[])
    if (r.dialect)
      console.log(`| ${r.mode} | ${r.concurrency} | ${r.dialect} | ${r.directTokS} | ${r.proxyTokS} | ${r.queenTokS} | ${r.queenUsPerToken} | ${r.proxyUsPerToken} | ${r.queenRssMiB} / ${r.proxyRssMiB} | ${r.ttftAddedMs.proxy} / ${r.ttftAddedMs.queen} ms |`);
    else console.log(`| ${r.mode} | per request (1 token, 64 at a time) | openai | | queen ${r.perRequest.queen.reqPerS} req/s, ${r.perRequest.queen.usPerRequest} µs CPU each | proxy ${r.perRequest.proxy.reqPerS} req/s, ${r.perRequest.proxy.usPerRequest} µs CPU each | | | | |`);
}
process.exit(0);
