// The hive's workers: spawned as child processes of this same binary, registered when they call back, watched for
// health and idleness, and stopped politely (HTTP), then firmly (SIGTERM), then for good (SIGKILL).
import { settlesWithin } from "../../deadline";
import type { Subprocess } from "bun";
import type { CatalogEntry } from "../../catalog/catalog";
import { OUT_OF_MEMORY_EXIT, RbeeError } from "../../errors";
import { logger } from "../../log";
import type { SpawnRequest as WireSpawnRequest, WorkerInfo } from "../../wire/hive";
import type { ReadyResponse, WorkerReadyCallback } from "../../wire/worker";
import { devicesEnv } from "../../inference/visible-devices";
import type { SplitMode } from "../../inference/backend";
import { LogBook } from "../../log-book";

export type { WorkerInfo };


/** The wire's spawn request with the model found in the catalog. */
export type SpawnRequest = Omit<WireSpawnRequest, "model" | "gpu"> & {
  model: CatalogEntry;
  gpu: string;
  /** The VRAM it was estimated to take (what fake devices count as held). */
  vramBytes?: number;
};

export interface PoolOptions {
  /** argv that starts this program (see self.ts). */
  command: string[];
  hiveUrl: () => string;
  workerHost: string;
  advertiseHost?: string;
  /** Workers listen without a token on a non-loopback host too (the hive's --insecure-no-auth). */
  insecureNoAuth?: boolean;
  apiToken?: string;
  healthIntervalMs: number;
  idleTimeoutMs: number;
  readyTimeoutMs: number;
  /** Told about workers that appear and leave, for the queen. */
  onChange?: (event: "ready" | "gone", worker: WorkerInfo, reason?: string) => void;
}

export const STOP_GRACE_MS = 5000;
const HEALTH_TIMEOUT_MS = 2000;
/** Consecutive failed health checks before a worker counts as dead. */
const HEALTH_FAILURES = 2;
/** The last lines of a worker's stderr searched for its last words when it dies. */
const STDERR_TAIL_LINES = 20;

const log = logger("hive");

interface Entry {
  info: WorkerInfo;
  proc: Subprocess<"pipe", "ignore", "pipe">;
  ready: PromiseWithResolvers<WorkerInfo>;
  /** What it wrote to stderr: its last words when it dies, and the dashboard's log view. */
  log: LogBook;
  failures: number;
  stopping?: Promise<void>;
  /** 0: never stopped for idleness. */
  idleTimeoutMs: number;
  request: SpawnRequest;
}

export class WorkerPool {
  private readonly entries = new Map<string, Entry>();
  private monitor: Timer | undefined;
  private nextId = 1;

  constructor(private readonly options: PoolOptions) {
    const tick = Math.max(50, Math.min(options.healthIntervalMs, options.idleTimeoutMs / 4));
    this.monitor = setInterval(() => void this.checkAll(), tick);
  }

  list(): WorkerInfo[] {
    return [...this.entries.values()].map((e) => e.info);
  }

  /** The VRAM the running workers were estimated to take, by GPU index (a split one's shared evenly). */
  vramHeld(): Map<number, number> {
    const held = new Map<number, number>();
    for (const { request } of this.entries.values()) {
      const devices = request.devices ?? [0];
      for (const d of devices) held.set(d, (held.get(d) ?? 0) + (request.vramBytes ?? 0) / devices.length);
    }
    return held;
  }

  get(id: string): WorkerInfo {
    const entry = this.entries.get(id);
    if (!entry) throw new RbeeError("NOT_FOUND", `no worker ${id} on this hive`);
    return entry.info;
  }

  logOf(id: string): LogBook {
    const entry = this.entries.get(id);
    if (!entry) throw new RbeeError("NOT_FOUND", `no worker ${id} on this hive`);
    return entry.log;
  }

  /** Starts a worker and resolves once it has called back ready; rejects with its last words if it dies first. */
  async spawn(request: SpawnRequest): Promise<WorkerInfo> {
    const id = `w-${process.pid}-${this.nextId++}`;
    const { options } = this;
    const args = ["worker", "--model", request.model.path, "--model-ref", request.model.ref, "--port", "0", "--host", options.workerHost, ...(options.insecureNoAuth ? ["--insecure-no-auth"] : []),
      "--hive-url", options.hiveUrl(), "--worker-id", id, "--slots", String(request.slots), "--gpu", request.gpu, "--watch-stdin",
      ...(options.advertiseHost ? ["--advertise-host", options.advertiseHost] : []),
      ...(request.ctx ? ["--ctx", String(request.ctx)] : []), ...(request.threads ? ["--threads", String(request.threads)] : []),
      ...(request.devices ? ["--devices", request.devices.join(",")] : []), ...(request.split_mode ? ["--split-mode", request.split_mode] : []),
      ...(request.rpc ? ["--rpc", request.rpc.join(",")] : []), ...(request.tensor_split ? ["--tensor-split", request.tensor_split.join(",")] : []),
      ...(request.kv ? ["--kv-type-k", request.kv.k, "--kv-type-v", request.kv.v] : [])];
    const proc = Bun.spawn([...options.command, ...args], {
      stdin: "pipe", // never written: when the hive dies, the worker reads EOF and exits
      stdout: "ignore",
      stderr: "pipe",
      env: { ...process.env, ...(options.apiToken && { RBEE_API_TOKEN: options.apiToken }), ...(request.devices && devicesEnv(request.devices)) },
    });
    const entry: Entry = {
      info: { id, model_id: request.model.id, model_ref: request.model.ref, state: "starting", pid: proc.pid, url: null, backend: null, device: null, devices: request.devices ?? null, slots_total: request.slots, started_at: new Date().toISOString(), ready_at: null },
      proc,
      ready: Promise.withResolvers<WorkerInfo>(),
      log: new LogBook(),
      failures: 0,
      idleTimeoutMs: request.idle_timeout_s === undefined ? options.idleTimeoutMs : request.idle_timeout_s * 1000,
      request,
    };
    entry.ready.promise.catch(() => {});
    this.entries.set(id, entry);
    void this.relayStderr(entry);
    void proc.exited.then((code) => this.onExit(entry, code));
    log.info(`spawning worker ${id} for ${request.model.ref}`, { pid: proc.pid });
    const timeout = setTimeout(() => entry.ready.reject(new RbeeError("TIMEOUT", `worker ${id} was not ready within ${options.readyTimeoutMs / 1000} s`)), options.readyTimeoutMs);
    try {
      return await entry.ready.promise;
    } catch (err) {
      await this.stop(id).catch(() => {});
      throw err;
    } finally {
      clearTimeout(timeout);
    }
  }

