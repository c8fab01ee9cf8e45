// stories260K on the CPU for a test file's engine tests, and engines on its context.
import { afterAll, beforeAll } from "bun:test";
import { BatchEngine, type EngineOptions } from "../../src/inference/engine";
import { type LoadedModel, loadModel } from "../../src/inference/load";
import { STORIES_MODEL } from "./paths";

/** Loads stories260K with `slots` slots of `ctx` tokens before the file's tests and frees it after them. */
export function storiesForFile(slots: number, ctx: number): () => LoadedModel {
  let loaded: LoadedModel | undefined;
  beforeAll(async () => {
    loaded = await loadModel({ modelPath: STORIES_MODEL, gpu: "cpu", slots, ctx });
  });
  afterAll(async () => {
    await loaded?.dispose();
  });
  return () => loaded!;
}

/** An engine over the loaded model's `slots` slots and KV layout, stepping as on the CPU unless `options` say. */
export function engineOn(loaded: LoadedModel, slots: number, options: Partial<EngineOptions> = {}): BatchEngine {
  return new BatchEngine({ model: loaded.model, context: loaded.context, slots, ctxPerSlot: loaded.ctxPerSlot, kvPerSlot: !loaded.unifiedKv, decodeRunsAhead: false, queueLimit: 8, ...options });
}
