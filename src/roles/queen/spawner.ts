// Brings up a worker for a model where placement.ts puts it (a node with the model, one GPU, a split, the CPU), on a
// hive that downloads the model first where it lacks it; starts the local hive when there is none. The scheduler asks for
// another replica while requests wait: one per GPU, one per CPU-only node, up to config.toml's max_replicas.
import { RbeeError } from "../../errors";
import type { SplitMode } from "../../inference/backend";
import type { KvTypes } from "../../inference/memory-plan";
import { logger } from "../../log";
import { LOCAL_NODE } from "../../nodes/registry";
import { splitLabel } from "../../format";
import { place } from "./placement";
import { placeOverNodes } from "./pool-placement";
import type { PoolSplits } from "./pool-splits";
import type { HiveEntry, Registry, WorkerEntry } from "./registry";

export interface SpawnerOptions {
  registry: Registry;
  /** Makes sure the node's hive runs (starting it if needed) and returns it. */
  ensureHive: (node: string) => Promise<HiveEntry>;
  /** Whether a node of this name exists (registered, or announced by its hive). */
  knowsNode: (node: string) => boolean;
  workerSlots: number;
  /** config.toml's slots, context and replica limit for a model, where it has any. */
  settingsFor?: (modelRef: string) => { slots?: number; ctx?: number; max_replicas?: number; split_mode?: SplitMode; nodes?: string[]; kv?: KvTypes } | undefined;
  /** Every node a model may be split over (the registered ones and this machine's), and the leases of split workers. */
  pool?: { nodes: () => string[]; splits: PoolSplits };
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

export function createSpawner({ registry, ensureHive, knowsNode, workerSlots: defaultSlots, settingsFor, allowCpu = false, pinned = () => false, stopWorker, onEvicted, pool }: SpawnerOptions) {
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
  /** Too big for the node it was placed on, in VRAM or in RAM. */
  const tooBig = (err: unknown) => err instanceof RbeeError && (err.code === "INSUFFICIENT_VRAM" || err.code === "INSUFFICIENT_MEMORY");

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

  /**
   * A worker whose layers go over several nodes: on this machine's hive, the others lending their devices through
   * rpc-servers and SSH tunnels (pool-placement.ts, pool-splits.ts). `pinnedNodes`: config.toml's; else the fewest.
   */
  async function spawnSplit(modelRef: string, pinnedNodes: string[] | undefined): Promise<boolean> {
    if (!pool) throw new RbeeError("INSUFFICIENT_VRAM", `${modelRef} fits on no single node, and this queen cannot split it over nodes`);
    const settings = settingsFor?.(modelRef);
    const names = [...new Set([LOCAL_NODE, ...(pinnedNodes ?? pool.nodes())])];
    for (const name of names) if (!knowsNode(name)) throw new RbeeError("NOT_FOUND", `config.toml pins ${modelRef} to an unknown node "${name}"`);
    // Pinned nodes must all answer; otherwise the pool is the nodes whose hives come up (one unreachable is no veto).
    const settled = await Promise.allSettled(names.map((n) => ensureHive(n)));
    const failed = settled.find((r, i) => r.status === "rejected" && (pinnedNodes || names[i] === LOCAL_NODE));
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const hives = settled.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    await Promise.all(hives.map(refreshDevices));
    const main = hives.find((h) => h.node === LOCAL_NODE)!;
    // Only the worker's node needs the file: the weights travel to the lenders when it loads.
    let model = main.models.find((m) => m.ref === modelRef && m.status === "ready");
    if (!model) {
      log.info(`downloading ${modelRef} on ${main.node}`);
      const downloaded = await main.client.download(modelRef);
      main.models = [...main.models.filter((m) => m.ref !== downloaded.ref), downloaded];
      model = downloaded;
    }
    const workerSlots = settings?.slots ?? defaultSlots;
    const plan = placeOverNodes(
      hives.map((h) => ({ node: h.node, devices: h.devices, hasModel: h.models.some((m) => m.ref === modelRef) })),
      { model: { ref: modelRef, shape: model.shape, sizeBytes: model.size_bytes }, slots: workerSlots, ctx: settings?.ctx, kv: settings?.kv, allowCpu, main: LOCAL_NODE, pinned: pinnedNodes },
    );
    log.info(`spawning a worker for ${modelRef} split over ${splitLabel(plan.parts)}`);
    const leases = await pool.splits.borrow(plan.lenders, (n) => registry.hives.get(n)!);
    let worker;
    try {
      worker = await main.client.spawn({
        model: modelRef,
        slots: workerSlots,
        ...(settings?.ctx && { ctx: settings.ctx }),
        ...(settings?.kv && { kv: settings.kv }),
        ...(plan.mainDevices.length && { devices: plan.mainDevices }),
        rpc: leases.map((l) => l.tunnel!.endpoint),
        tensor_split: plan.tensorSplit,
        idle_timeout_s: 0,
      });
    } catch (err) {
      await pool.splits.giveBack(leases);
      throw err;
    }
    const entry = registry.upsertWorker(main.node, worker);
    if (entry) entry.split = plan.parts;
    pool.splits.attach(worker.id, leases);
    // Gone already (its lender lost before this): what it held goes back now.
    if (!registry.workers.has(worker.id)) pool.splits.release(worker.id);
    return true;
  }

  /** Resolves true once a new worker serves, false when every eligible hive already has one for this model. */
  return async function spawn(modelRef: string, node?: string): Promise<boolean> {
    if (node && !knowsNode(node)) throw new RbeeError("NOT_FOUND", `unknown node "${node}"`);
    const pinnedNodes = settingsFor?.(modelRef)?.nodes;
    if (!node && pinnedNodes && pinnedNodes.some((n) => n !== LOCAL_NODE)) {
      // One worker over the pinned nodes; another replica would need devices they no longer have.
      if (registry.workersFor(modelRef).length) return false;
      return spawnSplit(modelRef, pinnedNodes);
    }
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
    // The first worker of a model no single node holds may go over several (on no node the request pinned).
    const splittable = !node && pool !== undefined && !replicas.length && pool.nodes().length > 0;
    const hasModel = (h: HiveEntry) => h.models.some((m) => m.ref === modelRef && m.status === "ready");
    const known = hives.flatMap((h) => h.models).find((m) => m.ref === modelRef && m.shape);
    // Fresh device reports: what workers started since the last heartbeat hold counts.
    await Promise.all(free.map(({ hive: h }) => refreshDevices(h)));
    // The estimate decides where; the worker's own load has the last word: one that finds too little memory (the
    // estimate was short, or another process took some meanwhile) makes the queen evict and place again.
    for (let attempt = 1; ; attempt++) {
      let placement: Awaited<ReturnType<typeof placeEvicting>>;
      try {
        placement = await placeEvicting(
        () => free.map(({ hive: h, exclude }) => ({ node: h.node, devices: h.devices && { ...h.devices, gpus: h.devices.gpus.filter((g) => !exclude.includes(g.index)) }, hasModel: hasModel(h) })),
        { model: known ? { ref: modelRef, shape: known.shape, sizeBytes: known.size_bytes } : null, slots: workerSlots, ctx: settings?.ctx, kv: settings?.kv, allowCpu },
        modelRef,
      );
      } catch (err) {
        // Nothing holds it alone, even after making room: the pool together may.
        if (tooBig(err) && splittable) return spawnSplit(modelRef, undefined);
        throw err;
      }
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
          ...(settings?.kv && { kv: settings.kv }),
          ...(placement.devices && { devices: placement.devices }),
          ...(placement.devices && placement.devices.length > 1 && settings?.split_mode && { split_mode: settings.split_mode }),
          ...(placement.gpu === "cpu" && { gpu: "cpu" as const }),
          idle_timeout_s: 0,
        });
        registry.upsertWorker(hive.node, worker);
        return true;
      } catch (err) {
        if (outOfMemory(err) && attempt < MAX_SPAWN_ATTEMPTS && (await evictOne(modelRef))) {
          log.warn(`${err instanceof Error ? err.message : err}; made room, placing again`);
          continue;
        }
        // The node's own check found it too big (a model no hive had, so placement could not estimate it).
        if (tooBig(err) && splittable) return spawnSplit(modelRef, undefined);
        throw err;
      }
    }
  };
}
