// The memory a worker takes, from a model's shape: weights, the KV cache (slots × tokens per slot cells) and llama.cpp's
// compute buffers. One arithmetic for the worker's default context, the hive's fit check and the queen's placement.
// Pure: the shape comes from the GGUF header (gguf-metadata.ts) or from a hive's catalog entry.

export interface ModelShape {
  layers: number;
  embedding: number;
  feedForward: number;
  heads: number;
  /** Key and value widths per token per layer, summed over the KV heads (grouped-query attention shrinks them). */
  kvWidthK: number;
  kvWidthV: number;
  headDimK: number;
  vocab: number;
  trainCtx: number;
}

export interface MemoryNeeds {
  weightsBytes: number;
  kvBytes: number;
  computeBytes: number;
  /** Where they go: on the GPU (weights, KV, compute) or all in RAM. */
  vramBytes: number;
  ramBytes: number;
}

/** The default context per slot: the model's training context up to this many tokens. */
export const DEFAULT_MAX_CTX = 8192;
/** The smallest context per slot the worker shrinks to when memory is short. */
export const MIN_CTX_PER_SLOT = 256;
/** Tokens one decode call may carry; prompts longer than this are fed in chunks. */
export const MAX_BATCH_TOKENS = 512;

const F16_BYTES = 2;
const F32_BYTES = 4;

/** The KV cache's element types (llama-server's -ctk/-ctv, Ollama's OLLAMA_KV_CACHE_TYPE). */
export const KV_TYPES = ["f16", "q8_0", "q4_0"] as const;
export type KvType = (typeof KV_TYPES)[number];
export interface KvTypes {
  k: KvType;
  v: KvType;
}
export const F16_KV: KvTypes = { k: "f16", v: "f16" };

/** Keys' and values' types from settings that may name each, or both, or neither (then `byDefault`, else f16). */
export function kvTypesOf({ both, k, v }: { both?: KvType; k?: KvType; v?: KvType }, byDefault: KvType = "f16"): KvTypes {
  return { k: k ?? both ?? byDefault, v: v ?? both ?? byDefault };
}
/** Bytes per element: ggml's q8_0 block is 32 values in 34 bytes, q4_0's 32 in 18. */
const KV_TYPE_BYTES: Record<KvType, number> = { f16: F16_BYTES, q8_0: 34 / 32, q4_0: 18 / 32 };
/** The values per block of the quantized types: a head's width must be a multiple for flash attention to take them. */
export const KV_BLOCK = 32;
/** Head sizes with a flash-attention kernel on llama.cpp's GPU backends ("auto" turns it off for the others). */
const FLASH_HEAD_DIMS = new Set([64, 80, 96, 112, 128, 256]);
/** Host-side buffers beside the weights and the context: the output logits, token buffers, graph metadata. */
const HOST_OVERHEAD_BYTES = 32 * 1024 * 1024;

/** The tokens per slot a worker gets when none are asked for. */
export function defaultCtxPerSlot(shape: Pick<ModelShape, "trainCtx">): number {
  return Math.min(shape.trainCtx, DEFAULT_MAX_CTX);
}

/** Bytes of KV cache one token of one sequence takes (keys and values of every layer, in their types). */
export function kvBytesPerToken(shape: ModelShape, kv: KvTypes = F16_KV): number {
  return shape.layers * (shape.kvWidthK * KV_TYPE_BYTES[kv.k] + shape.kvWidthV * KV_TYPE_BYTES[kv.v]);
}

/**
 * The KV types a worker can have of those asked for, and how flash attention is set for them. llama.cpp quantizes V
 * only under flash attention, which takes quantized heads only whole blocks wide (and on a GPU only head sizes it has a
 * kernel for); a quantized K under flash attention needs whole blocks too. What cannot be had stays f16, and `note`
 * says why. f16 keeps rbee's usual choice: llama.cpp's "auto" on a GPU, off on the CPU.
 */
export function kvPlan(shape: Pick<ModelShape, "headDimK">, asked: KvTypes, onGpu: boolean): { kv: KvTypes; flash: boolean | "auto"; note?: string } {
  const head = shape.headDimK;
  const blocks = head % KV_BLOCK === 0;
  const kernel = !onGpu || FLASH_HEAD_DIMS.has(head);
  if (asked.v !== "f16") {
    if (blocks && kernel) return { kv: asked, flash: true };
    const why = blocks ? `llama.cpp's ${onGpu ? "GPU" : "CPU"} backend has no flash attention for its head size (${head})` : `its head size (${head}) is not a multiple of ${KV_BLOCK}`;
    return { kv: { k: asked.k, v: "f16" }, flash: false, note: `a ${asked.v} V cache needs flash attention, which this model cannot have: ${why}; V stays f16` };
  }
  if (asked.k !== "f16") return { kv: asked, flash: onGpu && blocks ? "auto" : false };
  return { kv: asked, flash: onGpu ? "auto" : false };
}

