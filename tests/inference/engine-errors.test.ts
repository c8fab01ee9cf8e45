// A request the engine cannot start (its sampler cannot be built) ends with an error at once, instead of leaving its
// caller waiting, and the engine goes on serving the others.
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Token } from "node-llama-cpp";
import { BatchEngine } from "../../src/inference/engine";
import { type LoadedModel, loadModel } from "../../src/inference/load";
import { STORIES_MODEL } from "../support/paths";

let loaded: LoadedModel;
beforeAll(async () => {
  loaded = await loadModel({ modelPath: STORIES_MODEL, gpu: "cpu", slots: 2, ctx: 256 });
});
afterAll(async () => {
  await loaded.dispose();
});

test("a sampler that cannot be built ends its request with an error, and the next request is served", async () => {
  const engine = new BatchEngine({ model: loaded.model, context: loaded.context, slots: 2, ctxPerSlot: loaded.ctxPerSlot, kvPerSlot: true, decodeRunsAhead: false, queueLimit: 8 });
  const promptTokens = loaded.model.tokenize("Once upon a time") as Token[];
  const request = { promptTokens, maxTokens: 20, stop: [], ignoreEos: true, temperature: 0.5, topP: 0.95, seed: 1 };
  // The wire always fills top_p in; a caller inside the process that does not gets an error, not a hang.
  const broken = engine.submit({ ...request, topP: undefined as unknown as number });
  const fine = engine.submit(request);
  const [failed, served] = await Promise.all([broken, fine]);
  expect(failed.stopReason).toBe("error");
  expect(failed.error).toContain("number");
  expect(failed.tokensOut).toBe(0);
  expect(served.stopReason).toBe("length");
  expect(served.tokensOut).toBe(20);
  expect(engine.slotsIdle).toBe(2);
  await engine.close();
});
