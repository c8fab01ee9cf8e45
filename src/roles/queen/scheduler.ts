// The queen's scheduler: a request takes a slot on the least-loaded ready worker of its model; with none free it
// waits in a bounded FIFO queue per model while one spawn (never several) brings up another worker.
import { RbeeError } from "../../errors";
import type { QueenMetrics } from "./metrics";
import type { PromptAffinity } from "./prompt-affinity";
import type { Registry, WorkerEntry } from "./registry";

export interface Lease {
  worker: WorkerEntry;
  /** Gives the slot back; safe to call twice. */
  release(): void;
}

export interface AcquireOptions {
  node?: string;
  signal?: AbortSignal;
  onQueued?: (position: number) => void;
  /** The prompt's starts (prompt-affinity.ts): a replica that was sent them is preferred. */
  starts?: string[];
}

/** A replica that holds the prompt's start is passed over when it runs this many more requests than the least busy. */
const AFFINITY_SLACK = 2;

interface Waiter {
  modelRef: string;
  /** When it began to wait (Date.now()). */
  since: number;
  node?: string;
  starts?: string[];
  resolve(lease: Lease): void;
  reject(err: unknown): void;
  cleanup(): void;
}

export interface SchedulerOptions {
  /** Brings up one more worker for the model (on the node, if pinned); false when no hive can take another. */
  spawn: (modelRef: string, node?: string) => Promise<boolean>;
  queueLimit: number;
  queueTimeoutMs: number;
  metrics: QueenMetrics;
  /** Cache-aware routing among replicas (RBEE_PROMPT_AFFINITY=0 turns it off, to measure it). */
  affinity?: PromptAffinity;
}

export class Scheduler {
  private readonly queues = new Map<string, Waiter[]>();
  private readonly starting = new Map<string, Promise<void>>();

  constructor(
    private readonly registry: Registry,
    private readonly options: SchedulerOptions,
  ) {}

  get queuedTotal(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  queueDepth(modelRef: string): number {
    return this.queues.get(modelRef)?.length ?? 0;
  }

  /** Every model with requests waiting: how many, and how long the oldest has waited. */
  waiting(): { model: string; depth: number; oldest_wait_ms: number }[] {
    const now = Date.now();
    return [...this.queues].filter(([, q]) => q.length).map(([model, q]) => ({ model, depth: q.length, oldest_wait_ms: now - q[0]!.since }));
  }

  acquire(modelRef: string, { node, signal, onQueued, starts }: AcquireOptions = {}): Promise<Lease> {
    const worker = this.pick(modelRef, node, starts);
    if (worker) return Promise.resolve(this.lease(worker));
    const queue = this.queues.get(modelRef) ?? [];
    if (queue.length >= this.options.queueLimit)
      return Promise.reject(new RbeeError("QUEUE_FULL", `${queue.length} requests already wait for ${modelRef}`, { retryAfterSeconds: 2, status: 429 }));
    this.queues.set(modelRef, queue);
    return new Promise<Lease>((resolve, reject) => {
      const timer = setTimeout(() => fail(new RbeeError("TIMEOUT", `no worker for ${modelRef} became free within ${this.options.queueTimeoutMs / 1000} s`)), this.options.queueTimeoutMs);
      const onAbort = () => fail(new RbeeError("BAD_REQUEST", "cancelled while queued"));
      const waiter: Waiter = {
        modelRef,
        since: Date.now(),
        node,
        starts,
        resolve,
        reject,
        cleanup: () => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          const q = this.queues.get(modelRef);
          const i = q?.indexOf(waiter) ?? -1;
          if (i >= 0) q!.splice(i, 1);
          this.options.metrics.queueDepth.set({ model: modelRef }, this.queueDepth(modelRef));
        },
      };
      const fail = (err: unknown) => {
        waiter.cleanup();
        reject(err);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      queue.push(waiter);
      this.options.metrics.queueDepth.set({ model: modelRef }, queue.length);
      onQueued?.(queue.length);
      this.ensureSpawn(modelRef, node);
    });
  }

  /** An operator's start: one more worker for the model now, whether requests wait or not; false where none can start. */
  async startWorker(modelRef: string, node?: string): Promise<boolean> {
    const spawned = await this.options.spawn(modelRef, node);
    if (spawned) this.dispatch(modelRef);
    return spawned;
  }

  /** A worker appeared or freed a slot: hand it to whoever waits. */
  dispatch(modelRef: string): void {
    const queue = this.queues.get(modelRef);
    while (queue?.length) {
      const index = queue.findIndex((w) => this.pick(modelRef, w.node, w.starts) !== undefined);
      if (index === -1) break;
      const waiter = queue[index]!;
      waiter.cleanup();
      waiter.resolve(this.lease(this.pick(modelRef, waiter.node, waiter.starts)!));
    }
    // Still more waiting than the workers can take: scale out to another hive.
    if (queue?.length) this.ensureSpawn(modelRef, queue[0]!.node);
  }

  /** A worker died or was stopped: its waiters need another one. */
  workerGone(modelRef: string): void {
    if (this.queueDepth(modelRef)) this.ensureSpawn(modelRef, this.queues.get(modelRef)![0]!.node);
  }

  /**
   * The least loaded worker with a free slot; among replicas, the one that was sent the longest start of this prompt
   * (its slot may still hold it), unless it runs AFFINITY_SLACK more requests than the least loaded.
   */
  private pick(modelRef: string, node?: string, starts?: string[]): WorkerEntry | undefined {
    const open = this.registry.workersFor(modelRef, node).filter((w) => w.inflight < w.slotsTotal);
    if (!open.length) return undefined;
    const least = open.reduce((a, w) => (w.inflight < a.inflight ? w : a));
    if (!starts?.length || !this.options.affinity) return least;
    let best = least;
    let bestScore = this.options.affinity.score(least.id, starts);
    for (const w of open) {
      const score = this.options.affinity.score(w.id, starts);
      if (score > bestScore && w.inflight <= least.inflight + AFFINITY_SLACK) (best = w), (bestScore = score);
    }
    return best;
  }

  private lease(worker: WorkerEntry): Lease {
    worker.inflight++;
    let released = false;
    return {
      worker,
      release: () => {
        if (released) return;
        released = true;
        worker.inflight--;
        this.dispatch(worker.modelRef);
      },
    };
  }

  private ensureSpawn(modelRef: string, node?: string): void {
    const key = `${modelRef}\u0000${node ?? ""}`;
    if (this.starting.has(key)) return;
    const spawning = this.options
      .spawn(modelRef, node)
      .then((spawned) => {
        if (spawned) setImmediate(() => this.dispatch(modelRef));
      })
      .catch((err) => {
        // Nobody can serve these requests now: tell them why rather than letting them time out.
        if (this.registry.workersFor(modelRef, node).length) return;
        for (const waiter of [...(this.queues.get(modelRef) ?? [])]) {
          if (node && waiter.node !== node) continue;
          waiter.cleanup();
          waiter.reject(err);
        }
      })
      .finally(() => this.starting.delete(key));
    this.starting.set(key, spawning);
  }
}
