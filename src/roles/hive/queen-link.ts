// Keeps the queen informed: the hive announces itself (devices, models, workers) at start and on every heartbeat,
// so a restarted queen rebuilds its picture, and relays each worker's arrival and departure as it happens.
import { RbeeHttpClient } from "../../clients/http-json";
import { logger } from "../../log";
import { modelJson, type WorkerInfo } from "../../wire/hive";
import type { Catalog } from "../../catalog/catalog";
import type { DeviceProbe } from "../../inference/devices";
import type { WorkerPool } from "./workers";

export const HEARTBEAT_MS = 5000;
const log = logger("hive");

export class QueenLink {
  private readonly queen: RbeeHttpClient;
  private timer: Timer | undefined;
  private warned = false;

  constructor(
    queenUrl: string,
    apiToken: string | undefined,
    private readonly node: string,
    private readonly state: { url: () => string; catalog: Catalog; workers: () => WorkerPool; probeDevices: DeviceProbe },
  ) {
    this.queen = new RbeeHttpClient(queenUrl.replace(/\/+$/, ""), apiToken);
  }

  start(heartbeatMs = HEARTBEAT_MS): void {
    void this.announce();
    this.timer = setInterval(() => void this.announce(), heartbeatMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async announce(): Promise<void> {
    try {
      await this.queen.json("POST", "/v1/hives/ready", {
        node: this.node,
        url: this.state.url(),
        pid: process.pid,
        devices: await this.state.probeDevices(),
        models: this.state.catalog.list().map(modelJson),
        workers: this.state.workers().list(),
      }, { timeoutMs: 3000 });
      this.warned = false;
    } catch (err) {
      if (!this.warned) log.warn(`cannot reach the queen at ${this.queen.baseUrl}: ${err instanceof Error ? err.message : err}`);
      this.warned = true;
    }
  }

  relay(event: "ready" | "gone", worker: WorkerInfo, reason?: string): void {
    void this.queen.json("POST", `/v1/workers/${event}`, { node: this.node, worker, reason }, { timeoutMs: 3000 }).catch(() => {});
  }
}
