// Runs a worker process: listen first (so loading progress is visible), load, tell the hive, exit cleanly on signals.
import { checkGgufFile } from "../../inference/gguf-file";
import { exitWhenStdinCloses } from "../../stdin-watch";
import { logger } from "../../log";
import { httpUrl, serve } from "../../http/serve";
import type { WorkerReadyCallback } from "../../wire/worker";
import { createWorkerApp } from "./server";
import { type WorkerConfig, WorkerService } from "./service";

export interface WorkerRunOptions extends WorkerConfig {
  host: string;
  port: number;
  apiToken?: string;
  hive?: { url: string; workerId: string };
  watchStdin?: boolean;
  advertiseHost?: string;
}

const log = logger("worker");
/** How long a shutdown may take before the process exits anyway. */
const SHUTDOWN_GRACE_MS = 5000;

export async function runWorker(options: WorkerRunOptions): Promise<void> {
  await checkGgufFile(options.modelPath);
  const service = new WorkerService(options);
  let exiting = false;
  const exit = async (code: number) => {
    if (exiting) return;
    exiting = true;
    setTimeout(() => process.exit(code), SHUTDOWN_GRACE_MS).unref();
    await service.shutdown().catch((err) => log.warn(`shutdown: ${err}`));
    server.stop(true);
    process.exit(code);
  };
  const app = createWorkerApp(service, { apiToken: options.apiToken, onShutdown: () => void exit(0) });
  const server = serve(app, { host: options.host, port: options.port });
  const url = httpUrl(options.advertiseHost ?? options.host, server.port!);
  log.info(`listening on ${url}`);
  process.on("SIGTERM", () => void exit(0));
  process.on("SIGINT", () => void exit(0));
  if (options.watchStdin) void exitWhenStdinCloses(() => exit(0));

  try {
    const loaded = await service.load();
    if (options.hive) await announce(options.hive, options.apiToken, { worker_id: options.hive.workerId, url, model_ref: options.modelRef, backend: loaded.backend, device: loaded.device, slots_total: options.slots });
  } catch (err) {
    server.stop(true);
    throw err;
  }
}

async function announce(hive: { url: string }, apiToken: string | undefined, body: WorkerReadyCallback): Promise<void> {
  const res = await fetch(new URL("/v1/workers/ready", hive.url), {
    method: "POST",
    headers: { "content-type": "application/json", ...(apiToken && { authorization: `Bearer ${apiToken}` }) },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`hive at ${hive.url} refused the ready callback: HTTP ${res.status} ${await res.text()}`);
}
