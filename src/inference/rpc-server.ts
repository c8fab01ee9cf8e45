// llama.cpp's rpc-server, started beside this machine's engine (scripts/build-addon.ts puts it in rpc/ next to the
// addon): it lends this machine's devices to a worker elsewhere. Always on 127.0.0.1: it has no authentication and
// takes arbitrary buffers and graphs, so other machines reach it only through the node's SSH connection.
import type { Subprocess } from "bun";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { RbeeError } from "../errors";
import { helloRpcServer } from "./rpc-probe";

export const RPC_SERVER_START_MS = 15_000;

export interface RpcServerProcess {
  endpoint: string;
  port: number;
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** What it wrote so far (its devices, the connections it took). */
  log(): string;
  stop(): Promise<void>;
}

export interface RpcServerOptions {
  /** llama.cpp's device names to lend (CUDA0, Vulkan1 …); default: every GPU, else the CPU. */
  devices?: string[];
  /** Where llama.cpp keeps the tensors it received (-c), so that a reload does not send the weights again. */
  cacheDir?: string;
  threads?: number;
}

/** A free loopback port: the kernel's choice for a listener that is closed at once. */
function freeLoopbackPort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

/** Starts rpc-server from `folder` (the engine's rpc/ folder) and resolves once it answers a hello. */
export async function startRpcServer(folder: string, options: RpcServerOptions = {}): Promise<RpcServerProcess> {
  const port = freeLoopbackPort();
  const args = ["-H", "127.0.0.1", "-p", String(port)];
  if (options.devices?.length) args.push("-d", options.devices.join(","));
  if (options.threads) args.push("-t", String(options.threads));
  if (options.cacheDir) {
    mkdirSync(options.cacheDir, { recursive: true });
    args.push("-c");
  }
  // Its working folder is the engine's, where ggml looks for the backends to lend (beside the executable and there).
  const proc = Bun.spawn([join(folder, "rpc-server"), ...args], {
    cwd: dirname(folder),
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...(options.cacheDir && { LLAMA_CACHE: options.cacheDir }) },
  });
  // rpc-server cannot watch its parent: a watcher reads a pipe from this process and stops the server once it closes,
  // which it does when this process ends however it ends (SIGKILL too), as a worker's --watch-stdin does.
  const watcher = Bun.spawn(["sh", "-c", 'cat >/dev/null; kill "$0" 2>/dev/null', String(proc.pid)], { stdin: "pipe", stdout: "ignore", stderr: "ignore" });
  void proc.exited.then(() => watcher.kill());
  let log = "";
  for (const stream of [proc.stdout, proc.stderr])
    void (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) log += decoder.decode(chunk, { stream: true });
    })();
  const endpoint = `127.0.0.1:${port}`;
  const server: RpcServerProcess = {
    endpoint,
    port,
    proc,
    log: () => log,
    async stop() {
      proc.kill("SIGTERM");
      const killer = setTimeout(() => proc.kill("SIGKILL"), 2_000);
      await proc.exited;
      clearTimeout(killer);
    },
  };
  const deadline = Date.now() + RPC_SERVER_START_MS;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      const last = log.trim().split("\n").filter(Boolean).at(-1) ?? `exit code ${proc.exitCode}`;
      throw new RbeeError("BACKEND_UNAVAILABLE", `rpc-server did not start: ${last}`);
    }
    try {
      await helloRpcServer(endpoint, 1_000);
      return server;
    } catch {
      if (Date.now() > deadline) {
        await server.stop();
        throw new RbeeError("BACKEND_UNAVAILABLE", `rpc-server did not answer on ${endpoint} in ${RPC_SERVER_START_MS / 1000} s`);
      }
      await Bun.sleep(50);
    }
  }
}
