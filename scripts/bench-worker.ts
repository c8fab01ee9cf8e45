// Measures a worker over its own HTTP API: generated tokens/s and time to first token at 1, 8 and 32 concurrent
// streamed requests of 128 tokens each. As a reference in the same run it measures node-llama-cpp's plain way
// (one LlamaCompletion per request on a shared context, in-process, no HTTP) on the same model and threads.
//   bun scripts/bench-worker.ts [--model PATH] [--levels 1,8,32] [--tokens 128] [--rounds 3] [--gpu auto] [--json] [--no-reference]
//     [--slots N]   (the worker's slots; default: the highest level)   [--ctx N]   (tokens per slot; default: --tokens + 64)
//   bun scripts/bench-worker.ts --url http://127.0.0.1:8001   (an already running worker or queen)
import { parseArgs } from "node:util";
import { join } from "node:path";
import { startDaemon, workerReady } from "./lib/daemon";
import { benchHttp, type LevelResult } from "./lib/http-load";
import { benchNaive } from "./lib/naive-node-llama-cpp";

const { values: opts } = parseArgs({
  options: {
    model: { type: "string", default: join(import.meta.dir, "..", "..", "shared", "models", "stories260K.gguf") },
    levels: { type: "string", default: "1,8,32" },
    tokens: { type: "string", default: "128" },
    rounds: { type: "string", default: "3" },
    gpu: { type: "string", default: "auto" },
    threads: { type: "string" },
    url: { type: "string" },
    json: { type: "boolean", default: false },
    "no-reference": { type: "boolean", default: false },
    binary: { type: "string" },
    slots: { type: "string" },
    ctx: { type: "string" },
  },
});

const levels = opts.levels.split(",").map(Number);
const tokens = Number(opts.tokens);
const rounds = Number(opts.rounds);
const maxLevel = Math.max(...levels);

async function startWorker(): Promise<{ url: string; stop: () => Promise<void> }> {
  const args = ["worker", "--model", opts.model, "--port", "0", "--slots", opts.slots ?? String(maxLevel), "--ctx", opts.ctx ?? String(tokens + 64), "--gpu", opts.gpu, "--queue", "256"];
  if (opts.threads) args.push("--threads", opts.threads);
  const worker = await startDaemon(args, process.env, opts.binary ? [opts.binary] : undefined);
  const ready = (await workerReady(worker)) as { backend?: string; device?: string };
  console.error(`worker ready: ${ready.backend} on ${ready.device}, ${/"threads":(\d+)/.exec(worker.log())?.[1] ?? "?"} threads`);
  const stop = async () => {
    await worker.stop();
    // RBEE_PROFILE_STEPS=1: the per-step split the worker logged each time it went idle.
    for (const line of worker.log().split("\n")) if (line.includes("step profile")) console.error(line);
  };
  return { url: worker.url, stop };
}

const worker = opts.url ? { url: opts.url, stop: async () => {} } : await startWorker();
const rbee: LevelResult[] = [];
for (const level of levels) rbee.push(await benchHttp({ url: worker.url, concurrency: level, tokens, rounds }));
await worker.stop();

const reference: LevelResult[] = [];
if (!opts["no-reference"] && !opts.url)
  for (const level of levels) reference.push(await benchNaive({ modelPath: opts.model, concurrency: level, tokens, rounds, gpu: opts.gpu, threads: opts.threads ? Number(opts.threads) : undefined }));

if (opts.json) console.log(JSON.stringify({ model: opts.model, tokens, rbee, reference }));
else {
  const row = (cells: (string | number)[]) => console.log(cells.map((c) => String(c).padStart(14)).join(""));
  console.log(`model ${opts.model}, ${tokens} generated tokens per request, ${rounds} rounds per level; per stream: its rate after the first token`);
  row(["concurrent", "rbee tok/s", "per stream", "TTFT p50 ms", "TTFT p99 ms", ...(reference.length ? ["naive tok/s", "rbee/naive"] : [])]);
  rbee.forEach((r, i) => {
    const ref = reference[i];
    row([r.concurrency, r.tokensPerS.toFixed(0), (r.decodeTokensPerS ?? 0).toFixed(0), r.ttftP50Ms.toFixed(1), r.ttftP99Ms.toFixed(1), ...(ref ? [ref.tokensPerS.toFixed(0), (r.tokensPerS / ref.tokensPerS).toFixed(2)] : [])]);
  });
}
