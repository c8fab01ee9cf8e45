// Long prompts: time to first token for distinct prompts (the prompt cache cannot help), one request at a time and
// eight at once, for each worker variant in one run (and llama-server beside them, where given).
//   bun scripts/bench-long-prompt.ts [--model PATH] [--words 760] [--rounds 3] [--variants "auto;--threads 1"]
//                                    [--slots 8] [--ctx 2048] [--gpu cpu|cuda|…] [--llama-server PATH [--llama-server-args="-t 1"]]
// A variant is extra `rbee worker` arguments ("auto": none), after any NAME=value settings for its environment
// ("RBEE_BATCH_TOKENS=2048 --threads 1"). --words sets the prompt length (760 words of this text are 1,390 tokens with
// stories260K's tokenizer).
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type Daemon, startDaemon, untilReady, workerReady } from "./lib/daemon";
import { percentile } from "./lib/http-load";

const { values: opts } = parseArgs({
  options: {
    model: { type: "string", default: join(import.meta.dir, "..", "..", "shared", "models", "stories260K.gguf") },
    words: { type: "string", default: "760" },
    rounds: { type: "string", default: "3" },
    variants: { type: "string", default: "auto;--threads 1" },
    slots: { type: "string", default: "8" },
    ctx: { type: "string", default: "2048" },
    gpu: { type: "string", default: "auto" },
    "llama-server": { type: "string" },
    /** Its threads and the like, as llama-server takes them (--llama-server-args="-t 1 -tb 2"). */
    "llama-server-args": { type: "string", default: "" },
  },
});
const [words, rounds, slots, ctx] = (["words", "rounds", "slots", "ctx"] as const).map((k) => Number(opts[k])) as [number, number, number, number];
const vocabulary = "the cat sat on a mat and saw a big red ball near the tall green tree by the old blue house".split(" ");
let promptNumber = 0;
/** A prompt no earlier request began with. */
const freshPrompt = () => {
  const n = promptNumber++;
  return `Story ${n}. ` + Array.from({ length: words }, (_, j) => vocabulary[(j * 7 + n) % vocabulary.length]).join(" ");
};

/** Milliseconds to the first streamed token of one fresh prompt, and its prompt length in tokens. */
async function ttft(url: string): Promise<{ ms: number; promptTokens: number }> {
  const started = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt: freshPrompt(), max_tokens: 4, stream: true, stream_options: { include_usage: true }, cache_prompt: false }),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  let first = 0;
  let promptTokens = 0;
  for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
    if (!first && /"(text|content)":"[^"]/.test(chunk)) first = performance.now();
    const usage = /"prompt_tokens":(\d+)/.exec(chunk);
    if (usage) promptTokens = Number(usage[1]);
  }
  return { ms: (first || performance.now()) - started, promptTokens };
}

async function measure(name: string, url: string): Promise<void> {
  await ttft(url); // warm-up
  const one: number[] = [];
  let tokens = 0;
  for (let i = 0; i < 2 * rounds; i++) {
    const r = await ttft(url);
    one.push(r.ms);
    tokens = r.promptTokens || tokens;
  }
  const eight: number[] = [];
  for (let r = 0; r < rounds; r++) eight.push(...(await Promise.all(Array.from({ length: 8 }, () => ttft(url)))).map((x) => x.ms));
  const p50 = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50).toFixed(0);
  console.log(`${name.padEnd(28)} prompts of ${tokens || "?"} tokens: TTFT p50 1 request ${p50(one)} ms, 8 at once ${p50(eight)} ms (p90 ${percentile([...eight].sort((a, b) => a - b), 90).toFixed(0)} ms)`);
}

for (const variant of opts.variants!.split(";").map((v) => v.trim())) {
  // Leading NAME=value words are the worker's environment (RBEE_BATCH_TOKENS=2048 --threads 1).
  const words = variant === "auto" ? [] : variant.split(/\s+/);
  const env = Object.fromEntries(words.filter((w) => /^[A-Z_]+=/.test(w)).map((w) => [w.slice(0, w.indexOf("=")), w.slice(w.indexOf("=") + 1)]));
  const extra = words.filter((w) => !/^[A-Z_]+=/.test(w));
  const worker: Daemon = await startDaemon(["worker", "--model", opts.model!, "--port", "0", "--slots", String(slots), "--ctx", String(ctx), "--gpu", opts.gpu!, ...extra], { ...process.env, ...env });
  await workerReady(worker);
  await measure(`rbee ${variant}`, worker.url);
  await worker.stop();
}
if (opts["llama-server"]) {
  const port = 18000 + (process.pid % 1000);
  const extra = opts["llama-server-args"]!.split(/\s+/).filter(Boolean);
  const server = Bun.spawn([opts["llama-server"], "-m", opts.model!, "--port", String(port), "-np", "8", "-c", String(ctx * 8), "-ngl", "999", ...extra], { stdout: "ignore", stderr: "ignore" });
  const url = `http://127.0.0.1:${port}`;
  await untilReady(url, "/health", (b) => (b as { status?: string }).status === "ok");
  await measure(`llama-server -np 8 ${extra.join(" ")}`, url);
  server.kill("SIGTERM");
  await server.exited;
}
