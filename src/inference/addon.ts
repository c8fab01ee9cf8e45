// The narrow slice of node-llama-cpp's native addon that the batching loop drives directly.
// These are internal fields of node-llama-cpp 3.22 (pinned in package.json); keep every such access in this file.
import type { Llama, LlamaContext, LlamaModel, Token } from "node-llama-cpp";
import type { SamplingParams } from "./generation";

export interface AddonContext {
  initBatch(size: number): void;
  addToBatch(sequenceId: number, firstTokenSequenceIndex: number, tokens: Uint32Array, logitIndexes: Uint32Array): Uint32Array;
  decodeBatch(): Promise<void>;
  sampleToken(batchLogitIndex: number, sampler: AddonSampler): Promise<number>;
  disposeSequence(sequenceId: number): void;
  /** Frees the sequence's cells at positions [startPos, endPos) (endPos -1: to the end); false where it cannot. */
  removeTokenCellsFromSequence(sequenceId: number, startPos: number, endPos: number): boolean;
  /** The lowest and highest position the sequence's cells hold (-1 for none). */
  getSequenceKvCacheMinPosition(sequenceId: number): number;
  getSequenceKvCacheMaxPosition(sequenceId: number): number;
  /** Copies a sequence's cells (with one KV buffer per sequence, its whole buffer, at the next decode). */
  copySequenceStateFromOtherSequence(targetSequenceId: number, sourceSequenceId: number): Promise<number>;
  setThreads(threads: number): void;
  /** The last decode's embedding (sequence 0's, pooled, or the last token's), in an embeddings context. */
  getEmbedding(inputTokensLength: number): Float64Array;
  /** Bytes llama.cpp allocated for this context (KV cache and compute buffers), by where they live. */
  getMemoryBreakdown(): { cpuRam: number; gpuVram: number };
}

export interface AddonSampler {
  applyConfig(config: Record<string, unknown>): void;
  dispose(): void;
}

export function addonContextOf(context: LlamaContext): AddonContext {
  return (context as unknown as { _ctx: AddonContext })._ctx;
}

/**
 * rbee's step: waits for the decode in flight, samples its output `logitIndexes[i]` with `samplers[i]` (null: drop it),
 * appends each sequence that goes on (`slots[i]` at `positions[i]`; -1: it stops; an end-of-generation token stops it
 * where `stopAtEog[i]`) to the batch prepared with initBatch/addToBatch, and starts decoding that batch without waiting.
 * `onSampled` gets the tokens (-1: none), then one flag per output (1: appended), before the decode starts where
 * `tokensBeforeLaunch` (the default), else right after; the promise settles once the decode has started, and until
 * then the context must not be touched.
 */
export type SampleThenDecode = (
  context: AddonContext,
  samplers: (AddonSampler | null)[],
  logitIndexes: Int32Array,
  slots: Int32Array,
  positions: Int32Array,
  stopAtEog: Uint8Array,
  onSampled: (tokensThenFlags: Int32Array) => void,
  tokensBeforeLaunch?: boolean,
  preparedSamplers?: AddonSampler[],
  preparedIndexes?: Int32Array,
) => Promise<void>;

/** rbee's step, present when scripts/build-addon.ts rebuilt the addon this model was loaded with. */
export function sampleThenDecodeOf(model: LlamaModel): SampleThenDecode | undefined {
  return rbeeCall<SampleThenDecode>(bindingsOf(model), "rbeeSampleThenDecode");
}

/**
 * Tokens picked on the backend (native/backend-sampling.cpp) for this context from now on, where the addon can;
 * returns whether it does. Call before the context's first step; off detaches every chain (after its last step).
 */
export function useBackendSampling(model: LlamaModel, context: AddonContext, on: boolean): boolean {
  const set = rbeeCall<(context: AddonContext, on: boolean) => void>(bindingsOf(model), "rbeeBackendSampling");
  set?.(context, on);
  return set !== undefined && on;
}

