// config.toml's `preload = true` models, loaded when the queen starts: a name given by the Hub's shorthand is pulled
// onto the local hive first (and named by it), then a worker is brought up as for a request.
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

export async function preload(entries: ModelConfig[], deps: { registry: Registry; hives: Hives; scheduler: Scheduler; names: ModelNames; keepAlive: KeepAlive }): Promise<void> {
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
