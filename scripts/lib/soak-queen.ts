// A bounded soak of a real queen on loopback (see soak.ts): a queen with its local hive on stories260K in a temporary
// home, clients in every dialect while workers are killed and the hive restarts; then every slot must be idle, the
// queen's memory is read, nothing may be left running after it stops, and the catalog must still read.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { soak, type SoakResult } from "./soak";

const root = join(import.meta.dir, "..", "..");
const cli = [process.execPath, join(root, "src", "cli.ts")];
const model = join(root, "..", "shared", "models", "stories260K.gguf");

export interface SoakReport extends SoakResult {
  queenInflight: number[];
  slotsIdle: string[];
  queenRssMiB: number[];
  processesLeft: number;
  catalogReads: boolean;
  queenErrors: string[];
}

/** Starts a queen (and its local hive, on stories260K) in a temporary home, soaks it, checks what is left. */
export async function soakFreshQueen({ seconds, clients }: { seconds: number; clients: number }): Promise<SoakReport> {
  const home = mkdtempSync(join(tmpdir(), "rbee-soak-"));

  const rss = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) * 1024;
  const left = () => readdirSync("/proc").filter((d) => /^\d+$/.test(d) && (() => { try { return readFileSync(`/proc/${d}/cmdline`, "utf8").includes(home); } catch { return false; } })());

  Bun.spawnSync([...cli, "hive", "models", "download", model, "--port", "1"], { env: { ...process.env, RBEE_HOME: home } });
  const queen = Bun.spawn([...cli, "queen", "--port", "0", "--home", home, "--hive-check-interval", "0.5"], { stderr: "pipe", stdout: "ignore", env: { ...process.env, RBEE_LOG_FORMAT: "json" } });
  let log = "";
  void (async () => { for await (const c of queen.stderr) log += new TextDecoder().decode(c); })();
  while (!/listening on (http:\/\/\S+?)["\s]/.test(log)) await Bun.sleep(20);
  const queenUrl = /listening on (http:\/\/\S+?)["\s]/.exec(log)![1]!;
  const hiveUrl = async () => ((await fetch(`${queenUrl}/v1/nodes`).then((r) => r.json())) as { nodes: { hive_url: string; hive_state: string }[] }).nodes.find((n) => n.hive_state === "up")?.hive_url;
  await fetch(`${queenUrl}/v1/completions`, { method: "POST", body: JSON.stringify({ model: "stories260K", prompt: "Once", max_tokens: 2 }) });
  const rssBefore = rss(queen.pid);
  const result = await soak({
    queenUrl,
    hiveUrl,
    model: "stories260K",
    clients,
    durationMs: seconds * 1000,
    hangMs: 30_000,
    faultEveryMs: 2000,
    killHive: async () => {
      const hivePid = left().map(Number).find((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("\0hive\0"));
      if (hivePid) process.kill(hivePid, "SIGKILL");
    },
  });
  await Bun.sleep(2000);
  const workers = ((await fetch(`${queenUrl}/v1/workers`).then((r) => r.json())) as { workers: { url: string; inflight: number }[] }).workers;
  const idle = await Promise.all(workers.map(async (w) => ((await fetch(`${w.url}/v1/ready`).then((r) => r.json())) as { slots_idle: number; slots_total: number })));
  const rssAfter = rss(queen.pid);
  queen.kill("SIGTERM");
  await queen.exited;
  await Bun.sleep(1000);
  const catalog = Bun.spawnSync([...cli, "hive", "models", "list", "--json", "--port", "1"], { env: { ...process.env, RBEE_HOME: home } });
  const report: SoakReport = {
    ...result,
    queenInflight: workers.map((w) => w.inflight),
    slotsIdle: idle.map((r) => `${r.slots_idle}/${r.slots_total}`),
    queenRssMiB: [rssBefore, rssAfter].map((b) => Math.round(b / 2 ** 20)),
    processesLeft: left().length,
    catalogReads: catalog.exitCode === 0 && JSON.parse(catalog.stdout.toString()).length === 1,
    queenErrors: log.split("\n").filter((line) => line.includes('"level":"error"')).map((line) => line.slice(0, 400)),
  };
  rmSync(home, { recursive: true, force: true });
  return report;
}
