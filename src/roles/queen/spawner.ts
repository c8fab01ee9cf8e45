// Brings up a worker for a model where placement.ts puts it (a node with the model, one GPU, a split, the CPU), on a
// hive that downloads the model first where it lacks it; starts the local hive when there is none. At most one worker
// per model per hive.
import { RbeeError } from "../../errors";
import { logger } from "../../log";
import { LOCAL_NODE } from "../../nodes/registry";
import { place } from "./placement";
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
  /** Workers may go onto the CPU of a node that has GPUs (--allow-cpu). */
  allowCpu?: boolean;
}

const log = logger("queen");

export function createSpawner({ registry, ensureHive, knowsNode, workerSlots: defaultSlots, settingsFor, allowCpu = false }: SpawnerOptions) {
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
    const known = hives.flatMap((h) => h.models).find((m) => m.ref === modelRef && m.shape);
    const placement = place(
      free.map((h) => ({ node: h.node, devices: h.devices, hasModel: hasModel(h) })),
      { model: known ? { ref: modelRef, shape: known.shape, sizeBytes: known.size_bytes } : null, slots: workerSlots, ctx: settings?.ctx, allowCpu },
    );
    const hive = free.find((h) => h.node === placement.node)!;
    if (!hasModel(hive)) {
      log.info(`downloading ${modelRef} on ${hive.node}`);
      const model = await hive.client.download(modelRef);
      hive.models = [...hive.models.filter((m) => m.ref !== model.ref), model];
    }
    log.info(`spawning a worker for ${modelRef} on ${hive.node}${placement.devices ? ` (GPU ${placement.devices.join("+")})` : placement.gpu === "cpu" ? " (CPU)" : ""}`);
    // Its hive leaves it running however long it is idle: the queen's keep-alive stops it (keep-alive.ts).
    const worker = await hive.client.spawn({
      model: modelRef,
      slots: workerSlots,
      ...(settings?.ctx && { ctx: settings.ctx }),
      ...(placement.devices && { devices: placement.devices }),
      ...(placement.gpu === "cpu" && { gpu: "cpu" as const }),
      idle_timeout_s: 0,
    });
    registry.upsertWorker(hive.node, worker);
    return true;
  };
}
