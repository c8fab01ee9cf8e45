// The queen's routes about workers: the list, what hives tell of them, and what an operator does with them (start one
// for a model, stop one, unload a model, follow a worker's log).
import type { Context, Hono } from "hono";
import { z } from "zod";
import { RbeeError } from "../../errors";
import { readJson } from "../../http/validate";
import { WorkerRelay } from "../../wire/hive";
import type { QueenDeps } from "./server";
import { resolveModel } from "./models";
import type { WorkerEntry } from "./registry";

const StartWorker = z.strictObject({ model: z.string().min(1, "must name a model"), node: z.string().min(1).optional() });
const UnloadModel = z.strictObject({ model: z.string().min(1, "must name a model") });

export function addWorkerRoutes(app: Hono, deps: QueenDeps): void {
  const { registry, scheduler, hives, keepAlive, names } = deps;

  app.get("/v1/workers", (c) =>
    c.json({
      workers: [...registry.workers.values()].map((w) => ({
        id: w.id,
        node: w.node,
        url: w.url,
        model_ref: w.modelRef,
        slots_total: w.slotsTotal,
        inflight: w.inflight,
        backend: w.backend,
        device: w.device,
        devices: w.devices,
        split: w.split ?? null,
        expires_at: keepAlive.expiresAt(w.modelRef)?.toISOString() ?? null,
      })),
    }),
  );

  app.post("/v1/workers/ready", async (c) => {
    const { node, worker } = await readJson(c, WorkerRelay);
    const entry = registry.upsertWorker(node, worker);
    if (entry) scheduler.dispatch(entry.modelRef);
    return c.json({ ok: true });
  });

  app.post("/v1/workers/gone", async (c) => {
    const { worker } = await readJson(c, WorkerRelay);
    const gone = registry.removeWorker(worker.id);
    if (gone) scheduler.workerGone(gone.modelRef);
    return c.json({ ok: true });
  });

  // One more worker for a model (where placement puts it, or on the node named), loaded until its keep-alive ends.
  app.post("/v1/workers", async (c) => {
    const { model, node } = await readJson(c, StartWorker);
    const modelRef = await resolveModel(registry, hives, model, node, names);
    const before = new Set(registry.workersFor(modelRef).map((w) => w.id));
    if (!(await scheduler.startWorker(modelRef, node)))
      throw new RbeeError("BAD_REQUEST", `no worker can start for ${modelRef}${node ? ` on ${node}` : ""}: every device that may serve it already does (or its max_replicas is reached)`);
    keepAlive.touch(modelRef);
    const started = registry.workersFor(modelRef).find((w) => !before.has(w.id));
    return c.json({ worker: started ? { id: started.id, node: started.node, model_ref: started.modelRef, devices: started.devices } : null }, 201);
  });

  app.post("/v1/workers/:id/stop", async (c) => {
    const worker = workerOf(c);
    hiveOf(worker); // the hive stops it: it must still be there
    await deps.stopWorker(worker);
    return c.json({ stopped: worker.id });
  });

  // As Ollama's keep_alive 0: every worker of the model stops once it has no request in flight.
  app.post("/v1/models/unload", async (c) => {
    const { model } = await readJson(c, UnloadModel);
    // A name (alias), what a catalog calls the model, or its reference, as requests name it.
    const target = names.resolve(model) ?? model;
    const modelRef = registry.findModel(target)?.ref ?? target;
    const workers = registry.workersFor(modelRef);
    if (!workers.length) throw new RbeeError("NOT_FOUND", `no worker serves ${model}`);
    const kept = names.settingsFor(modelRef)?.min_replicas ?? 0;
    if (kept > 0) throw new RbeeError("MODEL_KEPT", `${model} keeps ${kept} worker(s) loaded by min_replicas in config.toml: lower it there to unload the model`);
    keepAlive.touch(modelRef, 0);
    return c.json({ unloading: workers.map((w) => w.id) });
  });

  app.get("/v1/workers/:id/logs", async (c) => {
    const worker = workerOf(c);
    return relayEvents(await hiveOf(worker).client.logs(worker.id, c.req.raw.signal));
  });

  app.get("/v1/nodes/:node/logs", async (c) => {
    const hive = registry.hives.get(c.req.param("node"));
    if (!hive || hive.state !== "up") throw new RbeeError("NOT_FOUND", `no hive runs on ${c.req.param("node")}`);
    return relayEvents(await hive.client.logs(undefined, c.req.raw.signal));
  });

  function workerOf(c: Context): WorkerEntry {
    const worker = registry.workers.get(c.req.param("id")!);
    if (!worker) throw new RbeeError("NOT_FOUND", `no worker ${c.req.param("id")}`);
    return worker;
  }

  function hiveOf(worker: WorkerEntry) {
    const hive = registry.hives.get(worker.node);
    if (!hive) throw new RbeeError("NOT_FOUND", `the hive of ${worker.node} is gone`);
    return hive;
  }
}

function relayEvents(upstream: Response): Response {
  return new Response(upstream.body, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
}
