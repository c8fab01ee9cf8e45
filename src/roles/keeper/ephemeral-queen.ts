// The queen `rbee infer` starts when none answers: a child with --ephemeral that watches our stdin, so it (and its
// hives and workers) go away with us however we end. Its logs are kept, not shown, unless it fails.
import { settlesWithin } from "../../deadline";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { RbeeError } from "../../errors";
import { selfCommand } from "../../self";

const START_TIMEOUT_MS = 30_000;
const EXIT_GRACE_MS = 15_000;
const LOG_TAIL_LINES = 30;

export interface EphemeralQueen {
  url: string;
  proc: Subprocess;
  /** The last lines the queen (and its children) logged. */
  logTail(): string[];
  /** Asks the queen to shut down (cascading to hives and workers) and waits for it to exit. */
  shutdown(): Promise<void>;
}

export async function startEphemeralQueen({ home, listenOnAll, apiToken }: { home: string; listenOnAll: boolean; apiToken?: string }): Promise<EphemeralQueen> {
  const dir = mkdtempSync(join(tmpdir(), "rbee-infer-"));
  const urlFile = join(dir, "queen-url");
  const args = ["queen", "--ephemeral", "--port", "0", "--home", home, "--watch-stdin", "--url-file", urlFile, ...(listenOnAll ? ["--host", "0.0.0.0"] : [])];
  const proc = Bun.spawn([...selfCommand(), ...args], {
    stdin: "pipe",
    stdout: "ignore",
    stderr: "pipe",
    env: { ...process.env, RBEE_LOG_FORMAT: "json", ...(apiToken && { RBEE_API_TOKEN: apiToken }) },
  });
  const tail: string[] = [];
  void (async () => {
    const decoder = new TextDecoder();
    let partial = "";
    for await (const chunk of proc.stderr) {
      const lines = (partial + decoder.decode(chunk, { stream: true })).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) if (line.trim()) (tail.push(line), tail.length > LOG_TAIL_LINES && tail.shift());
    }
  })();
  const deadline = Date.now() + START_TIMEOUT_MS;
  let url = "";
  while (!url) {
    try {
      url = readFileSync(urlFile, "utf8").trim();
    } catch {
      if (proc.exitCode !== null) throw new RbeeError("INTERNAL", `the queen exited at start (code ${proc.exitCode}): ${lastError(tail)}`);
      if (Date.now() > deadline) throw new RbeeError("TIMEOUT", "the queen did not start within 30 s");
      await Bun.sleep(20);
    }
  }
  rmSync(dir, { recursive: true, force: true });
  let stopping: Promise<void> | undefined;
  return {
    url,
    proc,
    logTail: () => [...tail],
    shutdown() {
      stopping ??= (async () => {
        if (proc.exitCode !== null) return;
        await fetch(`${url}/v1/shutdown`, { method: "POST", headers: apiToken ? { authorization: `Bearer ${apiToken}` } : {}, signal: AbortSignal.timeout(2000) }).catch(() => proc.kill("SIGTERM"));
        const exited = await settlesWithin(proc.exited, EXIT_GRACE_MS);
        if (!exited) {
          proc.kill("SIGKILL");
          await proc.exited;
        }
      })();
      return stopping;
    },
  };
}

function lastError(lines: string[]): string {
  for (const line of [...lines].reverse()) {
    try {
      const entry = JSON.parse(line);
      if (entry.level === "error" || entry.level === "fatal") return entry.msg;
    } catch {
      if (line.startsWith("rbee: ")) return line.slice(6);
    }
  }
  return lines.at(-1) ?? "no output";
}
