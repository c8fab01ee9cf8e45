// What the queen knows right now about hives and workers: rebuilt from the hives' announcements, never stored.
import { HiveClient } from "../../clients/hive-client";
import type { DeviceReport, ModelJson, WorkerInfo } from "../../wire/hive";

export interface HiveEntry {
  node: string;
  url: string;
  pid: number;
  client: HiveClient;
  devices: DeviceReport | null;
  models: ModelJson[];
  state: "up" | "down";
  lastSeen: number;
  failures: number;
}

export interface WorkerEntry {
  id: string;
  node: string;
  url: string;
  modelRef: string;
  slotsTotal: number;
  /** Requests the queen has in flight on this worker. */
  inflight: number;
  backend: string | null;
  device: string | null;
  /** The GPUs of its node it is pinned to; null: all. */
  devices: number[] | null;
  /** A worker split over several nodes: each node's part of the model (the queen's plan); absent for one node. */
  split?: { node: string; share: number }[];
  /** When a request last ended on it (or it came up): the least recently used idle worker is evicted first. */
  lastUsedAt: number;
  /** Tokens streamed from it through the queen (the dashboard's tokens/s). */
  tokensOut: number;
}

export interface ModelListing {
  ref: string;
  /** The catalog entry of the first hive that has it; null for a model only a worker knows. */
  model: ModelJson | null;
  nodes: string[];
  workers: number;
}

export class Registry {
  readonly hives = new Map<string, HiveEntry>();
  readonly workers = new Map<string, WorkerEntry>();

  /** Told of every worker that leaves (whatever the path): what was lent to it goes back. */
  onWorkerRemoved: (worker: WorkerEntry) => void = () => {};

  constructor(private readonly apiToken?: string) {}

  upsertHive(a: { node: string; url: string; pid: number; devices: DeviceReport | null; models: ModelJson[]; workers: WorkerInfo[] }): HiveEntry {
    const known = this.hives.get(a.node);
    const entry: HiveEntry = {
      node: a.node,
      url: a.url,
      pid: a.pid,
      client: known?.url === a.url ? known.client : new HiveClient(a.url, this.apiToken),
      devices: a.devices,
      models: a.models,
      state: "up",
      lastSeen: Date.now(),
      failures: 0,
    };
    this.hives.set(a.node, entry);
    const present = new Set<string>();
    for (const w of a.workers) {
      if (w.state !== "ready" || !w.url) continue;
      present.add(w.id);
      this.upsertWorker(a.node, w);
    }
    for (const w of this.workers.values()) if (w.node === a.node && !present.has(w.id)) this.removeWorker(w.id);
    return entry;
  }

  upsertWorker(node: string, w: WorkerInfo): WorkerEntry | undefined {
    if (w.state !== "ready" || !w.url) return undefined;
    const fields = { id: w.id, node, url: w.url, modelRef: w.model_ref, slotsTotal: w.slots_total, backend: w.backend, device: w.device, devices: w.devices ?? null };
    const known = this.workers.get(w.id);
    // Leases hold the entry itself: update it in place so their releases count.
    if (known) {
      this.unindex(known);
      Object.assign(known, fields);
      this.index(known);
      return known;
    }
    const entry: WorkerEntry = { ...fields, inflight: 0, lastUsedAt: Date.now(), tokensOut: 0 };
    this.workers.set(w.id, entry);
    this.index(entry);
    return entry;
  }

  removeWorker(id: string): WorkerEntry | undefined {
    const w = this.workers.get(id);
    this.workers.delete(id);
    if (w) {
      this.unindex(w);
      this.onWorkerRemoved(w);
    }
    return w;
  }

  /** Workers by the model they serve: a request looks at its model's workers, not at the whole pool's. */
  private readonly byModel = new Map<string, Set<WorkerEntry>>();
  private index(w: WorkerEntry): void {
    const set = this.byModel.get(w.modelRef) ?? new Set<WorkerEntry>();
    set.add(w);
    this.byModel.set(w.modelRef, set);
  }
  private unindex(w: WorkerEntry): void {
    const set = this.byModel.get(w.modelRef);
    set?.delete(w);
    if (set && !set.size) this.byModel.delete(w.modelRef);
  }

  /** Marks a hive down and forgets its workers; returns them. */
  markHiveDown(node: string): WorkerEntry[] {
    const hive = this.hives.get(node);
    if (hive) hive.state = "down";
    const gone = [...this.workers.values()].filter((w) => w.node === node);
    for (const w of gone) this.removeWorker(w.id);
    return gone;
  }

  upHives(): HiveEntry[] {
    return [...this.hives.values()].filter((h) => h.state === "up");
  }

  /** Whether any worker serves the model (without listing them: asked once per worker row of a pool's views). */
  hasWorkersFor(modelRef: string): boolean {
    return this.byModel.has(modelRef);
  }

  /** The models some worker serves. */
  modelsWithWorkers(): string[] {
    return [...this.byModel.keys()];
  }

  workersFor(modelRef: string, node?: string): WorkerEntry[] {
    const all = [...(this.byModel.get(modelRef) ?? [])];
    return node ? all.filter((w) => w.node === node) : all;
  }

  /** Resolves what a client typed (reference, id or short name) to a model reference some hive has. */
  findModel(key: string): ModelJson | undefined {
    for (const hive of this.upHives()) {
      const m = hive.models.find((m) => m.ref === key || m.id === key || m.name === key);
      if (m) return m;
    }
    return undefined;
  }

  /** Every model a client can name: in an up hive's catalog, or served by a worker; where it is and whether loaded. */
  modelListing(): ModelListing[] {
    const byRef = new Map<string, ModelListing>();
    for (const hive of this.upHives())
      for (const m of hive.models) {
        if (m.status !== "ready") continue;
        const entry = byRef.get(m.ref) ?? { ref: m.ref, model: m, nodes: [], workers: 0 };
        entry.nodes.push(hive.node);
        byRef.set(m.ref, entry);
      }
    for (const w of this.workers.values()) {
      const entry = byRef.get(w.modelRef) ?? { ref: w.modelRef, model: null, nodes: [w.node], workers: 0 };
      entry.workers++;
      byRef.set(w.modelRef, entry);
    }
    return [...byRef.values()];
  }
}
