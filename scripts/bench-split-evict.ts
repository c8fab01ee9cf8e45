// On a machine with two GPUs: a model split over both by llama.cpp's layer, row and tensor modes (tokens/s at 1 and 8
// streams, each GPU's memory); the layer split beside a worker that already holds memory on one GPU (the layers follow
// the free memory, unless --tensor-split says otherwise); and eviction through the queen, read off nvidia-smi: two big
// idle workers fill both GPUs, a request for a third model stops the least recently used one and takes its place.
//   bun scripts/bench-split-evict.ts --big /opt/models/8b.gguf --small /opt/models/1b.gguf [--tokens 128] [--rounds 2]
//                                    [--parts split,weighted,evict]
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type Daemon, startDaemon, workerReady } from "./lib/daemon";
import { benchHttp } from "./lib/http-load";

const { values: opts } = parseArgs({
  options: {
    big: { type: "string" },
    small: { type: "string" },
    tokens: { type: "string", default: "128" },
    rounds: { type: "string", default: "2" },
    parts: { type: "string", default: "split,weighted,evict" },
  },
});
const parts = new Set(opts.parts!.split(","));
if (!opts.big || !opts.small) throw new Error("--big PATH and --small PATH are required");
const [tokens, rounds] = [Number(opts.tokens), Number(opts.rounds)];
const home = mkdtempSync(join(tmpdir(), "rbee-bench-split-"));
const report: Record<string, unknown> = {};

