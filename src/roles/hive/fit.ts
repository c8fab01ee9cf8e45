// Before a spawn: does the model (weights + KV cache for its slots + compute buffers) fit in this machine's free memory?
// Estimated from the GGUF header. (node-llama-cpp's GgufInsights estimate grows with the square of the slot count,
// 46 GiB for stories260K with 32 slots of 2048 tokens, where llama.cpp allocates under 0.2 GiB.)
import { statSync } from "node:fs";
import { RbeeError } from "../../errors";
import { formatBytes } from "../../format";
import { loadNodeLlamaCpp } from "../../inference/runtime";
import { DEFAULT_MAX_CTX, MAX_BATCH_TOKENS } from "../../inference/load";
import type { DeviceReport } from "../../wire/hive";

export interface MemoryNeeds {
  vramBytes: number;
  ramBytes: number;
}

const F16_BYTES = 2;
const F32_BYTES = 4;
/** llama.cpp's fixed overheads: graph, scratch, runtime. */
const FIXED_OVERHEAD_BYTES = 64 * 1024 * 1024;

export async function estimateNeeds(modelPath: string, { onGpu, slots, ctxPerSlot }: { onGpu: boolean; slots: number; ctxPerSlot?: number }): Promise<MemoryNeeds> {
  const { readGgufFileInfo } = await loadNodeLlamaCpp();
  const info = await readGgufFileInfo(modelPath, { readTensorInfo: false, logWarnings: false });
  const meta = info.metadata as unknown as Record<string, Record<string, unknown>>;
  const arch = String(meta.general?.architecture ?? "llama");
  const a = (meta[arch] ?? {}) as Record<string, unknown>;
  const num = (v: unknown, fallback: number) => (typeof v === "number" && Number.isFinite(v) ? v : fallback);
  const layers = num(a.block_count, 32);
  const embd = num(a.embedding_length, 4096);
  const attention = (a.attention ?? {}) as Record<string, unknown>;
  const heads = num(attention.head_count, 32);
  const kvHeads = num(attention.head_count_kv, heads);
  const trainCtx = num(a.context_length, DEFAULT_MAX_CTX);
  const vocab = Array.isArray((meta.tokenizer as Record<string, unknown> | undefined)?.ggml && (meta.tokenizer as { ggml: { tokens?: unknown[] } }).ggml.tokens)
    ? (meta.tokenizer as { ggml: { tokens: unknown[] } }).ggml.tokens.length
    : 32000;
  const ctx = Math.min(ctxPerSlot ?? Math.min(trainCtx, DEFAULT_MAX_CTX), trainCtx) * slots;
  const kvBytes = layers * 2 * ((embd / heads) * kvHeads) * ctx * F16_BYTES;
  const batch = Math.min(MAX_BATCH_TOKENS, ctx);
  const computeBytes = batch * (vocab + 4 * embd) * F32_BYTES + FIXED_OVERHEAD_BYTES;
  const weights = statSync(modelPath).size;
  const device = weights + kvBytes + computeBytes;
  return onGpu ? { vramBytes: device, ramBytes: FIXED_OVERHEAD_BYTES } : { vramBytes: 0, ramBytes: device };
}

/** Throws a clear error ("needs 7.9 GiB VRAM, 3.1 GiB free on GPU 0") when the model does not fit. */
export function checkFit(needs: MemoryNeeds, devices: DeviceReport): void {
  const gpu = devices.gpus[0];
  if (gpu && needs.vramBytes > gpu.vram_free_bytes)
    throw new RbeeError("INSUFFICIENT_VRAM", `needs ${formatBytes(needs.vramBytes)} VRAM, ${formatBytes(gpu.vram_free_bytes)} free on GPU ${gpu.index} (${gpu.name})`);
  if (needs.ramBytes > devices.ram_free_bytes)
    throw new RbeeError("INSUFFICIENT_MEMORY", `needs ${formatBytes(needs.ramBytes)} RAM, ${formatBytes(devices.ram_free_bytes)} free`);
}
