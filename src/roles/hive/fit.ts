// Before a spawn: does the model (weights + KV cache for its slots + compute buffers) fit in this machine's free
// memory? The arithmetic is the worker's own (inference/memory-plan.ts), from the GGUF header.
import { statSync } from "node:fs";
import { RbeeError } from "../../errors";
import { formatBytes } from "../../format";
import { readModelShape } from "../../inference/gguf-metadata";
import { defaultCtxPerSlot, estimateMemory, fittingCtxPerSlot, type KvTypes, type MemoryNeeds, MIN_CTX_PER_SLOT, usableVramBytes } from "../../inference/memory-plan";
import type { DeviceReport } from "../../wire/hive";

export type WorkerNeeds = MemoryNeeds & { slots: number; ctxPerSlot: number };

/**
 * The memory a worker of `slots` slots will take: with `ctxPerSlot`, exactly that; without, the default context per
 * slot as the worker shrinks it to fit `freeBytes` (down to its minimum, which is what is reported when nothing fits).
 */
export async function estimateNeeds(modelPath: string, { onGpu, slots, ctxPerSlot, freeBytes = Infinity, kv }: { onGpu: boolean; slots: number; ctxPerSlot?: number; freeBytes?: number; kv?: KvTypes }): Promise<WorkerNeeds> {
  const shape = await readModelShape(modelPath);
  const weightsBytes = statSync(modelPath).size;
  const ctx = Math.min(ctxPerSlot ?? fittingCtxPerSlot(shape, { weightsBytes, slots, onGpu, freeBytes, kv }) ?? Math.min(MIN_CTX_PER_SLOT, defaultCtxPerSlot(shape)), shape.trainCtx);
  return { ...estimateMemory(shape, { weightsBytes, slots, ctxPerSlot: ctx, onGpu, kv }), slots, ctxPerSlot: ctx };
}

/** Throws a clear error ("needs 7.9 GiB VRAM, 3.1 GiB free on GPU 0") when the model does not fit. */
export function checkFit(needs: WorkerNeeds, devices: DeviceReport): void {
  // The GPU with the most free memory (a worker on one GPU; splits come with placement across GPUs).
  const gpus = devices.gpus.map((g) => ({ ...g, vram_free_bytes: usableVramBytes(g, devices.ram_free_bytes) }));
  const gpu = gpus.sort((a, b) => b.vram_free_bytes - a.vram_free_bytes)[0];
  const what = `${needs.slots} slots of ${needs.ctxPerSlot} tokens: weights ${formatBytes(needs.weightsBytes)}, KV cache ${formatBytes(needs.kvBytes)}, compute ${formatBytes(needs.computeBytes)}`;
  if (gpu && needs.vramBytes > gpu.vram_free_bytes)
    throw new RbeeError("INSUFFICIENT_VRAM", `needs ${formatBytes(needs.vramBytes)} VRAM, ${formatBytes(gpu.vram_free_bytes)} free on GPU ${gpu.index} (${gpu.name}); ${what}`);
  if (needs.ramBytes > devices.ram_free_bytes)
    throw new RbeeError("INSUFFICIENT_MEMORY", `needs ${formatBytes(needs.ramBytes)} RAM, ${formatBytes(devices.ram_free_bytes)} free; ${what}`);
}
