// A node lends its devices to a worker on another machine: one llama.cpp rpc-server per using worker, started on
// demand on 127.0.0.1 (never off loopback: it has no authentication), reached by the queen only through this node's SSH
// connection, and stopped when the queen says so or the hive stops.
import { join } from "node:path";
import { RbeeError } from "../../errors";
import { logger } from "../../log";
import { rpcFolderOf } from "../../inference/addon";
import { sharedLlama } from "../../inference/devices";
import { type RpcServerProcess, startRpcServer } from "../../inference/rpc-server";
import type { LentServer } from "../../wire/hive";

const log = logger("hive");

/** llama.cpp's names for a backend's devices (CUDA0, Vulkan1 …), as rpc-server's --device takes them. */
const DEVICE_PREFIX: Record<string, string> = { cuda: "CUDA", vulkan: "Vulkan", metal: "MTL" };

export class RpcLending {
  private readonly servers = new Map<string, { info: LentServer; process: RpcServerProcess }>();
  private next = 1;

  constructor(private readonly home: string) {}

  list(): LentServer[] {
    return [...this.servers.values()].map((s) => s.info);
  }

  async start(devices?: number[]): Promise<LentServer> {
    const { llama, backend } = await sharedLlama();
    const folder = rpcFolderOf(llama);
    if (!folder) throw new RbeeError("BACKEND_UNAVAILABLE", "this node's engine has no rpc-server (node-llama-cpp's stock addon): it cannot lend its devices");
    const prefix = DEVICE_PREFIX[backend];
    if (devices && !prefix) throw new RbeeError("BAD_REQUEST", `this node runs on the ${backend}: it has no GPUs to name`);
    const process = await startRpcServer(folder, { devices: devices?.map((i) => `${prefix}${i}`), cacheDir: join(this.home, "rpc-cache") });
    const info: LentServer = { id: `rpc-${this.next++}`, endpoint: process.endpoint, port: process.port, pid: process.proc.pid, devices: devices ?? null, started_at: new Date().toISOString() };
    this.servers.set(info.id, { info, process });
    // One that dies (killed, or its device lost) is forgotten; the worker using it ends on its own.
    void process.proc.exited.then((code) => {
      if (this.servers.get(info.id)?.process !== process) return;
      this.servers.delete(info.id);
      log.warn(`rpc-server ${info.id} on ${info.endpoint} ended (exit ${code ?? process.proc.signalCode})`);
    });
    log.info(`lending devices through rpc-server ${info.id} on ${info.endpoint}`, { devices: info.devices });
    return info;
  }

  async stop(id: string): Promise<void> {
    const server = this.servers.get(id);
    if (!server) throw new RbeeError("NOT_FOUND", `no rpc-server "${id}" on this node`);
    this.servers.delete(id);
    await server.process.stop();
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.servers.keys()].map((id) => this.stop(id)));
  }
}
