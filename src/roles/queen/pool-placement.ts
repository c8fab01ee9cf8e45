// A model too big for any one node, placed over several: the worker runs on the queen's own machine (the SSH tunnels
// to the other nodes' rpc-servers end there) with its GPUs, and the fewest other nodes lend their devices (each GPU,
// or a GPU-less node's CPU and RAM), the roomiest first, or the nodes config.toml pins. Each device's share of the
// layers is its free memory. Pure: device reports and the model's shape in, a plan out.
import { RbeeError } from "../../errors";
import { formatBytes } from "../../format";
import { defaultCtxPerSlot, estimateMemory, usableVramBytes, vramOnGpus } from "../../inference/memory-plan";
import type { Candidate, PlacementRequest } from "./placement";

export interface Lender {
  node: string;
  /** Its GPUs lent, by index; null: its CPU (a node without GPUs). */
  devices: number[] | null;
  /** Each lent device's share, in its order. */
  shares: number[];
}

export interface PoolSplit {
  /** The node whose hive runs the worker. */
  main: string;
  /** In the worker's device order: the lenders' devices first (llama.cpp's order for RPC devices), then the main node's GPUs. */
  lenders: Lender[];
  mainDevices: number[];
  mainShares: number[];
  /** llama.cpp's tensor split: every share, in device order. */
  tensorSplit: number[];
  /** Each node's part of the model, for `rbee status` and the dashboard. */
  parts: { node: string; share: number }[];
}

const GIB = 2 ** 30;

/** What a node can hold as devices: its GPUs' usable memory, or for a node without GPUs its RAM (lent as a CPU device). */
function devicesOf(c: Candidate): { index: number | null; free: number }[] {
  const gpus = c.devices?.gpus ?? [];
  if (gpus.length) return gpus.map((g) => ({ index: g.index, free: usableVramBytes(g, c.devices!.ram_free_bytes) }));
  return [{ index: null, free: c.devices?.ram_free_bytes ?? 0 }];
}

export function placeOverNodes(candidates: Candidate[], request: PlacementRequest & { main: string; pinned?: string[] }): PoolSplit {
  const { model } = request;
  if (!model?.shape) throw new RbeeError("MODEL_NOT_FOUND", "a model is split over nodes only once a hive has it (its shape decides the split)");
  const main = candidates.find((c) => c.node === request.main);
  if (!main) throw new RbeeError("NOT_FOUND", `the queen's own node (${request.main}) has no hive up to run a split worker`);
  const ctx = request.ctx ?? defaultCtxPerSlot(model.shape);
  const needs = estimateMemory(model.shape, { weightsBytes: model.sizeBytes, slots: request.slots, ctxPerSlot: ctx, onGpu: true, kv: request.kv });
  const mainGpus = (main.devices?.gpus ?? []).map((g) => ({ index: g.index, free: usableVramBytes(g, main.devices!.ram_free_bytes) }));
  const others = candidates.filter((c) => c.node !== request.main);
  let lenders: Candidate[];
  if (request.pinned) {
    const unknown = request.pinned.filter((n) => n !== request.main && !others.some((c) => c.node === n));
    if (unknown.length) throw new RbeeError("NOT_FOUND", `config.toml pins ${model.ref} to ${unknown.join(", ")}, whose hive is not up`);
    lenders = request.pinned.filter((n) => n !== request.main).map((n) => others.find((c) => c.node === n)!);
  } else {
    // The fewest nodes: the roomiest first, until the devices hold the model with a compute buffer each.
    lenders = [];
    const sorted = [...others].sort((a, b) => sum(devicesOf(b)) - sum(devicesOf(a)));
    for (const c of sorted) {
      if (holds(needs, [...lenders.flatMap(devicesOf), ...mainGpus])) break;
      lenders.push(c);
    }
  }
  const devices = [...lenders.flatMap(devicesOf), ...mainGpus];
  if (!lenders.length || !holds(needs, devices)) {
    const nodes = [main, ...others].map((c) => `${c.node}: ${devicesOf(c).map((d) => `${d.index === null ? "CPU" : `GPU ${d.index}`} ${formatBytes(d.free)} free`).join(", ")}`);
    throw new RbeeError("INSUFFICIENT_VRAM", `nothing holds ${model.ref} with ${request.slots} slots of ${ctx} tokens, not even split over ${request.pinned ? "the pinned nodes" : "the pool"}: it needs ${formatBytes(vramOnGpus(needs, devices.map(() => ({}))))} over ${devices.length} devices; ${nodes.join("; ")}`);
  }
  // Shares in GiB, rounded: llama.cpp only compares them.
  const share = (free: number) => Math.max(0.01, Math.round((free / GIB) * 100) / 100);
  const planned: Lender[] = lenders.map((c) => {
    const lent = devicesOf(c);
    return { node: c.node, devices: lent[0]!.index === null ? null : lent.map((d) => d.index!), shares: lent.map((d) => share(d.free)) };
  });
  const mainShares = mainGpus.map((g) => share(g.free));
  const tensorSplit = [...planned.flatMap((l) => l.shares), ...mainShares];
  const total = tensorSplit.reduce((a, b) => a + b, 0);
  const parts = [...planned.map((l) => ({ node: l.node, share: l.shares.reduce((a, b) => a + b, 0) / total })), ...(mainShares.length ? [{ node: main.node, share: mainShares.reduce((a, b) => a + b, 0) / total }] : [])];
  return { main: main.node, lenders: planned, mainDevices: mainGpus.map((g) => g.index), mainShares, tensorSplit, parts };
}

function sum(devices: { free: number }[]): number {
  return devices.reduce((s, d) => s + d.free, 0);
}

/** Whether these devices, together, hold the model: its weights, KV cache and a compute buffer on each. */
function holds(needs: ReturnType<typeof estimateMemory>, devices: { free: number }[]): boolean {
  return devices.length > 0 && sum(devices) >= vramOnGpus(needs, devices.map(() => ({})));
}