/** Tokens picked on the backend and sampler chains attached since useBackendSampling turned it on (0 where it is off). */
export function backendSamplingCountsOf(model: LlamaModel, context: AddonContext): { picks: number; attachments: number } {
  const [picks = 0, attachments = 0] = rbeeCall<(context: AddonContext) => number[]>(bindingsOf(model), "rbeeBackendSamplingCounts")?.(context) ?? [];
  return { picks, attachments };
}

/** The parts of the last native step, in microseconds, in this order (launch_cpu: with RBEE_PROFILE_STEPS=1 only). */
export const NATIVE_STEP_PARTS = ["wait", "sample", "send", "launch", "launch_cpu"] as const;

/** How long the last step waited for the decode, sampled, handed the tokens over and started the next decode. */
export function lastStepTimingsOf(model: LlamaModel): (() => number[]) | undefined {
  return rbeeCall(bindingsOf(model), "rbeeLastStepTimings");
}

/**
 * Makes contexts created from now on share one KV buffer across sequences, if the addon was rebuilt by
 * scripts/build-addon.ts (see native/kv-unified.cpp for why); returns whether it could.
 */
export function useUnifiedKvCache(llama: Llama, on: boolean): boolean {
  const set = rbeeCall<(on: boolean) => void>(bindingsOfLlama(llama), "rbeeSetKvUnified");
  set?.(on);
  return set !== undefined;
}

/**
 * Contexts created from now on split each decode call into micro-batches of at most `tokens` (0: one, as large as the
 * call), where the addon was rebuilt by scripts/build-addon.ts (native/micro-batch.cpp); returns whether it could.
 */
export function useMicroBatch(llama: Llama, tokens: number): boolean {
  const set = rbeeCall<(tokens: number) => void>(bindingsOfLlama(llama), "rbeeSetMicroBatch");
  set?.(tokens);
  return set !== undefined;
}

/** Where rpc-server and llama.cpp's RPC backend lie beside the addon; undefined without rbee's rebuilt addon. */
export function rpcFolderOf(llama: Llama): string | undefined {
  return rbeeCall<() => string>(bindingsOfLlama(llama), "rbeeRpcFolder")?.();
}

/** Whether loadModel's splitMode and tensorSplit reach llama.cpp (rbee's rebuilt addon: native/model-split.cpp). */
export function supportsModelSplit(llama: Llama): boolean {
  return rbeeCall<() => boolean>(bindingsOfLlama(llama), "rbeeModelSplit")?.() === true;
}

/**
 * Gives llama.cpp's graphs of different batch sizes different CUDA-graph keys, so a prompt does not evict the decode
 * graph's capture (see native/graph-keys.cpp), if the addon was rebuilt by scripts/build-addon.ts. Returns how many
 * graphs were keyed so far in this process, or undefined without the rebuilt addon.
 */
export function useGraphKeys(llama: Llama, on?: boolean): number | undefined {
  return rbeeCall<(on?: boolean) => number>(bindingsOfLlama(llama), "rbeeGraphKeys")?.(on);
}

/**
 * What an engine (node-llama-cpp's addon: rbee's rebuild, or a stock one of whichever release) can do, by the calls it
 * has. A feature it lacks is a path the worker does not take: an older engine serves correctly, only slower or without
 * the routes that need it.
 */
export const ENGINE_FEATURES = {
  /** One native call samples every sequence and starts the next decode (else a call per sequence). */
  "batched-sampling": "rbeeSampleThenDecode",
  /** Copying a sequence's cells to another slot: closing slot gaps and moving a held prompt (else neither). */
  "sequence-copy": "AddonContext.copySequenceStateFromOtherSequence",
  "logprobs": "rbeeWantLogprobs",
  "micro-batches": "rbeeSetMicroBatch",
  "model-split": "rbeeModelSplit",
  "graph-keys": "rbeeGraphKeys",
  "backend-sampling": "rbeeBackendSampling",
  "sequence-embeddings": "rbeeSequenceEmbedding",
  "unified-kv": "rbeeSetKvUnified",
  /** A model's layers on other machines' devices, through llama.cpp's RPC backend (native/rpc-devices.cpp). */
  "rpc": "rbeeRpcFolder",
  /** Prompts kept in host memory beyond the slots (native/seq-state.cpp; else only what the slots hold). */
  "host-prompt-cache": "rbeeSeqStateGet",
} as const;
export type EngineFeature = keyof typeof ENGINE_FEATURES;

