// rbee's addon gives llama.cpp's graphs of different batch sizes different CUDA-graph keys (native/graph-keys.cpp): a
// few empty tensors before the token embedding's node, in no graph. The loader turns it on; it must key the graphs
// llama.cpp builds (prompts and one-token steps) and change nothing in what is generated.
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Token } from "node-llama-cpp";
import { useGraphKeys } from "../../src/inference/addon";
import { BatchEngine } from "../../src/inference/engine";
import { type LoadedModel, loadModel } from "../../src/inference/load";
import { STORIES_MODEL } from "../support/paths";

const SLOTS = 2;
let loaded: LoadedModel;
beforeAll(async () => {
  loaded = await loadModel({ modelPath: STORIES_MODEL, gpu: "cpu", slots: SLOTS, ctx: 256 });
});
afterAll(async () => {
  useGraphKeys(loaded.llama, true);
  await loaded.dispose();
});

async function stories(): Promise<string[]> {
  const engine = new BatchEngine({ model: loaded.model, context: loaded.context, slots: SLOTS, ctxPerSlot: loaded.ctxPerSlot, kvPerSlot: !loaded.unifiedKv, decodeRunsAhead: false, queueLimit: 8 });
  const prompts = ["Once upon a time", "The cat"].map((p) => loaded.model.tokenize(p) as Token[]);
  const results = await Promise.all(prompts.map((promptTokens, i) => engine.submit({ promptTokens, maxTokens: 50, stop: [], ignoreEos: true, temperature: 0, topP: 0.95, seed: i })));
  await engine.close();
  return results.map((r) => r.text);
}

test("the loader turns graph keys on, they key the graphs llama.cpp builds, and the text stays the same without them", async () => {
  const before = useGraphKeys(loaded.llama);
  expect(before).toBeNumber();
  const keyed = await stories();
  const afterKeyed = useGraphKeys(loaded.llama)!;
  // A prompt graph and one-token graphs at least.
  expect(afterKeyed - before!).toBeGreaterThanOrEqual(2);

  useGraphKeys(loaded.llama, false);
  const plain = await stories();
  expect(useGraphKeys(loaded.llama)).toBe(afterKeyed);
  expect(plain).toEqual(keyed);
  expect(keyed.every((t) => t.length > 50)).toBe(true);
  expect(keyed[0]).not.toBe(keyed[1]);
});
