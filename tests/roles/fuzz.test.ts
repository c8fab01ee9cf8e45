// Property-based fuzzing (fast-check) of every POST route of every role and dialect, on real processes: random JSON
// with the routes' own field names and wrong values, random text, and broken JSON. No answer is a 5xx but a reasoned
// 503 (busy, not ready, the Hub out of reach) with its code in the body, and every daemon still serves a good request
// afterwards. Traffic stays on loopback (the
// Hub endpoint points at a closed local port).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { removeTempHomes } from "../support/home";
import { STORIES_MODEL } from "../support/paths";
import { killStartedProcesses, type RbeeProcess, startRbee } from "../support/processes";
import { startQueen } from "../support/queen";
import { startWorker } from "../support/worker";

const RUNS = 40;
const FIELDS = [
  "model", "prompt", "messages", "role", "content", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "min_p", "seed", "stop",
  "stream", "n", "logprobs", "top_logprobs", "tools", "tool_choice", "response_format", "logit_bias", "input", "encoding_format", "query", "documents",
  "system", "options", "format", "keep_alive", "raw", "template", "images", "source", "destination", "name", "ref", "node", "slots", "ctx", "gpu",
  "stop_sequences", "tool_use_id", "type", "ignore_eos", "cache_prompt", "frequency_penalty", "presence_penalty", "repeat_penalty", "context_tokens",
  "n_predict", "grammar", "json_schema", "n_probs", "tokens", "with_pieces", "add_special", "echo", "suffix", "instructions", "max_output_tokens", "text",
  "previous_response_id", "store", "call_id", "output", "arguments",
];
const value = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.string({ maxLength: 40 }),
  fc.integer({ min: -5, max: 200_000 }),
  fc.double({ noNaN: true }),
  fc.constantFrom("stories260K", "hf:x/y/z.gguf", "../../etc/passwd", "/etc/passwd", "", "user", "assistant", "tool", "json", "none", "auto"),
  fc.array(fc.record({ role: fc.constantFrom("user", "system", "assistant", "tool", "x"), content: fc.oneof(fc.string({ maxLength: 30 }), fc.jsonValue({ maxDepth: 2 })) }), { maxLength: 3 }),
);
const body = fc.oneof(
  fc.dictionary(fc.constantFrom(...FIELDS), value, { maxKeys: 8 }).map((o) => JSON.stringify(o)),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 60 }),
  fc.constantFrom("{", "[1,", '{"prompt":', "null", '""', "{}", "[]"),
);

/** A 503 (busy, not ready, the Hub out of reach) that says why, in rbee's, Ollama's or Anthropic's error shape. */
function reasoned(status: number, text: string): boolean {
  if (status !== 503) return false;
  try {
    const json = JSON.parse(text);
    const code = json.error?.code ?? json.code ?? json.error?.type;
    return typeof code === "string" && code !== "INTERNAL" && code !== "api_error";
  } catch {
    return false;
  }
}

/** A good request for the route with up to three fields replaced, removed or added: it reaches past validation. */
function nearValid(good: Record<string, unknown>) {
  const edit = fc.tuple(fc.constantFrom(...Object.keys(good), ...FIELDS), fc.option(value, { nil: undefined }));
  return fc.array(edit, { maxLength: 3 }).map((edits) => {
    const out: Record<string, unknown> = { ...good };
    for (const [key, v] of edits) v === undefined ? delete out[key] : (out[key] = v);
    return JSON.stringify(out);
  });
}

const seen: { route: string; status: number }[] = [];
async function fuzzRoute(base: string, route: string, good: Record<string, unknown>) {
  await fc.assert(
    fc.asyncProperty(fc.oneof(body, nearValid(good), nearValid(good)), async (text) => {
      const res = await fetch(`${base}${route}`, { method: "POST", headers: { "content-type": "application/json" }, body: text, signal: AbortSignal.timeout(30_000) });
      // Streams are read to the end: a failure inside one must end it, not hang.
      const answer = await res.text();
      seen.push({ route, status: res.status });
      return res.status < 500 || reasoned(res.status, answer);
    }),
    { numRuns: RUNS, seed: 42 },
  );
}

let worker: RbeeProcess;
let queen: RbeeProcess & { home: string };
let hive: RbeeProcess;
beforeAll(async () => {
  worker = await startWorker(["--ctx", "128"]);
  queen = await startQueen();
  writeFileSync(join(queen.home, "config.toml"), `[models.fuzzy]\nmodel = "${STORIES_MODEL}"\nctx = 128\n`);
  await queen.stop();
  queen = Object.assign(await startRbee(["queen", "--port", "0", "--home", queen.home], { env: { RBEE_HF_ENDPOINT: "http://127.0.0.1:1" } }), { home: queen.home });
  hive = await startRbee(["hive", "--port", "0", "--home", queen.home + "-hive"], { env: { RBEE_HF_ENDPOINT: "http://127.0.0.1:1" } });
});
afterAll(async () => {
  await killStartedProcesses();
  removeTempHomes();
});

