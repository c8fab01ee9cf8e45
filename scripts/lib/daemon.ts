// Starts an rbee daemon (queen, hive, worker) from the source tree for a benchmark, and waits for the URL it listens on.
import { join } from "node:path";

export const RBEE_CLI = [process.execPath, join(import.meta.dir, "..", "..", "src", "cli.ts")];

export interface Daemon {
  url: string;
  proc: Bun.Subprocess;
  /** What it logged so far (JSON lines). */
  log(): string;
  /** SIGTERM, then waits for it to exit and a second more (for its children and the GPU memory). */
  stop(): Promise<void>;
}

/** `exe`: the command that runs rbee (default: this source tree through Bun; a compiled binary's path instead). */
export async function startDaemon(args: string[], env: Record<string, string | undefined> = process.env, exe: string[] = RBEE_CLI): Promise<Daemon> {
  const proc = Bun.spawn([...exe, ...args], { stdout: "ignore", stderr: "pipe", env: { ...env, RBEE_LOG_FORMAT: "json" } });
  let log = "";
  void (async () => {
    for await (const chunk of proc.stderr) log += new TextDecoder().decode(chunk);
  })();
  const listening = /listening on (http:\/\/\S+?)["\s]/;
  for (let i = 0; !listening.test(log); i++) {
    if (proc.exitCode !== null || i > 3000) throw new Error(`rbee ${args[0]} did not start: ${log.slice(-2000)}`);
    await Bun.sleep(100);
  }
  const stop = async () => {
    proc.kill("SIGTERM");
    await proc.exited;
    await Bun.sleep(1000);
  };
  return { url: listening.exec(log)![1]!, proc, log: () => log, stop };
}

/** Polls `url`+`path` until `ready(body)` says so, and returns that body; where `daemon` exits first, its error lines say why. */
export async function untilReady(url: string, path: string, ready: (body: unknown) => boolean, daemon?: Daemon, timeoutMs = 180_000): Promise<unknown> {
  for (const deadline = Date.now() + timeoutMs; ; ) {
    const body = await fetch(`${url}${path}`).then((r) => r.json(), () => undefined);
    if (body && ready(body)) return body;
    if (daemon && daemon.proc.exitCode !== null) {
      const said = daemon.log().split("\n").filter((l) => /error|rbee:/i.test(l)).slice(-8).map((l) => `  > ${l}`).join("\n");
      throw new Error(`${url} exited with code ${daemon.proc.exitCode}:\n${said}`);
    }
    if (Date.now() > deadline) throw new Error(`${url}${path} was not ready within ${timeoutMs / 1000} s`);
    await Bun.sleep(100);
  }
}

/** A worker daemon's /v1/ready says ready; returns what it said (backend, device, …). */
export const workerReady = (worker: Daemon) => untilReady(worker.url, "/v1/ready", (b) => (b as { ready?: boolean }).ready === true, worker);
