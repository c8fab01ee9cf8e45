// llama-server's own API on a real worker: /completion (text or tokens, streamed or whole, stops, grammar, json_schema,
// n_probs, seeds, cache_prompt, n_predict 0), /tokenize, /detokenize, /apply-template, /props, /health and /slots, each
// checked against what the worker's OpenAI routes or the model's own files say; bad input in llama-server's error shape.
// Also the fields llama-server adds to OpenAI's routes (grammar, json_schema), echo and suffix, and the unprefixed paths.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { summarizeGguf } from "../../../src/inference/gguf-metadata";
import { qwenChatModel } from "../../support/chat-model";
import { killStartedProcesses, type RbeeProcess } from "../../support/processes";
import { collectSse } from "../../support/sse";
import { startWorker } from "../../support/worker";

let worker: RbeeProcess;
let chat: RbeeProcess;
let chatModelPath: string;
beforeAll(async () => {
  chatModelPath = await qwenChatModel();
  [worker, chat] = await Promise.all([startWorker(["--ctx", "256", "--slots", "2"]), startWorker(["--ctx", "512", "--slots", "1"], {}, chatModelPath)]);
});
afterAll(killStartedProcesses);

const post = (path: string, body: unknown, base = worker.url) => fetch(`${base}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
const json = async (path: string, body: unknown, base = worker.url) => {
  const res = await post(path, body, base);
  expect(res.status).toBe(200);
  return res.json();
};
const GREEDY = { temperature: 0 };
/** The data of each record of an SSE answer. */
const sseData = async (res: Response) => (await collectSse(res)).map((e) => e.data);

describe("/completion", () => {
  test("whole: the greedy text OpenAI's /v1/completions gives, with llama-server's fields", async () => {
    const answer = await json("/completion", { prompt: "Once upon a time", n_predict: 12, ...GREEDY });
    const openai = await json("/v1/completions", { prompt: "Once upon a time", max_tokens: 12, ...GREEDY });
    expect(answer.content).toBe(openai.choices[0].text);
    expect(answer.content.length).toBeGreaterThan(10);
    expect(answer).toMatchObject({ stop: true, stop_type: "limit", stopping_word: "", tokens_predicted: 12, tokens_evaluated: openai.usage.prompt_tokens, truncated: false });
    expect(answer.generation_settings).toMatchObject({ n_predict: 12, temperature: 0 });
    expect(answer.timings.predicted_n).toBe(12);
    expect(answer.timings.prompt_n + answer.timings.cache_n).toBe(answer.tokens_evaluated);
    expect(answer.timings.predicted_per_second).toBeGreaterThan(0);
  });

  test("the prompt as token ids (from /tokenize, BOS included) or text and ids mixed gives the text prompt's answer", async () => {
    const { tokens } = await json("/tokenize", { content: "Once upon a time", add_special: true });
    expect(tokens[0]).toBe(1);
    const byText = await json("/completion", { prompt: "Once upon a time", n_predict: 10, ...GREEDY });
    const byTokens = await json("/completion", { prompt: tokens, n_predict: 10, ...GREEDY });
    // Text first (BOS added before it, as llama-server does), then ids: " a time".
    const mixed = await json("/completion", { prompt: ["Once upon", ...tokens.slice(3)], n_predict: 10, ...GREEDY });
    expect(byTokens.content).toBe(byText.content);
    expect(byTokens.tokens_evaluated).toBe(tokens.length);
    expect(mixed.tokens_evaluated).toBe(tokens.length);
    expect(mixed.content).toBe(byText.content);
  });

  test("streamed: its pieces add up to the whole answer; the last record has stop, stop_type and timings", async () => {
    const whole = await json("/completion", { prompt: "Once upon a time", n_predict: 16, ...GREEDY });
    const res = await post("/completion", { prompt: "Once upon a time", n_predict: 16, stream: true, ...GREEDY });
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const records = (await sseData(res)).map((d) => JSON.parse(d));
    const last = records.at(-1);
    expect(records.slice(0, -1).every((r) => r.stop === false && typeof r.content === "string")).toBe(true);
    expect(records.slice(0, -1).map((r) => r.content).join("")).toBe(whole.content);
    expect(last).toMatchObject({ stop: true, content: "", stop_type: "limit", tokens_predicted: 16 });
    expect(last.timings.predicted_n).toBe(16);
  });

  test("a stop string ends the text before it: stop_type word, stopping_word the string; the end of text is eos", async () => {
    const free = await json("/completion", { prompt: "Once upon a time", n_predict: 40, ...GREEDY });
    const word = free.content.split(" ").filter(Boolean)[3];
    const stopped = await json("/completion", { prompt: "Once upon a time", n_predict: 40, stop: [word], ...GREEDY });
    expect(stopped).toMatchObject({ stop_type: "word", stopping_word: word });
    expect(stopped.content).toBe(free.content.slice(0, free.content.indexOf(word)));
    const ended = await json("/completion", { prompt: "Once", n_predict: 8, grammar: 'root ::= "yes"', ...GREEDY });
    expect(ended).toMatchObject({ content: "yes", stop_type: "eos" });
  });

  test("grammar (GBNF) and json_schema constrain the text", async () => {
    for (const seed of [1, 2, 3, 4]) {
      const answer = await json("/completion", { prompt: "Once", n_predict: 8, seed, temperature: 1.5, grammar: 'root ::= ("yes" | "no") " " [0-9]' });
      expect(answer.content).toMatch(/^(yes|no) [0-9]$/);
    }
    const schema = { type: "object", properties: { n: { type: "integer" } }, required: ["n"], additionalProperties: false };
    const answer = await json("/completion", { prompt: "Once", n_predict: 40, seed: 7, json_schema: schema });
    expect(Object.keys(JSON.parse(answer.content))).toEqual(["n"]);
  });

  test("n_probs: each token with its log probability and that many alternatives, most likely first, streamed too", async () => {
    const answer = await json("/completion", { prompt: "Once upon a time", n_predict: 5, n_probs: 3, ...GREEDY });
    const probs = answer.completion_probabilities;
    expect(probs).toHaveLength(5);
    expect(probs.map((p: { token: string }) => p.token).join("")).toBe(answer.content);
    for (const p of probs) {
      expect(p.top_logprobs).toHaveLength(3);
      // Greedy: the chosen token is the most likely one.
      expect(p.top_logprobs[0].id).toBe(p.id);
      expect(p.logprob).toBeLessThanOrEqual(0);
      expect(p.top_logprobs[1].logprob).toBeLessThanOrEqual(p.top_logprobs[0].logprob);
    }
    const res = await post("/completion", { prompt: "Once upon a time", n_predict: 5, n_probs: 3, stream: true, ...GREEDY });
    const streamed = (await sseData(res)).map((d) => JSON.parse(d)).flatMap((r) => r.completion_probabilities ?? []);
    expect(streamed.map((p: { id: number }) => p.id)).toEqual(probs.map((p: { id: number }) => p.id));
  });

  test("seed: the same seed repeats the draw, another seed draws otherwise; -1 is a random one", async () => {
    const draw = (seed: number) => json("/completion", { prompt: "Once upon a time", n_predict: 24, temperature: 1.2, seed }).then((a) => a.content);
    expect(await draw(11)).toBe(await draw(11));
    const others = new Set(await Promise.all([12, 13, 14, 15].map(draw)));
    expect(others.size).toBeGreaterThan(1);
    const random = new Set(await Promise.all([-1, -1, -1, -1].map(draw)));
    expect(random.size).toBeGreaterThan(1);
  });

  test("cache_prompt: a repeated prompt is served from the slot's cells; with cache_prompt false it is evaluated anew", async () => {
    const prompt = "Once upon a time there was a little dog who liked to play in the park with his friends";
    await json("/completion", { prompt, n_predict: 2, ...GREEDY });
    const cached = await json("/completion", { prompt, n_predict: 2, ...GREEDY });
    expect(cached.timings.cache_n).toBeGreaterThan(10);
    const fresh = await json("/completion", { prompt, n_predict: 2, cache_prompt: false, ...GREEDY });
    expect(fresh.timings.cache_n).toBe(0);
  });

  test("n_predict 0 evaluates the prompt and generates nothing; -1 generates until the slot's context is full", async () => {
    const none = await json("/completion", { prompt: "Once upon a time", n_predict: 0 });
    expect(none).toMatchObject({ content: "", tokens_predicted: 0, stop_type: "limit" });
    const all = await json("/completion", { prompt: "Once upon a time", ignore_eos: true, ...GREEDY });
    expect(all.tokens_predicted + all.tokens_evaluated).toBe(256);
    expect(all.generation_settings.n_predict).toBe(256 - all.tokens_evaluated);
  });
});

describe("the other llama-server routes", () => {
  test("/tokenize and /detokenize round-trip; with_pieces gives each token's text", async () => {
    const text = "Once upon a time, a cat sat.";
    const { tokens } = await json("/tokenize", { content: text });
    expect(tokens.length).toBeGreaterThan(5);
    expect((await json("/detokenize", { tokens })).content.trim()).toBe(text);
    const pieces = (await json("/tokenize", { content: text, with_pieces: true })).tokens;
    expect(pieces.map((p: { id: number }) => p.id)).toEqual(tokens);
    expect(pieces.map((p: { piece: string }) => p.piece).join("").trim()).toBe(text);
    expect((await json("/tokenize", { content: "" })).tokens).toEqual([]);
  });

  test("/props: the context per slot, the slots, the chat template from the model's file, the build", async () => {
    const props = await (await fetch(`${chat.url}/props`)).json();
    const { chatTemplate } = await summarizeGguf(chatModelPath);
    expect(chatTemplate).toContain("im_start");
    expect(props).toMatchObject({ total_slots: 1, chat_template: chatTemplate, model_path: chatModelPath, modalities: { vision: false } });
    expect(props.default_generation_settings.n_ctx).toBe(512);
    expect(props.build_info).toMatch(/^rbee .* \(llama\.cpp .+\)$/);
    expect((await (await fetch(`${worker.url}/props`)).json()).default_generation_settings.n_ctx).toBe(256);
  });

  test("/apply-template: the prompt text the chat template makes of the messages", async () => {
    const { prompt } = await json("/apply-template", { messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hello there" }] }, chat.url);
    expect(prompt).toContain("<|im_start|>system\nBe brief.<|im_end|>");
    expect(prompt).toContain("<|im_start|>user\nHello there<|im_end|>");
    expect(prompt.trimEnd().endsWith("<|im_start|>assistant")).toBe(true);
  });

  test("/health in llama-server's shape; /v1/health carries its status too", async () => {
    expect(await (await fetch(`${worker.url}/health`)).json()).toEqual({ status: "ok" });
    expect((await (await fetch(`${worker.url}/v1/health`)).json()).status).toBe("ok");
  });

  test("/slots: each slot, busy while a request streams in it, and the tokens its cells hold", async () => {
    const before = await (await fetch(`${worker.url}/slots`)).json();
    expect(before.map((s: { id: number }) => s.id)).toEqual([0, 1]);
    const res = await post("/completion", { prompt: "Once upon a time", n_predict: 200, ignore_eos: true, stream: true, ...GREEDY });
    const reader = res.body!.getReader();
    await reader.read();
    const during = await (await fetch(`${worker.url}/slots`)).json();
    expect(during.filter((s: { is_processing: boolean }) => s.is_processing)).toHaveLength(1);
    expect(during.find((s: { is_processing: boolean }) => s.is_processing).n_tokens).toBeGreaterThan(0);
    await reader.cancel();
  });
});

describe("bad input, in llama-server's error shape", () => {
  const refused = async (path: string, body: unknown, status = 400) => {
    const res = await post(path, body);
    expect(res.status).toBe(status);
    const { error } = await res.json();
    expect(error.code).toBe(status);
    expect(typeof error.type).toBe("string");
    expect(error.message.length).toBeGreaterThan(5);
    return error.message as string;
  };
  test("each one says what is wrong", async () => {
    expect(await refused("/completion", { prompt: "Once", grammar: "root ::= nothing" })).toContain("GBNF");
    expect(await refused("/completion", { prompt: "Once", grammar: 'root ::= "a"', json_schema: { type: "object" } })).toContain("grammar and json_schema");
    expect(await refused("/completion", { prompt: ["one", "two"] })).toContain("several prompts");
    expect(await refused("/completion", { prompt: [1, 999999] })).toContain("not in the model's vocabulary");
    expect(await refused("/completion", { prompt: [] })).toContain("prompt");
    expect(await refused("/completion", { prompt: "Once", n_predict: -7 })).toContain("n_predict");
    expect(await refused("/completion", { prompt: "Once", n_probs: 99 })).toContain("n_probs");
    expect(await refused("/completion", { prompt: "Once ".repeat(400) })).toMatch(/context|tokens can hold/);
    expect(await refused("/completion", { n_predict: 3 })).toContain("prompt");
    expect(await refused("/detokenize", { tokens: [1, -3] })).toContain("tokens");
    expect(await refused("/detokenize", { tokens: [999999] })).toContain("vocabulary");
    expect(await refused("/tokenize", { content: 5 })).toContain("content");
    expect(await refused("/apply-template", { messages: [] })).toContain("messages");
    const res = await fetch(`${worker.url}/completion`, { method: "POST", body: "{not json" });
    expect(res.status).toBe(400);
    expect((await res.json()).error.code).toBe(400);
    expect((await json("/completion", { prompt: "Once", n_predict: 2 })).tokens_predicted).toBe(2);
  });
});

describe("llama-server's additions to the OpenAI routes, echo and suffix, paths without /v1", () => {
  test("grammar and json_schema as top-level fields of chat and completions", async () => {
    const completion = await json("/v1/completions", { prompt: "Once", max_tokens: 6, temperature: 1.5, seed: 3, grammar: 'root ::= "A" [0-9] [0-9]' });
    expect(completion.choices[0].text).toMatch(/^A[0-9][0-9]$/);
    const schema = { type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"], additionalProperties: false };
    const chatted = await json("/v1/chat/completions", { messages: [{ role: "user", content: "hi" }], max_tokens: 20, json_schema: schema }, chat.url);
    expect(typeof JSON.parse(chatted.choices[0].message.content).ok).toBe("boolean");
    const both = await post("/v1/completions", { prompt: "Once", grammar: 'root ::= "a"', response_format: { type: "json_object" } });
    expect(both.status).toBe(400);
    expect((await both.json()).error).toMatchObject({ type: "invalid_request_error" });
  });

  test("echo puts the prompt before the text, whole and streamed; suffix and echo with logprobs are refused", async () => {
    const plain = await json("/v1/completions", { prompt: "Once upon", max_tokens: 6, ...GREEDY });
    const echoed = await json("/v1/completions", { prompt: "Once upon", max_tokens: 6, echo: true, ...GREEDY });
    expect(echoed.choices[0].text).toBe(`Once upon${plain.choices[0].text}`);
    // The first token keeps its leading space after the prompt (" a", not "a").
    expect(plain.choices[0].text.startsWith(" ")).toBe(true);
    const res = await post("/v1/completions", { prompt: "Once upon", max_tokens: 6, echo: true, stream: true, ...GREEDY });
    const streamed = (await sseData(res)).filter((d) => d !== "[DONE]").map((d) => JSON.parse(d).choices[0].text).join("");
    expect(streamed).toBe(echoed.choices[0].text);
    for (const body of [{ suffix: "the end." }, { echo: true, logprobs: 1 }]) {
      const refused = await post("/v1/completions", { prompt: "Once", max_tokens: 2, ...body });
      expect(refused.status).toBe(400);
      expect((await refused.json()).error.message).toMatch(/suffix|echo/);
    }
  });

  test("the official openai client with a base URL that lacks /v1: chat, completions, models, embeddings", async () => {
    const client = new OpenAI({ baseURL: worker.url, apiKey: "unused", maxRetries: 0 });
    const completion = await client.completions.create({ model: "m", prompt: "Once upon a time", max_tokens: 5, temperature: 0 });
    expect(completion.choices[0]!.text.length).toBeGreaterThan(0);
    const chatted = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }], max_tokens: 3 });
    expect(chatted.choices[0]!.message.role).toBe("assistant");
    expect((await client.models.list()).data[0]!.id).toContain("stories260K");
    const embedded = await client.embeddings.create({ model: "m", input: "a cat" });
    expect(embedded.data[0]!.embedding.length).toBeGreaterThan(0);
    const missing = await fetch(`${worker.url}/chat/completions`, { method: "POST", body: "{}" });
    expect((await missing.json()).error.type).toBe("invalid_request_error");
  });
});