  /** The worker's callback. */
  markReady(callback: WorkerReadyCallback): WorkerInfo {
    const entry = this.entries.get(callback.worker_id);
    if (!entry) throw new RbeeError("NOT_FOUND", `no worker ${callback.worker_id} was spawned by this hive`);
    Object.assign(entry.info, { state: "ready", url: callback.url, backend: callback.backend, device: callback.device, slots_total: callback.slots_total, ready_at: new Date().toISOString() });
    log.info(`worker ${entry.info.id} ready at ${callback.url}`, { backend: callback.backend, device: callback.device });
    entry.ready.resolve(entry.info);
    this.options.onChange?.("ready", entry.info);
    return entry.info;
  }

  stop(id: string): Promise<void> {
    const entry = this.entries.get(id);
    if (!entry) return Promise.reject(new RbeeError("NOT_FOUND", `no worker ${id} on this hive`));
    entry.stopping ??= this.stopEntry(entry);
    return entry.stopping;
  }

  async stopAll(): Promise<void> {
    clearInterval(this.monitor);
    this.monitor = undefined;
    await Promise.all([...this.entries.keys()].map((id) => this.stop(id).catch(() => {})));
  }

  private async stopEntry(entry: Entry): Promise<void> {
    entry.info.state = "stopping";
    const { proc, info } = entry;
    if (info.url)
      await fetch(`${info.url}/v1/shutdown`, { method: "POST", signal: AbortSignal.timeout(1000), headers: this.authHeaders() }).catch(() => {});
    if (await exitsWithin(proc, STOP_GRACE_MS)) return;
    proc.kill("SIGTERM");
    if (await exitsWithin(proc, STOP_GRACE_MS)) return;
    log.warn(`worker ${info.id} ignored SIGTERM; killing it`);
    proc.kill("SIGKILL");
    await proc.exited;
  }

  private onExit(entry: Entry, code: number | null): void {
    const { info } = entry;
    const wasReady = info.state === "ready";
    this.entries.delete(info.id);
    const tail = entry.log.backlog().slice(-STDERR_TAIL_LINES).map((l) => l.line);
    const lastWords = tail.filter((l) => l.startsWith("rbee: ")).at(-1)?.slice(6) ?? tail.at(-1) ?? "";
    const reason = info.state === "stopping" ? "stopped" : `exited with code ${code}${lastWords ? `: ${lastWords}` : ""}`;
    // A worker that found too little memory says so by its exit code: the queen may then make room and try again.
    const outOfMemory = code === OUT_OF_MEMORY_EXIT ? (lastWords.includes("VRAM") ? "INSUFFICIENT_VRAM" : "INSUFFICIENT_MEMORY") : undefined;
    entry.ready.reject(new RbeeError(outOfMemory ?? "WORKER_FAILED", `worker ${info.id} ${reason}`));
    if (info.state !== "stopping") log.warn(`worker ${info.id} ${reason}`);
    if (wasReady || info.state === "stopping") this.options.onChange?.("gone", info, reason);
  }

  private async checkAll(): Promise<void> {
    for (const entry of [...this.entries.values()]) {
      if (entry.info.state !== "ready" || !entry.info.url) continue;
      let ready: (ReadyResponse & { idle_ms?: number }) | undefined;
      try {
        const res = await fetch(`${entry.info.url}/v1/ready`, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) });
        if (res.ok) ready = (await res.json()) as ReadyResponse & { idle_ms?: number };
      } catch {
        // counted below
      }
      if (!ready) {
        if (++entry.failures >= HEALTH_FAILURES && entry.info.state === "ready") {
          log.warn(`worker ${entry.info.id} failed ${entry.failures} health checks; removing it`);
          entry.proc.kill("SIGKILL");
        }
        continue;
      }
      entry.failures = 0;
      if (entry.idleTimeoutMs > 0 && ready.state === "idle" && (ready.idle_ms ?? 0) >= entry.idleTimeoutMs) {
        log.info(`worker ${entry.info.id} idle for ${Math.round((ready.idle_ms ?? 0) / 1000)} s; stopping it`);
        void this.stop(entry.info.id);
      }
    }
  }

  private async relayStderr(entry: Entry): Promise<void> {
    const decoder = new TextDecoder();
    let partial = "";
    for await (const chunk of entry.proc.stderr) {
      const text = partial + decoder.decode(chunk, { stream: true });
      const lines = text.split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        if (!line) continue;
        process.stderr.write(`${line}\n`);
        entry.log.add(line);
      }
    }
  }

  private authHeaders(): Record<string, string> {
    return this.options.apiToken ? { authorization: `Bearer ${this.options.apiToken}` } : {};
  }
}

async function exitsWithin(proc: Subprocess, ms: number): Promise<boolean> {
  if (proc.exitCode !== null || proc.signalCode !== null) return true;
  return settlesWithin(proc.exited, ms);
}
