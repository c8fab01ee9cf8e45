// The narrow slice of node-llama-cpp's native addon that the batching loop drives directly.
// These are internal fields of node-llama-cpp 3.22 (pinned in package.json); keep every such access in this file.
import type { LlamaContext, LlamaModel } from "node-llama-cpp";
import type { SamplingParams } from "./generation";

export interface AddonContext {
  initBatch(size: number): void;
  addToBatch(sequenceId: number, firstTokenSequenceIndex: number, tokens: Uint32Array, logitIndexes: Uint32Array): Uint32Array;
  decodeBatch(): Promise<void>;
  sampleToken(batchLogitIndex: number, sampler: AddonSampler): Promise<number>;
  disposeSequence(sequenceId: number): void;
  setThreads(threads: number): void;
}

export interface AddonSampler {
  applyConfig(config: Record<string, unknown>): void;
  dispose(): void;
}

export function addonContextOf(context: LlamaContext): AddonContext {
  return (context as unknown as { _ctx: AddonContext })._ctx;
}

/** llama.cpp's usual defaults (top-k 40, top-p 0.95, min-p 0.05); temperature 0 means greedy. */
export function createSampler(model: LlamaModel, params: SamplingParams): AddonSampler {
  const internals = model as unknown as { _llama: { _bindings: { AddonSampler: new (m: unknown) => AddonSampler } }; _model: unknown };
  const sampler = new internals._llama._bindings.AddonSampler(internals._model);
  sampler.applyConfig({
    temperature: params.temperature,
    topK: params.topK ?? 40,
    topP: params.topP,
    minP: 0.05,
    seed: params.seed ?? Math.floor(Math.random() * 2 ** 31),
  });
  return sampler;
}
