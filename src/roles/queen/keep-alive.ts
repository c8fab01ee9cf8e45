// How long a model stays loaded after its last request, on every node: the default (--keep-alive, 5 minutes), or what
// a request asked for (Ollama's keep_alive: a duration, 0 to unload at once, negative to keep it). The queen stops a
// model's idle workers at expiry through their hives; the hives leave the workers the queen spawned to it.
import { logger } from "../../log";
import type { Registry, WorkerEntry } from "./registry";

/** How often expiry is checked. */
const TICK_MS = 500;
const log = logger("queen");

export class KeepAlive {
  /** modelRef → when its workers may stop (Infinity: never). */
  private readonly until = new Map<string, number>();
  private timer: Timer | undefined;

  constructor(
    private readonly registry: Registry,
    /** A model's keep-alive when a request does not say (config.toml's for it, else the queen's default). */
    private readonly defaultFor: (modelRef: string) => number,
    private readonly stopWorker: (worker: WorkerEntry) => Promise<void>,
    /** Workers of the model that stay whatever the keep-alive (config.toml's min_replicas). */
    private readonly minFor: (modelRef: string) => number = () => 0,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.expire(), TICK_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** A request for the model ended: it stays loaded for `keepAliveMs` (the default when not given) from now. */
  touch(modelRef: string, keepAliveMs?: number): void {
    const ms = keepAliveMs ?? this.defaultFor(modelRef);
    this.until.set(modelRef, ms < 0 ? Infinity : Date.now() + ms);
    if (ms === 0) void this.expire();
  }

  /** When the model's workers stop if no request comes, or null where it stays (or is not loaded). */
  expiresAt(modelRef: string): Date | null {
    const fallback = this.defaultFor(modelRef);
    const until = this.until.get(modelRef) ?? (this.registry.hasWorkersFor(modelRef) ? (fallback < 0 ? Infinity : Date.now() + fallback) : undefined);
    return until === undefined || until === Infinity ? null : new Date(until);
  }

  private async expire(): Promise<void> {
    const now = Date.now();
    // A replica idle past the keep-alive stops while another of its model still serves (the last one follows the
    // model's own expiry below).
    for (const modelRef of this.registry.modelsWithWorkers()) {
      const workers = this.registry.workersFor(modelRef);
      const keep = this.defaultFor(modelRef);
      const floor = Math.max(1, this.minFor(modelRef));
      if (workers.length <= floor || keep < 0) continue;
      let left = workers.length;
      for (const w of workers.sort((a, b) => a.lastUsedAt - b.lastUsedAt)) {
        if (left <= floor || w.inflight > 0 || now - w.lastUsedAt < keep) continue;
        left--;
        log.info(`replica ${w.id} of ${modelRef} on ${w.node} idle past its keep-alive: stopping it`);
        await this.stopWorker(w).catch((err) => log.warn(`could not stop worker ${w.id}: ${err instanceof Error ? err.message : err}`));
      }
    }
    for (const [modelRef, until] of this.until) {
      if (until > now) continue;
      const workers = this.registry.workersFor(modelRef);
      if (workers.some((w) => w.inflight > 0) || this.minFor(modelRef) > 0) continue;
      this.until.delete(modelRef);
      for (const worker of workers) {
        log.info(`keep-alive of ${modelRef} ended: stopping worker ${worker.id} on ${worker.node}`);
        await this.stopWorker(worker).catch((err) => log.warn(`could not stop worker ${worker.id}: ${err instanceof Error ? err.message : err}`));
      }
    }
  }
}
