// The hive's HTTP surface: devices, the model catalog and downloads, workers, shutdown.
import type { Hono } from "hono";
import type { Catalog } from "../../catalog/catalog";
import { RbeeError } from "../../errors";
import { createApp } from "../../http/app";
import { sseResponse } from "../../http/sse";
import { logStream } from "../../http/log-stream";
import type { LogBook } from "../../log-book";
import { readJson } from "../../http/validate";
import { DownloadRequest, LendRequest, modelJson, SpawnRequest } from "../../wire/hive";
import { WorkerReadyCallback } from "../../wire/worker";
import type { DeviceProbe } from "../../inference/devices";
import type { Downloads } from "./downloads";
import type { DeviceReport } from "../../wire/hive";
import { checkFit, estimateNeeds } from "./fit";
import type { WorkerPool } from "./workers";
import type { RpcLending } from "./rpc-lending";

export interface HiveDeps {
  catalog: Catalog;
  downloads: Downloads;
  workers: WorkerPool;
  /** This node's devices lent to workers elsewhere (llama.cpp's rpc-server). */
  lending: RpcLending;
  probeDevices: DeviceProbe;
  apiToken?: string;
  /** The hive's own log lines. */
  log: LogBook;
  onShutdown: () => void;
}

export function createHiveApp({ catalog, downloads, workers, lending, probeDevices, apiToken, log, onShutdown }: HiveDeps): Hono {
  const app = createApp({ role: "hive", apiToken });

  app.get("/v1/devices", async (c) => c.json(await probeDevices()));

  app.get("/v1/models", (c) => c.json({ models: catalog.list().map(modelJson) }));

  app.post("/v1/models/download", async (c) => {
    const { ref } = await readJson(c, DownloadRequest);
    const download = await downloads.startNamed(ref);
    return sseResponse(c, async (sink) => {
      sink.send("started", { ref: download.ref.ref });
      const unsubscribe = download.subscribe((p) => sink.send("progress", p));
      try {
        const model = await download.done;
        sink.send("done", { model: modelJson(model) });
      } catch (err) {
        const e = err instanceof RbeeError ? err : new RbeeError("INTERNAL", String(err));
        sink.send("error", e.toJSON().error);
      } finally {
        unsubscribe();
      }
    });
  });

  app.delete("/v1/models/:id", (c) => {
    const key = decodeURIComponent(c.req.param("id"));
    const model = catalog.find(key);
    if (!model) throw new RbeeError("MODEL_NOT_FOUND", `model "${key}" is not in the catalog`);
    const users = workers.list().filter((w) => w.model_id === model.id);
    if (users.length) throw new RbeeError("MODEL_MISSING", `model ${model.ref} is in use by ${users.map((w) => w.id).join(", ")}; stop them first`);
    return c.json({ removed: modelJson(catalog.remove(model.id)) });
  });

  app.get("/v1/workers", (c) => c.json({ workers: workers.list() }));

  app.get("/v1/logs", (c) => logStream(c, log));

  app.get("/v1/workers/:id/logs", (c) => logStream(c, workers.logOf(c.req.param("id"))));

  app.post("/v1/workers/spawn", async (c) => {
    const request = await readJson(c, SpawnRequest);
    const model = catalog.require(request.model);
    const devices = pinnedTo(await probeDevices(), request.devices);
    const onGpu = request.gpu !== "cpu" && devices.gpus.length > 0;
    const freeBytes = onGpu ? Math.max(...devices.gpus.map((g) => g.vram_free_bytes)) : devices.ram_free_bytes;
    const needs = await estimateNeeds(model.path, { onGpu, slots: request.slots, ctxPerSlot: request.ctx, freeBytes, kv: request.kv });
    // Split over other nodes (rpc): the queen's plan counted each node's share; this node holds only its own.
    if (!request.rpc) checkFit(needs, devices);
    catalog.touch(model.id);
    return c.json({ worker: await workers.spawn({ ...request, model, vramBytes: onGpu ? needs.vramBytes : 0 }) }, 201);
  });

  app.post("/v1/workers/ready", async (c) => c.json({ worker: workers.markReady(await readJson(c, WorkerReadyCallback)) }));

  app.post("/v1/workers/:id/stop", async (c) => {
    const id = c.req.param("id");
    workers.get(id);
    await workers.stop(id);
    return c.json({ stopped: id });
  });

  app.get("/v1/rpc-servers", (c) => c.json({ servers: lending.list() }));

  app.post("/v1/rpc-servers", async (c) => {
    const { devices } = await readJson(c, LendRequest);
    if (devices) pinnedTo(await probeDevices(), devices);
    return c.json({ server: await lending.start(devices) }, 201);
  });

  app.delete("/v1/rpc-servers/:id", async (c) => {
    await lending.stop(c.req.param("id"));
    return c.json({ stopped: c.req.param("id") });
  });

  app.post("/v1/shutdown", (c) => {
    setImmediate(onShutdown);
    return c.json({ ok: true });
  });

  return app;
}

/**
 * The machine as a worker pinned to `indexes` sees it: those GPUs only, and several of them as one (llama.cpp splits the
 * layers by their free memory). A GPU the machine does not have is the client's error.
 */
function pinnedTo(devices: DeviceReport, indexes: number[] | undefined): DeviceReport {
  if (!indexes) return devices;
  const known = devices.gpus.map((g) => g.index);
  const missing = indexes.filter((i) => !known.includes(i));
  if (missing.length) throw new RbeeError("BAD_REQUEST", `no GPU ${missing.join(", ")} on this node (it has ${known.length ? known.join(", ") : "none"})`);
  const chosen = devices.gpus.filter((g) => indexes.includes(g.index));
  if (chosen.length === 1) return { ...devices, gpus: chosen };
  const sum = (f: (g: (typeof chosen)[number]) => number) => chosen.reduce((total, g) => total + f(g), 0);
  const split = { index: chosen[0]!.index, name: chosen.map((g) => `${g.index}: ${g.name}`).join(" + "), vram_total_bytes: sum((g) => g.vram_total_bytes), vram_free_bytes: sum((g) => g.vram_free_bytes), uuid: null, pci_bus: null };
  return { ...devices, gpus: [split] };
}
