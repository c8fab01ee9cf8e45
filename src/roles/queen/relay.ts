// Carries one request to a worker and its answer back. Until the first byte of the answer arrives the request can
// move: a worker that fails before then is dropped and the request goes to another (or waits for a new one).
import { errorFrom } from "../../clients/http-json";
import { RbeeError } from "../../errors";
import { logger } from "../../log";
import type { Registry, WorkerEntry } from "./registry";
import type { KeepAlive } from "./keep-alive";
import { type PromptAffinity, promptStarts } from "./prompt-affinity";
import type { Lease, Scheduler } from "./scheduler";

export interface RelayRequest {
  modelRef: string;
  node?: string;
  path: string;
  /** What is POSTed; undefined: a GET (llama-server's /props). */
  body: unknown;
  signal: AbortSignal;
  onQueued?: (position: number) => void;
  /** How long the model stays loaded after this request (the queen's default when not given; see KeepAlive). */
  keepAliveMs?: number;
}

export interface Relayed {
  lease: Lease;
  /** The worker's answer, whose first chunk has already been read into `first`. */
  reader: ReadableStreamDefaultReader<Uint8Array>;
  first: Uint8Array | undefined;
  status: number;
}

/** Attempts on different workers before the request fails. */
const MAX_ATTEMPTS = 4;
const HEALTH_PROBE_MS = 500;
const log = logger("queen");

export class Relay {
  constructor(
    private readonly registry: Registry,
    private readonly scheduler: Scheduler,
    private readonly workerToken?: string,
    private readonly keepAlive?: KeepAlive,
    private readonly affinity?: PromptAffinity,
  ) {}

  async start(request: RelayRequest): Promise<Relayed> {
    let lastError: unknown;
    // Hashed once, and only where the routing is on.
    const starts = this.affinity && promptStarts(request.body);
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const acquired = await this.scheduler.acquire(request.modelRef, { node: request.node, signal: request.signal, onQueued: request.onQueued, starts });
      if (starts) this.affinity!.remember(acquired.worker.id, starts);
      const lease = {
        ...acquired,
        release: () => {
          acquired.release();
          acquired.worker.lastUsedAt = Date.now();
          this.keepAlive?.touch(request.modelRef, request.keepAliveMs);
        },
      };
      try {
        const res = await fetch(`${lease.worker.url}${request.path}`, {
          method: request.body === undefined ? "GET" : "POST",
          headers: { "content-type": "application/json", ...(this.workerToken && { authorization: `Bearer ${this.workerToken}` }) },
          body: request.body === undefined ? undefined : JSON.stringify(request.body),
          signal: request.signal,
        });
        if (!res.ok) {
          const err = await errorFrom(res);
          lease.release();
          if (res.status < 500) throw err;
          lastError = err;
          continue;
        }
        const reader = res.body!.getReader() as ReadableStreamDefaultReader<Uint8Array>;
        const first = await reader.read();
        return { lease, reader, first: first.value, status: res.status };
      } catch (err) {
        lease.release();
        if (request.signal.aborted) throw new RbeeError("BAD_REQUEST", "cancelled by the client");
        if (err instanceof RbeeError && err.status < 500) throw err;
        lastError = err;
        await this.checkWorker(lease.worker);
      }
    }
    throw new RbeeError("WORKER_FAILED", `no worker could serve the request: ${lastError instanceof Error ? lastError.message : lastError}`);
  }

  /** A read-only GET to one worker, outside the slots (llama-server's /props and /slots). */
  async get(worker: WorkerEntry, path: string, signal: AbortSignal): Promise<Response> {
    const res = await fetch(`${worker.url}${path}`, { headers: this.workerToken ? { authorization: `Bearer ${this.workerToken}` } : {}, signal });
    if (!res.ok) throw await errorFrom(res);
    return res;
  }

  /** A worker that failed a request and does not answer its health check leaves the registry. */
  async checkWorker(worker: WorkerEntry): Promise<void> {
    const alive = await fetch(`${worker.url}/v1/health`, { signal: AbortSignal.timeout(HEALTH_PROBE_MS) }).then((r) => r.ok, () => false);
    if (alive) return;
    log.warn(`worker ${worker.id} on ${worker.node} stopped answering; dropping it`);
    this.registry.removeWorker(worker.id);
    this.scheduler.workerGone(worker.modelRef);
  }
}
