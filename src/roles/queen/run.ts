// Runs the queen: node registry, hives, scheduler, HTTP. A signal or POST /v1/shutdown tells every hive to stop
// (which stops its workers) before the queen exits; --ephemeral also exits once idle for a short while.
import { httpUrl, serve } from "../../http/serve";
import { logger } from "../../log";
import { NodeRegistry } from "../../nodes/registry";
import { exitWhenStdinCloses } from "../../stdin-watch";
import { type RemoteHiveLauncher, Hives } from "./hives";
import { PoolSplits } from "./pool-splits";
import { parseCorsOrigins } from "../../http/cors";
import { QueenMetrics } from "./metrics";
import { Registry } from "./registry";
import { Relay } from "./relay";
import { Scheduler } from "./scheduler";
import { createQueenApp } from "./server";
import { ApiKeys } from "../../auth/api-keys";
import { readQueenConfig } from "./config-file";
import { KeepAlive } from "./keep-alive";
import { PromptAffinity } from "./prompt-affinity";
import type { WorkerEntry } from "./registry";
import { ModelNames } from "./model-names";
import { type KvType, type KvTypes, kvTypesOf } from "../../inference/memory-plan";
import { ResponseStore } from "./response-store";
import { keepMinReplicas, preload } from "./preload";
import { createSpawner } from "./spawner";
import { ClusterView } from "./cluster-view";

export interface QueenOptions {
  home: string;
  host: string;
  port: number;
  /** The cluster secret hives and workers use (and operators may). */
  apiToken?: string;
  /** Clients need the token or a key even before any key exists (the operator gave a token). */
  clientsNeedCredential?: boolean;
  ephemeral: boolean;
  /** With --ephemeral: how long without tasks before the queen leaves. */
  ephemeralIdleMs: number;
  queueLimit: number;
  queueTimeoutMs: number;
  workerSlots: number;
  /** How long a model stays loaded after its last request, by default (-1: always); config.toml's, else 5 minutes. */
  keepAliveMs?: number;
  /** Workers may run on the CPU of nodes that have GPUs. */
  allowCpu?: boolean;
  /** Web pages of these origins may call the queen (--cors-origins); config.toml's, else loopback pages. */
  corsOrigins?: string[];
  /** The KV cache's type of the workers it starts, where config.toml does not say (--kv-type, RBEE_KV_CACHE_TYPE). */
  kvType?: KvType;
  hiveCheckIntervalMs: number;
  watchStdin: boolean;
  urlFile?: string;
  remote?: RemoteHiveLauncher;
}

const log = logger("queen");

/** A model's settings with the KV types its workers get: config.toml's per model, else the queen's default (f16 is left out). */
function withKvTypes<T extends { kv_type?: KvType; kv_type_k?: KvType; kv_type_v?: KvType }>(settings: T | undefined, byDefault: KvType | undefined): (T & { kv?: KvTypes }) | undefined {
  const kv = kvTypesOf({ both: settings?.kv_type, k: settings?.kv_type_k, v: settings?.kv_type_v }, byDefault);
  if (kv.k === "f16" && kv.v === "f16") return settings;
  return { ...(settings as T), kv };
}
const DEFAULT_KEEP_ALIVE_MS = 5 * 60_000;

