// Starts real rbee processes for tests and finds the address they listen on from their log.
import type { Subprocess } from "bun";
import { readdirSync, readFileSync } from "node:fs";
import { CLI } from "./paths";

export interface RbeeProcess {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  url: string;
  /** Everything the process wrote to stderr so far. */
  stderr(): string;
  /** SIGTERM, then waits for the exit code. */
  stop(): Promise<number>;
}

/** `command` is the argv after the executable; by default runs the TypeScript entry with bun. */
export async function startRbee(args: string[], { exe, env, timeoutMs = 20_000 }: { exe?: string[]; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<RbeeProcess> {
  const proc = Bun.spawn([...(exe ?? [process.execPath, CLI]), ...args], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, RBEE_LOG_FORMAT: "json", ...env },
  });
  let err = "";
  const drain = async (stream: ReadableStream<Uint8Array>, onText: (t: string) => void) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) onText(decoder.decode(chunk, { stream: true }));
  };
  void drain(proc.stderr, (t) => (err += t));
  void drain(proc.stdout, () => {});
  const deadline = Date.now() + timeoutMs;
  let url: string | undefined;
  while (!url) {
    url = /listening on (http:\/\/\S+?)["\s]/.exec(err)?.[1];
    if (url) break;
    if (proc.exitCode !== null) throw new Error(`rbee exited with ${proc.exitCode} before listening: ${err}`);
    if (Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`rbee did not listen within ${timeoutMs} ms: ${err}`);
    }
    await Bun.sleep(20);
  }
  started.add(proc);
  return {
    proc,
    url,
    stderr: () => err,
    async stop() {
      if (proc.exitCode === null) proc.kill("SIGTERM");
      return await proc.exited;
    },
  };
}

const started = new Set<Subprocess>();

/** SIGKILLs every process a test started and did not stop (a failed assertion skips a test's own cleanup). */
export async function killStartedProcesses(): Promise<void> {
  for (const proc of started) if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
  await Promise.all([...started].map((p) => p.exited));
  started.clear();
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(25);
  }
}

/** Runs rbee to completion and returns its exit code and output. */
export async function runRbee(args: string[], { exe, env }: { exe?: string[]; env?: Record<string, string> } = {}) {
  const proc = Bun.spawn([...(exe ?? [process.execPath, CLI]), ...args], { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

/** Whether a process with this pid exists (per the process table). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    return !/^State:\s+Z/m.test(status);
  } catch {
    return false;
  }
}

/** Pids of the running processes whose command line contains `text`. */
export function pidsWithCommandLine(text: string): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, "utf8").includes(text) && isAlive(Number(d));
      } catch {
        return false;
      }
    })
    .map(Number);
}
