// What the dashboard shows: one snapshot of the cluster (nodes and their devices, workers, models per node, queues),
// and a history sampled every second of tokens/s and requests in flight, per worker and in total, for its charts.
import { LOCAL_NODE, type NodeRegistry, sshLabel } from "../../nodes/registry";
import type { KeepAlive } from "./keep-alive";
import type { Registry } from "./registry";
import type { Scheduler } from "./scheduler";

export const SAMPLE_MS = 1000;
/** Five minutes of samples. */
const HISTORY_SAMPLES = 300;

export interface ClusterSample {
  /** ms since the epoch */
  t: number;
  tokens_per_s: number;
  inflight: number;
  workers: Record<string, { tokens_per_s: number; inflight: number }>;
}

export interface ClusterViewDeps {
  registry: Registry;
  nodes: NodeRegistry;
  scheduler: Scheduler;
  keepAlive: KeepAlive;
}

export class ClusterView {
  private readonly samples: ClusterSample[] = [];
  private readonly tokensSeen = new Map<string, number>();
  private readonly listeners = new Set<(sample: ClusterSample, snapshot: ClusterSnapshot) => void>();
  private lastSampleAt = Date.now();
  private readonly timer: Timer;

  constructor(private readonly deps: ClusterViewDeps) {
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  history(): ClusterSample[] {
    return this.samples;
  }

  /** Called after every sample, with the snapshot then (made once for every listener); returns what stops it. */
  onSample(listener: (sample: ClusterSample, snapshot: ClusterSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  snapshot() {
    const { registry, nodes, scheduler, keepAlive } = this.deps;
    const latest = this.samples.at(-1);
    // This machine is always a node: the queen starts its hive on first use.
    const names = new Set([LOCAL_NODE, ...nodes.list().map((n) => n.name), ...registry.hives.keys()]);
    return {
      time: Date.now(),
      nodes: [...names].map((name) => {
        const row = nodes.get(name);
        const hive = registry.hives.get(name);
        return {
          name,
          ssh: row ? sshLabel(row) : null,
          state: hive?.state ?? (name === LOCAL_NODE && !row?.sshHost ? "not started" : "unknown"),
          hive_url: hive?.url ?? row?.hiveUrl ?? null,
          devices: hive?.devices ?? null,
          models: (hive?.models ?? []).filter((m) => m.status === "ready").map((m) => ({ ref: m.ref, name: m.name, size_bytes: m.size_bytes, quantization: m.quantization })),
        };
      }),
      workers: [...registry.workers.values()].map((w) => ({
        id: w.id,
        node: w.node,
        model_ref: w.modelRef,
        backend: w.backend,
        device: w.device,
        devices: w.devices,
        split: w.split ?? null,
        state: w.inflight > 0 ? "busy" : "idle",
        slots_busy: Math.min(w.inflight, w.slotsTotal),
        slots_total: w.slotsTotal,
        tokens_per_s: latest?.workers[w.id]?.tokens_per_s ?? 0,
        keep_alive_until: keepAlive.expiresAt(w.modelRef)?.toISOString() ?? null,
      })),
      queues: scheduler.waiting(),
      totals: { tokens_per_s: latest?.tokens_per_s ?? 0, inflight: latest?.inflight ?? 0 },
    };
  }

  private sample(): void {
    const now = Date.now();
    const seconds = Math.max(0.001, (now - this.lastSampleAt) / 1000);
    this.lastSampleAt = now;
    const sample: ClusterSample = { t: now, tokens_per_s: 0, inflight: 0, workers: {} };
    const present = new Set<string>();
    for (const w of this.deps.registry.workers.values()) {
      present.add(w.id);
      // A worker counts from 0 when it registers: one that answered within its first second shows that answer.
      const rate = (w.tokensOut - (this.tokensSeen.get(w.id) ?? 0)) / seconds;
      this.tokensSeen.set(w.id, w.tokensOut);
      sample.workers[w.id] = { tokens_per_s: Math.round(rate * 10) / 10, inflight: w.inflight };
      sample.tokens_per_s += rate;
      sample.inflight += w.inflight;
    }
    sample.tokens_per_s = Math.round(sample.tokens_per_s * 10) / 10;
    for (const id of this.tokensSeen.keys()) if (!present.has(id)) this.tokensSeen.delete(id);
    this.samples.push(sample);
    if (this.samples.length > HISTORY_SAMPLES) this.samples.shift();
    if (!this.listeners.size) return;
    const snapshot = this.snapshot();
    for (const listener of this.listeners) listener(sample, snapshot);
  }
}

export type ClusterSnapshot = ReturnType<ClusterView["snapshot"]>;