/** The features of ENGINE_FEATURES this Llama's addon lacks (RBEE_STOCK_ADDON=1: every one of rbee's). */
export function engineFeaturesOff(llama: Llama): EngineFeature[] {
  const bindings = bindingsOfLlama(llama);
  return (Object.entries(ENGINE_FEATURES) as [EngineFeature, string][])
    .filter(([, call]) => {
      const [cls, method] = call.split(".");
      if (method) return typeof (bindings[cls!] as { prototype?: Record<string, unknown> } | undefined)?.prototype?.[method] !== "function";
      return rbeeCall(bindings, call) === undefined;
    })
    .map(([feature]) => feature);
}

/** Whether the addon can copy a sequence's cells into another sequence (node-llama-cpp 3.22's; 3.21's has no such call). */
export function canCopySequences(addon: AddonContext): boolean {
  return typeof (addon as Partial<AddonContext>).copySequenceStateFromOtherSequence === "function";
}

/** The llama.cpp release the addon was built from, as its build metadata names it (v0.5.0 …). */
export function llamaCppReleaseOf(llama: Llama): string {
  return llama.llamaCppRelease.release;
}

/** One of rbee's additions to the addon; RBEE_STOCK_ADDON=1 ignores them all, so benchmarks can compare in one run. */
function rbeeCall<T>(bindings: Record<string, unknown>, name: string): T | undefined {
  if (process.env.RBEE_STOCK_ADDON === "1") return undefined;
  return typeof bindings[name] === "function" ? (bindings[name] as T) : undefined;
}

type Bindings = Record<string, unknown> & {
  AddonSampler: new (model: unknown) => AddonSampler;
  AddonGrammarEvaluationState: new (model: unknown, grammar: unknown) => unknown;
};

function bindingsOfLlama(llama: Llama): Bindings {
  return (llama as unknown as { _bindings: Bindings })._bindings;
}

function bindingsOf(model: LlamaModel): Bindings {
  return bindingsOfLlama((model as unknown as { _llama: Llama })._llama);
}

/** A sampled token's log probability under the model's raw distribution, and the most likely tokens' beside it. */
export interface TokenLogprob {
  token: number;
  logprob: number;
  top: { token: number; logprob: number }[];
}

/**
 * Makes rbee's batched sampling record log probabilities for this sampler (top: how many alternatives; -1 stops and
 * forgets it, which must happen before the sampler is disposed). False without rbee's rebuilt addon.
 */
export function wantLogprobs(model: LlamaModel, sampler: AddonSampler, top: number): boolean {
  const want = rbeeCall<(sampler: AddonSampler, top: number) => void>(bindingsOf(model), "rbeeWantLogprobs");
  want?.(sampler, top);
  return want !== undefined;
}

/** The log probabilities recorded for this sampler since the last call, in sampling order. */
export function takeLogprobs(model: LlamaModel, sampler: AddonSampler, top: number): TokenLogprob[] {
  const take = rbeeCall<(sampler: AddonSampler) => Float64Array>(bindingsOf(model), "rbeeTakeLogprobs");
  const flat = take?.(sampler) ?? new Float64Array();
  const stride = 2 + 2 * top;
  const out: TokenLogprob[] = [];
  for (let at = 0; at + 1 < flat.length; at += stride) {
    const alternatives: TokenLogprob["top"] = [];
    for (let i = 0; i < top; i++) alternatives.push({ token: flat[at + 2 + 2 * i]!, logprob: flat[at + 3 + 2 * i]! });
    out.push({ token: flat[at]!, logprob: flat[at + 1]!, top: alternatives });
  }
  return out;
}

