// The queen's HTTP surface: the client API (OpenAI routes and /v2/tasks) and the operator API (nodes, hives, workers).
import type { Hono } from "hono";
import { createApp } from "../../http/app";
import { readJson } from "../../http/validate";
import type { NodeRegistry } from "../../nodes/registry";
import { isHubShorthand } from "../../catalog/hub-shorthand";
import { parseModelRef } from "../../catalog/refs";
import { RbeeError } from "../../errors";
import { sseResponse } from "../../http/sse";
import { LOCAL_NODE, sshLabel } from "../../nodes/registry";
import { HiveAnnouncement, QueenDownloadRequest } from "../../wire/hive";
import type { Hives } from "./hives";
import type { ModelNames } from "./model-names";
import type { KeepAlive } from "./keep-alive";
import type { QueenMetrics } from "./metrics";
import type { ApiKeys } from "../../auth/api-keys";
import { addAnthropicRoutes } from "./anthropic-routes";
import { clientAuth } from "./client-auth";
import { addOllamaRoutes } from "./ollama-routes";
import { addQueenOpenAiRoutes } from "./openai-routes";
import { addLlamaCppRoutes } from "./llamacpp-routes";
import { addResponsesRoutes } from "./responses-routes";
import type { ResponseStore } from "./response-store";
import type { Registry, WorkerEntry } from "./registry";
import type { Relay } from "./relay";
import type { Scheduler } from "./scheduler";
import { addTaskRoutes } from "./tasks";
import { addWorkerRoutes } from "./worker-routes";
import { addDashboardRoutes } from "./dashboard-routes";
import type { ClusterView } from "./cluster-view";

export interface QueenDeps {
  registry: Registry;
  nodes: NodeRegistry;
  hives: Hives;
  scheduler: Scheduler;
  relay: Relay;
  metrics: QueenMetrics;
  keepAlive: KeepAlive;
  names: ModelNames;
  keys: ApiKeys;
  cluster: ClusterView;
  /** The Responses API's stored responses. */
  responses: ResponseStore;
  /** Stops a worker through its hive and forgets it (the registry, the prompt routing). */
  stopWorker: (worker: WorkerEntry) => Promise<void>;
  apiToken?: string;
  clientsNeedCredential?: boolean;
  corsOrigins?: string[];
  onActivity: (delta: number) => void;
  onShutdown: () => void;
}

/** Requests that do not keep an ephemeral queen alive: from hives, and probes. */
const NOT_ACTIVITY = new Set(["/v1/health", "/health", "/metrics", "/v1/hives/ready", "/v1/workers/ready", "/v1/workers/gone"]);

export function createQueenApp(deps: QueenDeps): Hono {
  const { registry, nodes, hives, scheduler, metrics } = deps;
  const app = createApp({ role: "queen", corsOrigins: deps.corsOrigins, authenticate: clientAuth({ clusterToken: deps.apiToken, required: deps.clientsNeedCredential ?? deps.apiToken !== undefined, keys: deps.keys }) });

  app.use("*", async (c, next) => {
    // A client's request counts as activity until its handler answers (a stream counts on until it ends, where it is
    // relayed): an ephemeral queen must not leave while a request waits for a node's hive to start (an emulated one
    // takes 10 s). What hives send and health checks do not count.
    const counts = !NOT_ACTIVITY.has(c.req.path);
    if (counts) deps.onActivity(+1);
    try {
      await next();
    } finally {
      if (counts) deps.onActivity(-1);
    }
    metrics.requests.inc({ route: c.req.routePath, status: String(c.res.status) });
  });

  // Before Ollama's: a browser asking for / gets the dashboard, API clients the probe's answer.
  addDashboardRoutes(app, deps);
  addQueenOpenAiRoutes(app, deps);
  addOllamaRoutes(app, deps);
  addAnthropicRoutes(app, deps);
  addLlamaCppRoutes(app, deps);
  addResponsesRoutes(app, deps);
  addTaskRoutes(app, deps);
  addWorkerRoutes(app, deps);

  app.get("/v1/nodes", (c) =>
    c.json({
      nodes: nodes.list().map((n) => {
        const hive = registry.hives.get(n.name);
        return { name: n.name, ssh: sshLabel(n), platform: n.platform, hive_url: hive?.url ?? n.hiveUrl, hive_state: hive?.state ?? "unknown", devices: hive?.devices ?? null };
      }),
    }),
  );

  app.post("/v1/hives/ready", async (c) => {
    const hive = hives.announced(await readJson(c, HiveAnnouncement));
    for (const w of registry.workers.values()) if (w.node === hive.node) scheduler.dispatch(w.modelRef);
    return c.json({ ok: true });
  });

  app.post("/v1/models/download", async (c) => {
    const { ref, node } = await readJson(c, QueenDownloadRequest);
    const target = node ?? LOCAL_NODE;
    if (!hives.knows(target)) throw new RbeeError("NOT_FOUND", `unknown node "${target}"`);
    // The Hub's shorthand (ORG/REPO:QUANT) is resolved by the hive, which lists the repository.
    const named = isHubShorthand(ref) ? ref : parseModelRef(ref).ref;
    const hive = await hives.ensure(target);
    return sseResponse(c, async (sink) => {
      sink.send("started", { ref: named, node: target });
      try {
        const model = await hive.client.download(named, (p) => sink.send("progress", p));
        if (named !== model.ref) deps.names.set(named, model.ref);
        hive.models = [...hive.models.filter((m) => m.ref !== model.ref), model];
        sink.send("done", { model });
      } catch (err) {
        sink.send("error", (err instanceof RbeeError ? err : new RbeeError("INTERNAL", String(err))).toJSON().error);
      }
    });
  });

  app.get("/metrics", async (c) => {
    metrics.workers.reset();
    for (const w of registry.workers.values()) metrics.workers.inc({ state: w.inflight > 0 ? "busy" : "idle" });
    return c.text(await metrics.registry.metrics(), 200, { "content-type": metrics.registry.contentType });
  });

  app.post("/v1/shutdown", (c) => {
    setImmediate(deps.onShutdown);
    return c.json({ ok: true });
  });

  return app;
}
