// Talks to a hive daemon: what the keeper's commands and the queen both need.
import type { DeviceReport, LentServer, ModelJson, SpawnRequest, WorkerInfo } from "../wire/hive";
import { RbeeHttpClient } from "./http-json";
import { readDownload } from "./download-events";
import type { ByteProgress } from "../progress";

export class HiveClient extends RbeeHttpClient {
  devices = () => this.json<DeviceReport>("GET", "/v1/devices");
  models = async () => (await this.json<{ models: ModelJson[] }>("GET", "/v1/models")).models;
  removeModel = async (key: string) => (await this.json<{ removed: ModelJson }>("DELETE", `/v1/models/${encodeURIComponent(key)}`)).removed;
  workers = async () => (await this.json<{ workers: WorkerInfo[] }>("GET", "/v1/workers")).workers;
  spawn = async (request: Partial<SpawnRequest> & { model: string }) => (await this.json<{ worker: WorkerInfo }>("POST", "/v1/workers/spawn", request)).worker;
  stopWorker = (id: string) => this.json<{ stopped: string }>("POST", `/v1/workers/${encodeURIComponent(id)}/stop`);
  /** The hive's own log (no worker) or a worker's, as server-sent events that follow it until `signal` aborts. */
  logs = (workerId: string | undefined, signal: AbortSignal) => this.request("GET", workerId ? `/v1/workers/${encodeURIComponent(workerId)}/logs` : "/v1/logs", undefined, { signal });
  /** An rpc-server on the hive's loopback lending its devices (every GPU without `devices`). */
  lend = async (devices?: number[]) => (await this.json<{ server: LentServer }>("POST", "/v1/rpc-servers", devices ? { devices } : {})).server;
  unlend = (id: string) => this.json<{ stopped: string }>("DELETE", `/v1/rpc-servers/${encodeURIComponent(id)}`);
  shutdown = () => this.json<{ ok: boolean }>("POST", "/v1/shutdown", {});

  async download(ref: string, onProgress?: (p: ByteProgress) => void): Promise<ModelJson> {
    return readDownload(await this.request("POST", "/v1/models/download", { ref }), `the hive at ${this.baseUrl}`, onProgress);
  }
}
