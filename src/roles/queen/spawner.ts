// Brings up a worker for a model: on a hive where it fits (the hive's own memory arithmetic, from the model's shape)
// and that already has the model, then the most free memory; else on one that downloads it first; starts the local hive
// when there is none. At most one worker per model per hive.
import { RbeeError } from "../../errors";
import { logger } from "../../log";
import { defaultCtxPerSlot, estimateMemory } from "../../inference/memory-plan";
import { LOCAL_NODE } from "../../nodes/registry";
import type { ModelJson } from "../../wire/hive";
import type { HiveEntry, Registry } from "./registry";

export interface SpawnerOptions {
  registry: Registry;
  /** Makes sure the node's hive runs (starting it if needed) and returns it. */
  ensureHive: (node: string) => Promise<HiveEntry>;
  /** Whether a node of this name exists (registered, or announced by its hive). */
  knowsNode: (node: string) => boolean;
  workerSlots: number;
  /** config.toml's slots and context for a model, where it has any. */
  settingsFor?: (modelRef: string) => { slots?: number; ctx?: number } | undefined;
}

const log = logger("queen");

export function createSpawner({ registry, ensureHive, knowsNode, workerSlots: defaultSlots, settingsFor }: SpawnerOptions) {
  /** Resolves true once a new worker serves, false when every eligible hive already has one for this model. */
  return async function spawn(modelRef: string, node?: string): Promise<boolean> {
    if (node && !knowsNode(node)) throw new RbeeError("NOT_FOUND", `unknown node "${node}"`);
    let hives = registry.upHives().filter((h) => !node || h.node === node);
    if (!hives.length) hives = [await ensureHive(node ?? LOCAL_NODE)];
    const busy = new Set(registry.workersFor(modelRef).map((w) => w.node));
    const free = hives.filter((h) => !busy.has(h.node));
    if (!free.length) return false; // every hive already serves this model: waiters get the next free slot
    const settings = settingsFor?.(modelRef);
    const workerSlots = settings?.slots ?? defaultSlots;
    const hasModel = (h: HiveEntry) => h.models.some((m) => m.ref === modelRef && m.status === "ready");
    const model = hives.flatMap((h) => h.models).find((m) => m.ref === modelRef && m.shape);
    const fits = (h: HiveEntry) => !model || fitsOn(h, model, workerSlots);
    free.sort((a, b) => Number(fits(b)) - Number(fits(a)) || Number(hasModel(b)) - Number(hasModel(a)) || freeMemory(b) - freeMemory(a));
    const hive = free[0]!;
    if (!hasModel(hive)) {
      log.info(`downloading ${modelRef} on ${hive.node}`);
      const model = await hive.client.download(modelRef);
      hive.models = [...hive.models.filter((m) => m.ref !== model.ref), model];
    }
    log.info(`spawning a worker for ${modelRef} on ${hive.node}`);
    // Its hive leaves it running however long it is idle: the queen's keep-alive stops it (keep-alive.ts).
    const worker = await hive.client.spawn({ model: modelRef, slots: workerSlots, ...(settings?.ctx && { ctx: settings.ctx }), idle_timeout_s: 0 });
    registry.upsertWorker(hive.node, worker);
    return true;
  };
}

/** The memory a worker's weights, KV cache and buffers go to on this hive: its roomiest GPU's, else its RAM. */
function freeMemory(h: HiveEntry): number {
  const gpus = h.devices?.gpus ?? [];
  return gpus.length ? Math.max(...gpus.map((g) => g.vram_free_bytes)) : (h.devices?.ram_free_bytes ?? 0);
}

/** Whether a worker of the model's default context per slot fits the hive's free memory, as the hive will check. */
function fitsOn(h: HiveEntry, model: ModelJson, slots: number): boolean {
  if (!h.devices || !model.shape) return true;
  const onGpu = h.devices.gpus.length > 0;
  const needs = estimateMemory(model.shape, { weightsBytes: model.size_bytes, slots, ctxPerSlot: defaultCtxPerSlot(model.shape), onGpu });
  return (onGpu ? needs.vramBytes : needs.ramBytes) <= freeMemory(h);
}