export async function runQueen(options: QueenOptions): Promise<void> {
  /** Stops a worker through its hive, and forgets it. */
  const stopWorker = async (worker: WorkerEntry) => {
    const hive = registry.hives.get(worker.node);
    if (hive) await hive.client.stopWorker(worker.id);
    registry.removeWorker(worker.id);
    affinity?.forget(worker.id);
  };
  const config = readQueenConfig(options.home);
  const nodes = new NodeRegistry(options.home);
  const registry = new Registry(options.apiToken);
  const names = new ModelNames(options.home, config, registry);
  const metrics = new QueenMetrics();
  // Cache-aware routing among replicas; RBEE_PROMPT_AFFINITY=0 turns it off (to measure what it gives).
  const affinity = process.env.RBEE_PROMPT_AFFINITY === "0" ? undefined : new PromptAffinity();
  let url = "";
  let scheduler: Scheduler;
  const hives = new Hives({
    registry,
    nodes,
    home: options.home,
    queenUrl: () => url,
    apiToken: options.apiToken,
    checkIntervalMs: options.hiveCheckIntervalMs,
    onWorkersGone: (gone) => gone.forEach((w) => scheduler.workerGone(w.modelRef)),
    remote: options.remote,
  });
  // Split workers' lenders: released whenever such a worker leaves the registry.
  const splits = new PoolSplits((node, port) => hives.tunnel(node, port));
  registry.onWorkerRemoved = (worker) => splits.release(worker.id);
  scheduler = new Scheduler(registry, {
    spawn: createSpawner({ registry, ensureHive: (n) => hives.ensure(n), knowsNode: (n) => hives.knows(n), workerSlots: options.workerSlots, settingsFor: (ref) => withKvTypes(names.settingsFor(ref), options.kvType),
      allowCpu: options.allowCpu,
      // Never evicted: pinned models, and the replicas a model keeps by min_replicas.
      pinned: (ref) => {
        const settings = names.settingsFor(ref);
        return settings?.pinned === true || (settings?.min_replicas ?? 0) >= registry.workersFor(ref).length;
      },
      stopWorker,
      onEvicted: (worker) => metrics.evictions.inc({ model: worker.modelRef }),
      pool: { nodes: () => nodes.list().filter((n) => n.sshHost).map((n) => n.name), splits },
    }),
    affinity,
    queueLimit: options.queueLimit,
    queueTimeoutMs: options.queueTimeoutMs,
    metrics,
  });
  const defaultKeepAliveMs = options.keepAliveMs ?? config.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS;
  const keepAliveFor = (ref: string) => {
    const settings = names.settingsFor(ref);
    return settings?.pinned ? -1 : (settings?.keep_alive ?? defaultKeepAliveMs);
  };
  const keepAlive = new KeepAlive(registry, keepAliveFor, stopWorker, (ref) => names.settingsFor(ref)?.min_replicas ?? 0);
  keepAlive.start();
  const relay = new Relay(registry, scheduler, options.apiToken, keepAlive, affinity);

  let active = 0;
  let idleSince = Date.now();
  const onActivity = (delta: number) => {
    active += delta;
    idleSince = Date.now();
  };

  let stopping: Promise<void> | undefined;
  const shutdown = () => {
    stopping ??= (async () => {
      log.info("shutting down: stopping every hive");
      await splits.releaseAll();
      await hives.shutdownAll();
      server.stop(true);
      nodes.close();
      names.close();
      keys.close();
      responses.close();
      log.info("queen stopped");
      process.exit(0);
    })();
    return stopping;
  };

  const keys = new ApiKeys(options.home);
  const responses = new ResponseStore(options.home);
  const cluster = new ClusterView({ registry, nodes, scheduler, keepAlive });
  const app = createQueenApp({ registry, nodes, hives, scheduler, relay, metrics, keepAlive, names, keys, cluster, responses, stopWorker, apiToken: options.apiToken, clientsNeedCredential: options.clientsNeedCredential ?? options.apiToken !== undefined, corsOrigins: options.corsOrigins ?? (config.corsOrigins && parseCorsOrigins(config.corsOrigins)), onActivity, onShutdown: () => void shutdown() });
  const server = serve(app, { host: options.host, port: options.port });
  url = httpUrl(options.host === "0.0.0.0" ? "127.0.0.1" : options.host, server.port!);
  process.on("SIGTERM", () => void shutdown());
  process.on("SIGINT", () => void shutdown());
  if (options.watchStdin) void exitWhenStdinCloses(shutdown);
  await hives.reconnect();
  hives.watch();
  if (options.ephemeral)
    setInterval(() => {
      if (active === 0 && scheduler.queuedTotal === 0 && Date.now() - idleSince >= options.ephemeralIdleMs) {
        log.info(`ephemeral: idle for ${Math.round((Date.now() - idleSince) / 1000)} s`);
        void shutdown();
      }
    }, Math.min(1000, options.ephemeralIdleMs / 2)).unref();
  log.info(`listening on ${url}`, { home: options.home, ephemeral: options.ephemeral });
  const preloadDeps = { registry, hives, scheduler, names, keepAlive };
  void preload(names.preloads(), preloadDeps).then(() => keepMinReplicas(names.preloads(), preloadDeps));
  if (options.urlFile) await Bun.write(options.urlFile, url);
}