/** "q8_0" → llama.cpp's GGML type name, as node-llama-cpp takes it. */
export function ggmlTypeOf(type: KvType): "F16" | "Q8_0" | "Q4_0" {
  return type.toUpperCase() as "F16" | "Q8_0" | "Q4_0";
}

/**
 * llama.cpp reserves its compute buffer for the worst batch (batch tokens, every one an output), reusing memory between
 * stages: the peak is the larger of the output stage (the logits of every token) and the attention stage (without flash
 * attention, the f32 scores of every head over the slot's cells; the mask; the layer's activations).
 */
export function computeBytes(shape: ModelShape, { ctxPerSlot, batch, flash }: { ctxPerSlot: number; batch: number; flash: boolean }): number {
  const output = batch * (shape.vocab + 2 * shape.embedding) * F32_BYTES;
  const scores = flash ? 0 : ctxPerSlot * batch * shape.heads * F32_BYTES;
  const mask = ctxPerSlot * batch * (flash ? F16_BYTES : F32_BYTES);
  const activations = batch * (2 * shape.feedForward + 2 * shape.embedding) * F32_BYTES;
  return Math.max(output, scores + mask + activations);
}

/**
 * VRAM a worker needs on these GPUs together: on each one the process's own memory (CUDA's context, where the device
 * report knows it), and on every one past the first its own compute buffer besides.
 */
export function vramOnGpus(needs: MemoryNeeds, gpus: { process_bytes?: number }[]): number {
  return needs.vramBytes + gpus.reduce((sum, g) => sum + (g.process_bytes ?? 0), 0) + Math.max(0, gpus.length - 1) * needs.computeBytes;
}

/** A GPU's free memory as a worker can have it: Apple's unified memory (Metal) has no more than the RAM that is free. */
export function usableVramBytes(gpu: { vram_free_bytes: number; unified?: boolean }, ramFreeBytes: number): number {
  return gpu.unified ? Math.min(gpu.vram_free_bytes, ramFreeBytes) : gpu.vram_free_bytes;
}

/** What a worker with `slots` sequences of `ctxPerSlot` tokens each takes; `weightsBytes` is the GGUF file's size. */
export function estimateMemory(shape: ModelShape, { weightsBytes, slots, ctxPerSlot, onGpu, kv = F16_KV }: { weightsBytes: number; slots: number; ctxPerSlot: number; onGpu: boolean; kv?: KvTypes }): MemoryNeeds {
  // The types the worker will have (a V llama.cpp cannot quantize for this model stays f16), and whether llama.cpp
  // runs flash attention for them ("auto": where the GPU has a kernel for the head size).
  const plan = kvPlan(shape, kv, onGpu);
  const flash = plan.flash === true || (plan.flash === "auto" && FLASH_HEAD_DIMS.has(shape.headDimK));
  const kvBytes = slots * ctxPerSlot * kvBytesPerToken(shape, plan.kv);
  const batch = Math.min(MAX_BATCH_TOKENS, ctxPerSlot * slots);
  const compute = computeBytes(shape, { ctxPerSlot, batch, flash });
  const device = weightsBytes + kvBytes + compute;
  return onGpu
    ? { weightsBytes, kvBytes, computeBytes: compute, vramBytes: device, ramBytes: HOST_OVERHEAD_BYTES }
    : { weightsBytes, kvBytes, computeBytes: compute, vramBytes: 0, ramBytes: device + HOST_OVERHEAD_BYTES };
}

/**
 * The tokens per slot to ask llama.cpp for: `requested` exactly, else the default halved until the estimate fits
 * `freeBytes` (never under MIN_CTX_PER_SLOT); undefined when even that does not fit.
 */
export function fittingCtxPerSlot(shape: ModelShape, options: { weightsBytes: number; slots: number; onGpu: boolean; freeBytes: number; kv?: KvTypes }): number | undefined {
  for (let ctx = defaultCtxPerSlot(shape); ctx >= Math.min(MIN_CTX_PER_SLOT, shape.trainCtx); ctx = Math.floor(ctx / 2)) {
    const needs = estimateMemory(shape, { ...options, ctxPerSlot: ctx });
    if ((options.onGpu ? needs.vramBytes : needs.ramBytes) <= options.freeBytes) return ctx;
  }
  return undefined;
}