const CHAT = [{ role: "user", content: "hi" }];
describe("fuzzing every POST route", () => {
  const workerRoutes: [string, Record<string, unknown>][] = [
    ["/v1/execute", { prompt: "Once", max_tokens: 3 }],
    ["/execute", { prompt: "Once", max_tokens: 3 }],
    ["/v1/completions", { prompt: "Once", max_tokens: 3 }],
    ["/v1/chat/completions", { messages: CHAT, max_tokens: 3 }],
    ["/v1/chat/count_tokens", { messages: CHAT }],
    ["/v1/embeddings", { input: "hi" }],
    ["/v1/rerank", { query: "a", documents: ["b"] }],
    ["/completions", { prompt: "Once", max_tokens: 3, echo: true }],
    ["/completion", { prompt: "Once", n_predict: 3, n_probs: 2 }],
    ["/tokenize", { content: "Once", with_pieces: true }],
    ["/detokenize", { tokens: [1, 400] }],
    ["/apply-template", { messages: CHAT }],
  ];
  test("the worker's routes", async () => {
    for (const [route, good] of workerRoutes) await fuzzRoute(worker.url, route, good);
    const ok = await fetch(`${worker.url}/v1/completions`, { method: "POST", body: JSON.stringify({ prompt: "Once upon a time", max_tokens: 3 }) });
    expect(ok.status).toBe(200);
  }, 300_000);

  const model = "fuzzy";
  const queenRoutes: [string, Record<string, unknown>][] = [
    ["/v1/completions", { model, prompt: "Once", max_tokens: 3 }],
    ["/v1/chat/completions", { model, messages: CHAT, max_tokens: 3 }],
    ["/v1/embeddings", { model, input: "hi" }],
    ["/v1/rerank", { model, query: "a", documents: ["b"] }],
    ["/v2/tasks", { model, prompt: "Once", max_tokens: 3 }],
    ["/v1/messages", { model, max_tokens: 3, messages: CHAT }],
    ["/v1/messages/count_tokens", { model, messages: CHAT }],
    ["/v1/responses", { model, input: "Once", max_output_tokens: 3 }],
    ["/responses", { model, input: [{ role: "user", content: "Once" }], max_output_tokens: 3, stream: true }],
    ["/completion", { model, prompt: "Once", n_predict: 3, stream: true }],
    ["/tokenize", { model, content: "Once" }],
    ["/chat/completions", { model, messages: CHAT, max_tokens: 3 }],
    ["/api/chat", { model, messages: CHAT, stream: false, options: { num_predict: 3 } }],
    ["/api/generate", { model, prompt: "Once", stream: false, options: { num_predict: 3 } }],
    ["/api/embed", { model, input: "hi" }],
    ["/api/embeddings", { model, prompt: "hi" }],
    ["/api/show", { model }],
    ["/api/copy", { source: model, destination: "fz:1" }],
    ["/api/pull", { model: "hf:x/y/z.gguf", stream: false }],
    ["/v1/models/download", { ref: "hf:x/y/z.gguf" }],
    ["/v1/hives/ready", {}],
    ["/v1/workers/ready", {}],
    ["/v1/workers/gone", {}],
    ["/v1/workers/w-1/stop", {}],
  ];
  test("the queen's routes, every dialect", async () => {
    for (const [route, good] of queenRoutes) await fuzzRoute(queen.url, route, good);
    const ok = await fetch(`${queen.url}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ model, messages: CHAT, max_tokens: 3 }) });
    expect(ok.status).toBe(200);
  }, 300_000);

  test("the hive's routes", async () => {
    const hiveRoutes: [string, Record<string, unknown>][] = [
      ["/v1/models/download", { ref: "hf:x/y/z.gguf" }],
      ["/v1/workers/spawn", { model: "nope" }],
      ["/v1/workers/ready", {}],
      ["/v1/workers/w-1/stop", {}],
      // Lending this CPU node's GPU 0 is refused; a body that drops the field lends its CPU (stopped with the hive).
      ["/v1/rpc-servers", { devices: [0] }],
    ];
    for (const [route, good] of hiveRoutes) await fuzzRoute(hive.url, route, good);
    expect((await fetch(`${hive.url}/v1/models`)).status).toBe(200);
  }, 300_000);

  test("the fuzzing reached past validation: many requests were served", () => {
    expect(seen.length).toBe(RUNS * 41);
    expect(seen.filter((s) => s.status === 200).length).toBeGreaterThan(RUNS * 3);
  });
});
