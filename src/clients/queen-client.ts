// Talks to a queen: what the keeper's commands need.
import type { DeviceReport } from "../wire/hive";
import type { ByteProgress } from "../progress";
import type { ModelJson } from "../wire/hive";
import { RbeeHttpClient } from "./http-json";
import { readDownload } from "./download-events";

export interface QueenNode {
  name: string;
  ssh: string | null;
  /** What `uname -sm` said at add-node or install (nodes reached over SSH). */
  platform: string | null;
  hive_url: string | null;
  hive_state: string;
  devices: DeviceReport | null;
}

export interface QueenWorker {
  id: string;
  node: string;
  url: string;
  model_ref: string;
  slots_total: number;
  inflight: number;
  backend: string | null;
  device: string | null;
  /** Split over nodes: each node's part of the model. */
  split: { node: string; share: number }[] | null;
  /** When it stops if no request comes (the queen's keep-alive); null: never. */
  expires_at: string | null;
}

export class QueenClient extends RbeeHttpClient {
  nodes = async () => (await this.json<{ nodes: QueenNode[] }>("GET", "/v1/nodes")).nodes;
  workers = async () => (await this.json<{ workers: QueenWorker[] }>("GET", "/v1/workers")).workers;
  models = async () => (await this.json<{ data: { id: string; name: string }[] }>("GET", "/v1/models")).data;
  stopWorker = (id: string) => this.json<{ stopped: string }>("POST", `/v1/workers/${encodeURIComponent(id)}/stop`, {});
  shutdown = () => this.json<{ ok: boolean }>("POST", "/v1/shutdown", {});

  async download(ref: string, node: string | undefined, onProgress?: (p: ByteProgress) => void, signal?: AbortSignal): Promise<ModelJson> {
    return readDownload(await this.request("POST", "/v1/models/download", { ref, node }, { signal }), `the queen at ${this.baseUrl}`, onProgress);
  }
}
