// Brings up a worker for a model where placement.ts puts it (a node with the model, one GPU, a split, the CPU), on a
// hive that downloads the model first where it lacks it; starts the local hive when there is none. The scheduler asks for
// another replica while requests wait: one per GPU, one per CPU-only node, up to config.toml's max_replicas.
import { RbeeError } from "../../errors";
import type { SplitMode } from "../../inference/backend";
import { logger } from "../../log";
import { LOCAL_NODE } from "../../nodes/registry";
import { place } from "./placement";
import type { HiveEntry, Registry, WorkerEntry } from "./registry";

export interface SpawnerOptions {
  registry: Registry;
  /** Makes sure the node's hive runs (starting it if needed) and returns it. */
  ensureHive: (node: string) => Promise<HiveEntry>;
  /** Whether a node of this name exists (registered, or announced by its hive). */
  knowsNode: (node: string) => boolean;
  workerSlots: number;
  /** config.toml's slots, context and replica limit for a model, where it has any. */
  settingsFor?: (modelRef: string) => { slots?: number; ctx?: number; max_replicas?: number; split_mode?: SplitMode } | undefined;
  /** Workers may go onto the CPU of a node that has GPUs (--allow-cpu). */
  allowCpu?: boolean;
  /** Models never unloaded to make room (config.toml's pinned). */
  pinned?: (modelRef: string) => boolean;
  /** Stops a worker through its hive (and forgets it). */
  stopWorker?: (worker: WorkerEntry) => Promise<void>;
  /** Counted when an idle worker is evicted. */
  onEvicted?: (worker: WorkerEntry) => void;
}

const log = logger("queen");

/** Reads a hive's devices again (what workers started or stopped since its last heartbeat hold); the last report stays where it cannot answer. */
async function refreshDevices(hive: HiveEntry): Promise<void> {
  hive.devices = await hive.client.devices().catch(() => hive.devices);
}

/** Spawns of one worker that ran out of memory, each after an eviction, before the error goes to the client. */
const MAX_SPAWN_ATTEMPTS = 3;

export function createSpawner({ registry, ensureHive, knowsNode, workerSlots: defaultSlots, settingsFor, allowCpu = false, pinned = () => false, stopWorker, onEvicted }: SpawnerOptions) {
  /**
   * Makes room for a model: the least recently used idle worker that is not pinned stops (never one with requests in
   * flight), and its node's devices are read again. False where no such worker is left.
   */
  async function evictOne(forModel: string): Promise<boolean> {
    const idle = [...registry.workers.values()].filter((w) => w.inflight === 0 && w.modelRef !== forModel && !pinned(w.modelRef)).sort((a, b) => a.lastUsedAt - b.lastUsedAt);
    const victim = idle[0];
    if (!victim || !stopWorker) return false;
    log.info(`evicting idle worker ${victim.id} (${victim.modelRef}) on ${victim.node} to make room for ${forModel}`);
    await stopWorker(victim);
    onEvicted?.(victim);
    const hive = registry.hives.get(victim.node);
    if (hive) await refreshDevices(hive);
    return true;
  }

  const outOfMemory = (err: unknown) => err instanceof RbeeError && err.code === "INSUFFICIENT_VRAM";

  /** Placement, evicting idle workers while nothing fits. */
  async function placeEvicting(candidates: () => Parameters<typeof place>[0], request: Parameters<typeof place>[1], forModel: string) {
    for (;;) {
      try {
        return place(candidates(), request);
      } catch (err) {
        if (!outOfMemory(err) || !(await evictOne(forModel))) throw err;
      }
    }
  }

  /** Resolves true once a new worker serves, false when every eligible hive already has one for this model. */
  return async function spawn(modelRef: string, node?: string): Promise<boolean> {
    if (node && !knowsNode(node)) throw new RbeeError("NOT_FOUND", `unknown node "${node}"`);
    let hives = registry.upHives().filter((h) => !node || h.node === node);
    if (!hives.length) hives = [await ensureHive(node ?? LOCAL_NODE)];
    const settings = settingsFor?.(modelRef);
    const replicas = registry.workersFor(modelRef);
    if (settings?.max_replicas !== undefined && replicas.length >= settings.max_replicas) return false;
    // Another replica goes to a node without one, or to a GPU of a node where none of its replicas is: one replica per
    // GPU (two on one GPU share its compute), one per CPU-only node.
    const taken = (h: HiveEntry) => replicas.filter((w) => w.node === h.node).flatMap((w) => w.devices ?? (h.devices?.gpus ?? []).map((g) => g.index));
    const free = hives
      .filter((h) => !replicas.some((w) => w.node === h.node) || (h.devices?.gpus ?? []).some((g) => !taken(h).includes(g.index)))
      .map((h) => ({ hive: h, exclude: taken(h) }));
    if (!free.length) return false; // every device already serves this model: waiters get the next free slot
    const workerSlots = settings?.slots ?? defaultSlots;
    const hasModel = (h: HiveEntry) => h.models.some((m) => m.ref === modelRef && m.status === "ready");
    const known = hives.flatMap((h) => h.models).find((m) => m.ref === modelRef && m.shape);
    // Fresh device reports: what workers started since the last heartbeat hold counts.
    await Promise.all(free.map(({ hive: h }) => refreshDevices(h)));
    // The estimate decides where; the worker's own load has the last word: one that finds too little memory (the
    // estimate was short, or another process took some meanwhile) makes the queen evict and place again.
    for (let attempt = 1; ; attempt++) {
      const placement = await placeEvicting(
        () => free.map(({ hive: h, exclude }) => ({ node: h.node, devices: h.devices && { ...h.devices, gpus: h.devices.gpus.filter((g) => !exclude.includes(g.index)) }, hasModel: hasModel(h) })),
        { model: known ? { ref: modelRef, shape: known.shape, sizeBytes: known.size_bytes } : null, slots: workerSlots, ctx: settings?.ctx, allowCpu },
        modelRef,
      );
      const hive = free.find(({ hive: h }) => h.node === placement.node)!.hive;
      if (!hasModel(hive)) {
        log.info(`downloading ${modelRef} on ${hive.node}`);
        const model = await hive.client.download(modelRef);
        hive.models = [...hive.models.filter((m) => m.ref !== model.ref), model];
      }
      log.info(`spawning a worker for ${modelRef} on ${hive.node}${placement.devices ? ` (GPU ${placement.devices.join("+")})` : placement.gpu === "cpu" ? " (CPU)" : ""}`);
      try {
        // Its hive leaves it running however long it is idle: the queen's keep-alive stops it (keep-alive.ts).
        const worker = await hive.client.spawn({
          model: modelRef,
          slots: workerSlots,
          ...(settings?.ctx && { ctx: settings.ctx }),
          ...(placement.devices && { devices: placement.devices }),
          ...(placement.devices && placement.devices.length > 1 && settings?.split_mode && { split_mode: settings.split_mode }),
          ...(placement.gpu === "cpu" && { gpu: "cpu" as const }),
          idle_timeout_s: 0,
        });
        registry.upsertWorker(hive.node, worker);
        return true;
      } catch (err) {
        if (!outOfMemory(err) || attempt >= MAX_SPAWN_ATTEMPTS) throw err;
        log.warn(`${err instanceof Error ? err.message : err}; making room and placing again`);
        if (!(await evictOne(modelRef))) throw err;
      }
    }
  };
}
