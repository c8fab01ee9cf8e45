// Runs the hive daemon: catalog, downloads, worker pool and HTTP; a signal or POST /v1/shutdown stops every worker first.
import { Catalog } from "../../catalog/catalog";
import { httpUrl, serve } from "../../http/serve";
import { logger, onLogLine } from "../../log";
import { LogBook } from "../../log-book";
import { selfCommand } from "../../self";
import { probeDevices } from "../../inference/devices";
import { Downloads, hubOptionsFromEnv } from "./downloads";
import { createHiveApp } from "./server";
import { WorkerPool } from "./workers";
import { RpcLending } from "./rpc-lending";
import { QueenLink } from "./queen-link";
import { exitWhenStdinCloses, type StdinWatch } from "../../stdin-watch";

export interface HiveOptions {
  home: string;
  host: string;
  port: number;
  apiToken?: string;
  healthIntervalMs: number;
  idleTimeoutMs: number;
  readyTimeoutMs: number;
  queenUrl?: string;
  nodeName: string;
  advertiseHost?: string;
  /** Exit when standard input closes: set when a queen starts this hive as its child. */
  stdin?: StdinWatch;
  /** Listening on the network without a token, as the operator asked: its workers do the same. */
  insecureNoAuth?: boolean;
}

const log = logger("hive");

export async function runHive(options: HiveOptions): Promise<void> {
  const ownLog = new LogBook();
  onLogLine((line) => ownLog.add(line));
  const catalog = new Catalog(options.home);
  const downloads = new Downloads(catalog, hubOptionsFromEnv());
  let url = "";
  // Real devices report what is free as measured; fake ones (RBEE_FAKE_DEVICES) have the workers' estimates taken off.
  const probe = async () => {
    const report = await probeDevices();
    if (!process.env.RBEE_FAKE_DEVICES) return report;
    const held = workers.vramHeld();
    return { ...report, gpus: report.gpus.map((g) => ({ ...g, vram_free_bytes: Math.max(0, g.vram_free_bytes - (held.get(g.index) ?? 0)) })) };
  };
  const link = options.queenUrl ? new QueenLink(options.queenUrl, options.apiToken, options.nodeName, { url: () => url, catalog, workers: () => workers, probeDevices: probe }) : undefined;
  const workers = new WorkerPool({
    command: selfCommand(),
    hiveUrl: () => url,
    workerHost: options.host,
    insecureNoAuth: options.insecureNoAuth,
    advertiseHost: options.advertiseHost,
    apiToken: options.apiToken,
    healthIntervalMs: options.healthIntervalMs,
    idleTimeoutMs: options.idleTimeoutMs,
    readyTimeoutMs: options.readyTimeoutMs,
    onChange: (event, worker, reason) => link?.relay(event, worker, reason),
  });
  const lending = new RpcLending(options.home);
  let stopping: Promise<void> | undefined;
  const shutdown = () => {
    stopping ??= (async () => {
      log.info("shutting down: stopping workers");
      link?.stop();
      await Promise.all([workers.stopAll(), lending.stopAll()]);
      server.stop(true);
      catalog.close();
      log.info("hive stopped");
      process.exit(0);
    })();
    return stopping;
  };
  const app = createHiveApp({ catalog, downloads, workers, lending, probeDevices: probe, apiToken: options.apiToken, log: ownLog, onShutdown: () => void shutdown() });
  const server = serve(app, { host: options.host, port: options.port });
  url = httpUrl(options.advertiseHost ?? options.host, server.port!);
  process.on("SIGTERM", () => void shutdown());
  process.on("SIGINT", () => void shutdown());
  log.info(`listening on ${url}`, { home: options.home });
  link?.start();
  if (options.stdin) void exitWhenStdinCloses(shutdown, options.stdin);
}
