// Starts tests/support/local-hub.ts as a child process serving stories260K where the real Hub has it.
import { join } from "node:path";
import { STORIES_MODEL } from "./paths";

export const STORIES_HF_REF = "hf:ggml-org/models/tinyllamas/stories260K.gguf";
export const STORIES_SHA256 = "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d";

const running = new Set<ReturnType<typeof Bun.spawn>>();

/** Kills every hub a test started and did not stop (a failed assertion skips the test's own cleanup). */
export async function killLocalHubs(): Promise<void> {
  for (const proc of running) proc.kill("SIGKILL");
  await Promise.all([...running].map((p) => p.exited));
  running.clear();
}

export interface LocalHub {
  url: string;
  proc: ReturnType<typeof Bun.spawn>;
  /** The requests it logged so far. */
  requests(): { method: string; path: string; range: string | null; auth: string | null }[];
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export async function startLocalHub(options: { rate?: number; token?: string; corrupt?: boolean; port?: number; host?: string; extraFiles?: string[] } = {}): Promise<LocalHub> {
  const args = ["--port", String(options.port ?? 0), "--host", options.host ?? "127.0.0.1", "--file", `ggml-org/models/main/tinyllamas/stories260K.gguf=${STORIES_MODEL}`];
  for (const spec of options.extraFiles ?? []) args.push("--file", spec);
  if (options.rate) args.push("--rate", String(options.rate));
  if (options.token) args.push("--token", options.token);
  if (options.corrupt) args.push("--corrupt");
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, "local-hub.ts"), ...args], { stdout: "pipe", stderr: "inherit" });
  let out = "";
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stdout) out += decoder.decode(chunk, { stream: true });
  })();
  for (let i = 0; !/listening on/.test(out); i++) {
    if (i > 500) throw new Error("local hub did not start");
    await Bun.sleep(10);
  }
  const url = /listening on (\S+)/.exec(out)![1]!;
  running.add(proc);
  return {
    url,
    proc,
    requests: () => out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)),
    async kill(signal = "SIGKILL") {
      proc.kill(signal);
      await proc.exited;
      running.delete(proc);
    },
  };
}
