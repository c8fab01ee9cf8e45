// rbee's batched sampling takes shortcuts that must not change what is sampled, seed for seed:
// - the chain gets only the most likely tokens where it keeps a few (top-k, greedy), with logit biases and penalties
//   applied to the tokens they name instead of looked up over the whole vocabulary;
// - where a grammar refused the chain's pick, it is asked about the most likely tokens one by one until the chain has
//   what it keeps, and masks the whole vocabulary only when that cannot be known from the most likely few hundred.
// node-llama-cpp's own per-sequence sampling (the stock step) does neither: the same requests must give the same texts
// on it and on rbee's step. The synthetic Qwen model's flat logits make the grammar refuse most picks, so every path is
// taken; its logits have no ties (a tie may be broken either way, as llama.cpp's own sorts may).
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { LlamaGrammar, Token } from "node-llama-cpp";
import { BatchEngine, type GenerationRequest } from "../../src/inference/engine";
import { type LoadedModel, loadModel } from "../../src/inference/load";
import { qwenChatModel } from "../support/chat-model";

const SLOTS = 4;
const schema = {
  type: "object",
  properties: { hero: { type: "string" }, age: { type: "integer" }, friends: { type: "array", items: { type: "string" } } },
  required: ["hero", "age", "friends"],
} as const;

let loaded: LoadedModel;
let grammar: LlamaGrammar;
beforeAll(async () => {
  loaded = await loadModel({ modelPath: await qwenChatModel(), gpu: "cpu", slots: SLOTS, ctx: 512 });
  grammar = await loaded.llama.createGrammarForJsonSchema(schema);
});
afterAll(async () => {
  await loaded.dispose();
});

type Settings = Omit<GenerationRequest, "promptTokens" | "maxTokens" | "stop">;

/** Runs the requests side by side on a fresh engine, with rbee's step or the stock one. */
async function generate(requests: Settings[], step: "stock" | "rbee"): Promise<string[]> {
  if (step === "stock") process.env.RBEE_STOCK_ADDON = "1";
  const engine = new BatchEngine({ model: loaded.model, context: loaded.context, slots: SLOTS, ctxPerSlot: loaded.ctxPerSlot, kvPerSlot: !loaded.unifiedKv, decodeRunsAhead: false, queueLimit: 8 });
  delete process.env.RBEE_STOCK_ADDON;
  expect(engine.sampling).toBe(step === "stock" ? "per-sequence" : "batched");
  const promptTokens = loaded.model.tokenize("A story as JSON") as Token[];
  const results = await Promise.all(requests.map((r) => engine.submit({ ...r, promptTokens, maxTokens: 40, stop: [] })));
  await engine.close();
  for (const r of results) expect(r.stopReason === "stop" || r.stopReason === "length").toBe(true);
  return results.map((r) => r.text);
}

async function sameOnBothSteps(requests: Settings[]): Promise<string[]> {
  const stock = await generate(requests, "stock");
  expect(await generate(requests, "rbee")).toEqual(stock);
  // Not empty or fixed strings: the seeds and settings give different texts.
  expect(new Set(stock).size).toBe(stock.length);
  expect(stock.every((t) => t.length > 20)).toBe(true);
  return stock;
}

const bias = new Map([[27, 2], [90, -1.5], [4000, 3]]);

test("biases and penalties over the chain's few most likely tokens sample what the whole vocabulary does", async () => {
  await sameOnBothSteps([
    { temperature: 0, topP: 1, seed: 1, frequencyPenalty: 0.8, logitBias: bias },
    { temperature: 0.8, topP: 0.95, seed: 2, presencePenalty: 1.2, repeatPenalty: 1.3 },
    { temperature: 0.9, topP: 0.9, topK: 5, seed: 3, frequencyPenalty: -0.5, logitBias: bias },
    { temperature: 0.8, topP: 0.95, topK: 0, seed: 4, frequencyPenalty: 0.5, logitBias: bias },
  ]);
});

test("constrained requests sample the same with rbee's grammar shortcuts", async () => {
  const texts = await sameOnBothSteps([
    { temperature: 0, topP: 1, seed: 1, grammar },
    { temperature: 0.8, topP: 0.95, seed: 2, grammar },
    { temperature: 0.8, topP: 0.95, seed: 3, frequencyPenalty: 0.5, logitBias: bias, grammar },
    { temperature: 0.8, topP: 0.95, topK: 0, seed: 4, presencePenalty: 0.5, grammar },
  ]);
  for (const text of texts) expect(text).toStartWith("{");
});