/**
 * A token's own text, as it reads inside a text: node-llama-cpp's detokenize drops a SentencePiece piece's leading
 * space ("▁there" → "there") when the token stands alone, so the raw piece says whether it had one.
 */
export function tokenPiece(model: LlamaModel, token: number): string {
  const text = model.detokenize([token as Token], true);
  const raw = (model as unknown as { _model: { getTokenString(token: number): string } })._model.getTokenString(token);
  return raw.startsWith("\u2581") && !text.startsWith(" ") ? ` ${text}` : text;
}

/** rbee's read of any sequence's embedding after a decode, where the addon was rebuilt (native/embeddings.cpp). */
export function sequenceEmbeddingOf(model: LlamaModel): ((context: AddonContext, sequence: number, lastToken: number) => Float32Array) | undefined {
  return rbeeCall(bindingsOf(model), "rbeeSequenceEmbedding");
}

/** A sequence's KV cells as bytes and back (native/seq-state.cpp), where the addon was rebuilt. */
export interface SequenceState {
  get(context: AddonContext, sequence: number): Uint8Array;
  /** False where llama.cpp refused the state (no room in the sequence). */
  set(context: AddonContext, sequence: number, state: Uint8Array): boolean;
}

export function sequenceStateOf(model: LlamaModel): SequenceState | undefined {
  const bindings = bindingsOf(model);
  const get = rbeeCall<SequenceState["get"]>(bindings, "rbeeSeqStateGet");
  const set = rbeeCall<SequenceState["set"]>(bindings, "rbeeSeqStateSet");
  return get && set ? { get, set } : undefined;
}

/** The most characters one token of the vocabulary stands for (its longest piece). */
export function longestTokenPiece(model: LlamaModel, vocabSize: number): number {
  const native = (model as unknown as { _model: { getTokenString(token: number): string } })._model;
  let longest = 1;
  for (let token = 0; token < vocabSize; token++) longest = Math.max(longest, native.getTokenString(token).length);
  return longest;
}

/** How many of the last generated tokens the repeat, frequency and presence penalties look at (llama.cpp's default). */
export const PENALTY_LAST_TOKENS = 64;

/** llama.cpp's usual defaults (top-k 40, top-p 0.95, min-p 0.05); temperature 0 means greedy. */
export function createSampler(model: LlamaModel, params: SamplingParams): AddonSampler {
  const bindings = bindingsOf(model);
  const nativeModel = (model as unknown as { _model: unknown })._model;
  const sampler = new bindings.AddonSampler(nativeModel);
  const bias = params.logitBias && params.logitBias.size > 0 ? params.logitBias : undefined;
  const penalized = (params.repeatPenalty ?? 1) !== 1 || (params.frequencyPenalty ?? 0) !== 0 || (params.presencePenalty ?? 0) !== 0;
  sampler.applyConfig({
    temperature: params.temperature,
    topK: params.topK ?? 40,
    topP: params.topP,
    minP: params.minP ?? 0.05,
    seed: params.seed ?? Math.floor(Math.random() * 2 ** 31),
    ...(penalized && {
      repeatPenaltyTokens: new Uint32Array(),
      repeatPenalty: params.repeatPenalty ?? 1,
      repeatPenaltyMaxTokens: PENALTY_LAST_TOKENS,
      repeatPenaltyFrequencyPenalty: params.frequencyPenalty ?? 0,
      repeatPenaltyPresencePenalty: params.presencePenalty ?? 0,
    }),
    ...(bias && { tokenBiasKeys: Uint32Array.from(bias.keys()), tokenBiasValues: Float32Array.from(bias.values()) }),
    // A fresh evaluation state per request: it follows this request's text through the grammar.
    ...(params.grammar && { grammarEvaluationState: new bindings.AddonGrammarEvaluationState(nativeModel, (params.grammar as unknown as { _grammar: unknown })._grammar) }),
  });
  return sampler;
}
