// Before a spawn: does the model (weights + context for its slots) fit in this machine's free memory?
import { RbeeError } from "../../errors";
import { loadNodeLlamaCpp } from "../../inference/runtime";
import { type DeviceReport, sharedLlama } from "./devices";
import { formatBytes } from "../../format";

export interface MemoryNeeds {
  vramBytes: number;
  ramBytes: number;
}

export async function estimateNeeds(modelPath: string, { onGpu, slots, ctxPerSlot }: { onGpu: boolean; slots: number; ctxPerSlot?: number }): Promise<MemoryNeeds> {
  const { readGgufFileInfo, GgufInsights } = await loadNodeLlamaCpp();
  const { llama } = await sharedLlama();
  const insights = await GgufInsights.from(await readGgufFileInfo(modelPath), llama);
  const gpuLayers = onGpu ? insights.totalLayers : 0;
  const contextSize = Math.min(ctxPerSlot ?? Math.min(insights.trainContextSize ?? 4096, 4096), insights.trainContextSize ?? Infinity) * slots;
  const model = insights.estimateModelResourceRequirements({ gpuLayers });
  const context = insights.estimateContextResourceRequirements({ contextSize, modelGpuLayers: gpuLayers, sequences: slots });
  return { vramBytes: model.gpuVram + context.gpuVram, ramBytes: model.cpuRam + context.cpuRam };
}

/** Throws a clear error ("needs 7.9 GiB VRAM, 3.1 GiB free on GPU 0") when the model does not fit. */
export function checkFit(needs: MemoryNeeds, devices: DeviceReport): void {
  const gpu = devices.gpus[0];
  if (gpu && needs.vramBytes > gpu.vram_free_bytes)
    throw new RbeeError("INSUFFICIENT_VRAM", `needs ${formatBytes(needs.vramBytes)} VRAM, ${formatBytes(gpu.vram_free_bytes)} free on GPU ${gpu.index} (${gpu.name})`);
  if (needs.ramBytes > devices.ram_free_bytes)
    throw new RbeeError("INSUFFICIENT_MEMORY", `needs ${formatBytes(needs.ramBytes)} RAM, ${formatBytes(devices.ram_free_bytes)} free`);
}
