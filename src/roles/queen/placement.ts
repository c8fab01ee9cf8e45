// Where a new worker of a model goes, in order of preference: a node that already has the model on disk; one GPU where
// it fits best (the least free memory that still holds it); split over the fewest GPUs of one node; the CPU only on a
// node without GPUs, or where the operator allows it (--allow-cpu). Nothing fits: one error with the numbers.
// Pure: the hives' device reports and the model's shape in, a choice out (tests drive it with fake devices).
import { RbeeError } from "../../errors";
import { formatBytes } from "../../format";
import { defaultCtxPerSlot, estimateMemory, type KvTypes, type ModelShape, usableVramBytes, vramOnGpus } from "../../inference/memory-plan";
import type { DeviceReport } from "../../wire/hive";

export interface Candidate {
  node: string;
  devices: DeviceReport | null;
  hasModel: boolean;
}

export interface Placement {
  node: string;
  /** GPUs by index (one: pinned; several: split); absent on the CPU or where the node's GPUs are unknown. */
  devices?: number[];
  gpu: "auto" | "cpu";
}

export interface PlacementRequest {
  model: { ref: string; shape: ModelShape | null; sizeBytes: number } | null;
  slots: number;
  ctx?: number;
  allowCpu: boolean;
  /** The KV cache's types (f16 when absent): the memory plan counts them. */
  kv?: KvTypes;
}

type Scored = Placement & { rank: number; fit: number; hasModel: boolean };

export function place(candidates: Candidate[], request: PlacementRequest): Placement {
  const { model } = request;
  // A model no hive has yet (nothing to estimate from): the node with the most free memory downloads it.
  if (!model?.shape) {
    const best = [...candidates].sort((a, b) => Number(b.hasModel) - Number(a.hasModel) || freeOf(b) - freeOf(a))[0];
    if (!best) throw new RbeeError("NOT_FOUND", "no hive is up to place a worker on");
    return { node: best.node, gpu: "auto" };
  }
  const ctx = request.ctx ?? defaultCtxPerSlot(model.shape);
  const needs = (onGpu: boolean) => estimateMemory(model.shape!, { weightsBytes: model.sizeBytes, slots: request.slots, ctxPerSlot: ctx, onGpu, kv: request.kv });
  const gpuNeeds = needs(true);
  const gpuNeed = gpuNeeds.vramBytes;
  const ramNeed = needs(false).ramBytes;
  const options: Scored[] = [];
  for (const c of candidates) {
    const gpus = (c.devices?.gpus ?? []).map((g) => ({ ...g, vram_free_bytes: usableVramBytes(g, c.devices!.ram_free_bytes) }));
    // One GPU: the tightest fit keeps the roomy ones for bigger models.
    const single = gpus.filter((g) => g.vram_free_bytes >= vramOnGpus(gpuNeeds, [g])).sort((a, b) => a.vram_free_bytes - b.vram_free_bytes)[0];
    if (single) options.push({ node: c.node, devices: [single.index], gpu: "auto", rank: 0, fit: single.vram_free_bytes - vramOnGpus(gpuNeeds, [single]), hasModel: c.hasModel });
    else if (gpus.length > 1) {
      // Split: the fewest GPUs, roomiest first; each one past the first has its own compute buffer and context.
      const roomiest = [...gpus].sort((a, b) => b.vram_free_bytes - a.vram_free_bytes);
      let sum = 0;
      const chosen: typeof gpus = [];
      for (const g of roomiest) {
        chosen.push(g);
        sum += g.vram_free_bytes;
        if (chosen.length > 1 && sum >= vramOnGpus(gpuNeeds, chosen)) break;
      }
      const splitNeed = vramOnGpus(gpuNeeds, chosen);
      if (chosen.length > 1 && sum >= splitNeed) options.push({ node: c.node, devices: chosen.map((g) => g.index).sort((a, b) => a - b), gpu: "auto", rank: 1, fit: sum - splitNeed, hasModel: c.hasModel });
    }
    const cpuAllowed = gpus.length === 0 || request.allowCpu;
    const ram = c.devices?.ram_free_bytes ?? Infinity;
    if (cpuAllowed && ram >= ramNeed) options.push({ node: c.node, gpu: gpus.length ? "cpu" : "auto", rank: 2, fit: ram - ramNeed, hasModel: c.hasModel });
  }
  options.sort((a, b) => Number(b.hasModel) - Number(a.hasModel) || a.rank - b.rank || a.fit - b.fit);
  const best = options[0];
  if (best) return { node: best.node, gpu: best.gpu, ...(best.devices && { devices: best.devices }) };
  throw new RbeeError("INSUFFICIENT_VRAM", nothingFits(candidates, { gpuNeed, ramNeed, slots: request.slots, ctx, allowCpu: request.allowCpu, ref: model.ref }));
}

function freeOf(c: Candidate): number {
  const gpus = c.devices?.gpus ?? [];
  return gpus.length ? gpus.reduce((s, g) => s + g.vram_free_bytes, 0) : (c.devices?.ram_free_bytes ?? 0);
}

function nothingFits(candidates: Candidate[], n: { gpuNeed: number; ramNeed: number; slots: number; ctx: number; allowCpu: boolean; ref: string }): string {
  const nodes = candidates.map((c) => {
    const gpus = c.devices?.gpus ?? [];
    const gpuText = gpus.map((g) => `GPU ${g.index} ${formatBytes(g.vram_free_bytes)} free`).join(", ");
    const ram = c.devices ? `${formatBytes(c.devices.ram_free_bytes)} RAM free` : "devices unknown";
    return `${c.node}: ${gpuText ? `${gpuText}; ` : ""}${ram}${gpus.length && !n.allowCpu ? " (CPU not allowed: --allow-cpu)" : ""}`;
  });
  return `nothing fits ${n.ref} with ${n.slots} slots of ${n.ctx} tokens: it needs ${formatBytes(n.gpuNeed)} on GPUs or ${formatBytes(n.ramNeed)} of RAM; ${nodes.join("; ")}`;
}