/** MiB used on each GPU, by nvidia-smi. */
const usedMiB = () => Bun.spawnSync(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"]).stdout.toString().trim().split("\n").map(Number);
const minus = (a: number[], b: number[]) => a.map((x, i) => x - b[i]!);

async function worker(model: string, args: string[]): Promise<Daemon> {
  const w = await startDaemon(["worker", "--model", model, "--port", "0", ...args]);
  await workerReady(w).catch((err) => {
    throw new Error(`worker ${args.join(" ")}: ${err instanceof Error ? err.message : err}`);
  });
  return w;
}

async function stopWorker(w: Daemon): Promise<void> {
  await fetch(`${w.url}/v1/shutdown`, { method: "POST" }).catch(() => {});
  await w.proc.exited;
  await Bun.sleep(1000);
}

// 1. Split modes: the big model over both GPUs.
const idle = usedMiB();
console.log(`GPUs: ${idle.length}; MiB used at the start: ${idle.join(" / ")}`);
for (const mode of parts.has("split") ? ["layer", "row", "tensor"] : []) {
  const w = await worker(opts.big, ["--devices", "0,1", "--split-mode", mode, "--slots", "8", "--ctx", "4096"]).catch((err) => {
    console.log(`--split-mode ${mode}: the worker did not come up: ${err instanceof Error ? err.message : err}`);
    return undefined;
  });
  if (!w) continue;
  const held = minus(usedMiB(), idle);
  const one = await benchHttp({ url: w.url, concurrency: 1, tokens, rounds });
  const eight = await benchHttp({ url: w.url, concurrency: 8, tokens, rounds });
  report[`split_${mode}`] = { heldMiB: held, one: one.tokensPerS, eight: eight.tokensPerS, decodeOne: one.decodeTokensPerS };
  console.log(`--split-mode ${mode}: 1 / 8 streams ${one.tokensPerS.toFixed(0)} / ${eight.tokensPerS.toFixed(0)} tok/s; MiB held per GPU ${held.join(" / ")}`);
  await stopWorker(w);
}

// 2. The layer split beside a worker that holds memory on GPU 1: by free memory (llama.cpp's default), then 1,1.
if (parts.has("weighted")) {
  const filler = await worker(opts.small, ["--devices", "1", "--slots", "64", "--ctx", "8192"]);
  const withFiller = usedMiB();
  console.log(`a worker of the small model holds GPU 1: MiB used ${withFiller.join(" / ")}`);
  for (const share of [undefined, "1,1"]) {
    const w = await worker(opts.big, ["--devices", "0,1", "--slots", "8", "--ctx", "4096", ...(share ? ["--tensor-split", share] : [])]);
    const held = minus(usedMiB(), withFiller);
    report[`weighted_${share ?? "free"}`] = { heldMiB: held };
    console.log(`layer split ${share ? `--tensor-split ${share}` : "by free memory"}: MiB held per GPU ${held.join(" / ")} (GPU 0's share ${((100 * held[0]!) / (held[0]! + held[1]!)).toFixed(1)}%)`);
    await stopWorker(w);
  }
  await stopWorker(filler);
}

if (parts.has("evict")) {
  // 3. Eviction through the queen: two big idle workers, one per GPU; then the small model needs room. The big ones get
  // a context that leaves about 4 GiB of each GPU free (8B: 0.125 MiB of KV cache a token), less than the small one needs.
  const totalMiB = Number(Bun.spawnSync(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"]).stdout.toString().trim().split("\n")[0]);
  const bigCtx = Math.floor((totalMiB - 4096 - Bun.file(opts.big).size / 2 ** 20 - 1500) / 0.125 / 64 / 256) * 256;
  console.log(`GPU 0 has ${totalMiB} MiB: the big models get 64 slots of ${bigCtx} tokens`);
  const second = join(home, "big-copy.gguf");
  symlinkSync(opts.big, second);
  await Bun.write(
    join(home, "config.toml"),
    `[models.a]\nmodel = ${JSON.stringify(opts.big)}\nslots = 64\nctx = ${bigCtx}\n[models.b]\nmodel = ${JSON.stringify(second)}\nslots = 64\nctx = ${bigCtx}\n[models.c]\nmodel = ${JSON.stringify(opts.small)}\nslots = 32\nctx = 8192\n`,
  );
  for (const model of [opts.big, second, opts.small]) Bun.spawnSync([process.execPath, join(import.meta.dir, "..", "src", "cli.ts"), "hive", "models", "download", model, "--port", "1"], { env: { ...process.env, RBEE_HOME: home } });
  const queen = await startDaemon(["queen", "--port", "0", "--home", home, "--keep-alive", "30m"]);
  const ask = async (model: string) => {
    const res = await fetch(`${queen.url}/v1/completions`, { method: "POST", body: JSON.stringify({ model, prompt: "Once upon a time", max_tokens: 8 }) });
    if (!res.ok) {
      const said = queen.log().split("\n").filter((l) => /evict|spawning|placement|fit|VRAM/i.test(l)).map((l) => `  > ${l}`).join("\n");
      throw new Error(`${model}: ${res.status} ${await res.text()}\nthe queen's log:\n${said}`);
    }
  };
  const workers = async () => ((await (await fetch(`${queen.url}/v1/workers`)).json()) as { workers: { model_ref: string; devices: number[] | null }[] }).workers.map((w) => `${w.model_ref.split("/").pop()} on GPU ${w.devices?.join("+") ?? "?"}`);
  await ask("a");
  await ask("b");
  const before = usedMiB();
  console.log(`before: ${(await workers()).join(", ")}; MiB used ${before.join(" / ")}`);
  await ask("c");
  const after = usedMiB();
  const evictions = (await (await fetch(`${queen.url}/metrics`)).text()).split("\n").filter((l) => l.startsWith("rbee_evictions_total"));
  console.log(`after a request for c: ${(await workers()).join(", ")}; MiB used ${after.join(" / ")}; ${evictions.join("; ")}`);
  report.eviction = { beforeMiB: before, afterMiB: after, evictions, workers: await workers() };
  await queen.stop();
  report.afterMiB = usedMiB();
  console.log(`after the queen stopped: MiB used ${usedMiB().join(" / ")}`);
}
console.log(JSON.stringify(report));
rmSync(home, { recursive: true, force: true });
