// config.toml's `preload = true` models, loaded when the queen starts: a name given by the Hub's shorthand is pulled
// onto the local hive first (and named by it), then a worker is brought up as for a request. Models with
// `min_replicas` then get that many workers, and again whenever one goes (a crash, a node down).
import { isHubShorthand } from "../../catalog/hub-shorthand";
import { logger } from "../../log";
import { LOCAL_NODE } from "../../nodes/registry";
import type { ModelConfig } from "./config-file";
import type { Hives } from "./hives";
import type { KeepAlive } from "./keep-alive";
import type { ModelNames } from "./model-names";
import { resolveModel } from "./models";
import type { Registry } from "./registry";
import type { Scheduler } from "./scheduler";

const log = logger("queen");
/** How often models with min_replicas are checked for missing workers. */
const MIN_REPLICAS_CHECK_MS = 2000;

type PreloadDeps = { registry: Registry; hives: Hives; scheduler: Scheduler; names: ModelNames; keepAlive: KeepAlive };

export async function preload(entries: ModelConfig[], deps: PreloadDeps): Promise<void> {
  for (const entry of entries) {
    try {
      if (isHubShorthand(entry.model) && !deps.names.resolve(entry.model)) {
        const hive = await deps.hives.ensure(LOCAL_NODE);
        const model = await hive.client.download(entry.model);
        hive.models = [...hive.models.filter((m) => m.ref !== model.ref), model];
        deps.names.set(entry.model, model.ref);
      }
      const modelRef = await resolveModel(deps.registry, deps.hives, entry.name, undefined, deps.names);
      const lease = await deps.scheduler.acquire(modelRef, { signal: AbortSignal.timeout(10 * 60_000) });
      lease.release();
      deps.keepAlive.touch(modelRef);
      log.info(`preloaded ${entry.name} (${modelRef})`);
    } catch (err) {
      log.warn(`could not preload ${entry.name}: ${err instanceof Error ? err.message : err}`);
    }
  }
}

/** Starts workers for models below their min_replicas, one at a time, every few seconds; returns what stops it. */
export function keepMinReplicas(entries: ModelConfig[], deps: PreloadDeps): () => void {
  const kept = entries.filter((e) => e.min_replicas > 0);
  const stuck = new Set<string>();
  let busy = false;
  const check = async () => {
    if (busy) return;
    busy = true;
    try {
      for (const entry of kept) {
        const modelRef = await resolveModel(deps.registry, deps.hives, entry.name, undefined, deps.names).catch(() => undefined);
        if (!modelRef) continue;
        const missing = entry.min_replicas - deps.registry.workersFor(modelRef).length;
        if (missing <= 0) {
          stuck.delete(entry.name);
          continue;
        }
        const started = await deps.scheduler.startWorker(modelRef).catch((err) => (log.warn(`min_replicas of ${entry.name}: ${err instanceof Error ? err.message : err}`), false));
        if (started) log.info(`min_replicas of ${entry.name}: started a worker (${entry.min_replicas - missing + 1} of ${entry.min_replicas})`);
        else if (!stuck.has(entry.name)) {
          stuck.add(entry.name);
          log.warn(`min_replicas of ${entry.name} is ${entry.min_replicas}, but only ${entry.min_replicas - missing} can run: no other device takes it`);
        }
      }
    } finally {
      busy = false;
    }
  };
  void check();
  const timer = setInterval(() => void check(), MIN_REPLICAS_CHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}
