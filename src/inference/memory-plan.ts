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
/** Head sizes with a flash-attention kernel on llama.cpp's GPU backends ("auto" turns it off for the others). */
const FLASH_HEAD_DIMS = new Set([64, 80, 96, 112, 128, 256]);
/** Host-side buffers beside the weights and the context: the output logits, token buffers, graph metadata. */
const HOST_OVERHEAD_BYTES = 32 * 1024 * 1024;

/** The tokens per slot a worker gets when none are asked for. */
export function defaultCtxPerSlot(shape: Pick<ModelShape, "trainCtx">): number {
  return Math.min(shape.trainCtx, DEFAULT_MAX_CTX);
}

/** Bytes of KV cache one token of one sequence takes (f16 keys and values in every layer). */
export function kvBytesPerToken(shape: ModelShape): number {
  return shape.layers * (shape.kvWidthK + shape.kvWidthV) * F16_BYTES;
}

export function flashAttentionOn(shape: ModelShape, onGpu: boolean): boolean {
  return onGpu && FLASH_HEAD_DIMS.has(shape.headDimK);
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
export function estimateMemory(shape: ModelShape, { weightsBytes, slots, ctxPerSlot, onGpu }: { weightsBytes: number; slots: number; ctxPerSlot: number; onGpu: boolean }): MemoryNeeds {
  const kvBytes = slots * ctxPerSlot * kvBytesPerToken(shape);
  const batch = Math.min(MAX_BATCH_TOKENS, ctxPerSlot * slots);
  const compute = computeBytes(shape, { ctxPerSlot, batch, flash: flashAttentionOn(shape, onGpu) });
  const device = weightsBytes + kvBytes + compute;
  return onGpu
    ? { weightsBytes, kvBytes, computeBytes: compute, vramBytes: device, ramBytes: HOST_OVERHEAD_BYTES }
    : { weightsBytes, kvBytes, computeBytes: compute, vramBytes: 0, ramBytes: device + HOST_OVERHEAD_BYTES };
}

/**
 * The tokens per slot to ask llama.cpp for: `requested` exactly, else the default halved until the estimate fits
 * `freeBytes` (never under MIN_CTX_PER_SLOT); undefined when even that does not fit.
 */
export function fittingCtxPerSlot(shape: ModelShape, options: { weightsBytes: number; slots: number; onGpu: boolean; freeBytes: number }): number | undefined {
  for (let ctx = defaultCtxPerSlot(shape); ctx >= Math.min(MIN_CTX_PER_SLOT, shape.trainCtx); ctx = Math.floor(ctx / 2)) {
    const needs = estimateMemory(shape, { ...options, ctxPerSlot: ctx });
    if ((options.onGpu ? needs.vramBytes : needs.ramBytes) <= options.freeBytes) return ctx;
  }
  return undefined;
}
