// Replicas and splits on a machine with two GPUs, through the queen: one replica of a model at 32 concurrent streams,
// then (once waiting requests have brought a second replica up on the other GPU) two at 64 streams, the same load per
// GPU; then one worker split over both GPUs (--devices 0,1), and each GPU's memory before, during and after.
//   bun scripts/bench-replicas.ts --model /opt/models/8b.gguf [--tokens 128] [--rounds 3] [--slots 32]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import { RBEE_CLI, startDaemon, workerReady } from "./lib/daemon";
import { benchHttp } from "./lib/http-load";

const { values: opts } = parseArgs({
  options: {
    model: { type: "string" },
    tokens: { type: "string", default: "128" },
    rounds: { type: "string", default: "3" },
    slots: { type: "string", default: "32" },
  },
});
if (!opts.model) throw new Error("--model PATH is required");
const [tokens, rounds, slots] = [Number(opts.tokens), Number(opts.rounds), Number(opts.slots)];
const home = mkdtempSync(join(tmpdir(), "rbee-bench-replicas-"));
const name = basename(opts.model, ".gguf");

/** MiB used on each GPU, by nvidia-smi. */
const usedMiB = () =>
  Bun.spawnSync(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"]).stdout.toString().trim().split("\n").map(Number);

const report: Record<string, unknown> = { gpus: usedMiB().length, model: name, tokens, rounds, slots };
console.log(`GPUs: ${report.gpus}; MiB used at the start: ${usedMiB().join(" / ")}`);
Bun.spawnSync([...RBEE_CLI, "hive", "models", "download", opts.model, "--port", "1"], { env: { ...process.env, RBEE_HOME: home } });

const startQueen = () => startDaemon(["queen", "--port", "0", "--home", home, "--worker-slots", String(slots), "--keep-alive", "30m", "--queue", "4096"], { ...process.env, RBEE_HOME: home });
const workersOf = async (url: string) => ((await (await fetch(`${url}/v1/workers`)).json()) as { workers: { id: string; url: string; devices?: number[] }[] }).workers;

// One replica: config.toml holds the model to one (a request that waits a moment between rounds would start another).
await Bun.write(join(home, "config.toml"), `[models.one]\nmodel = ${JSON.stringify(opts.model)}\nmax_replicas = 1\n`);
let queen = await startQueen();
const warm = await fetch(`${queen.url}/v1/completions`, { method: "POST", body: JSON.stringify({ model: "one", prompt: "Once", max_tokens: 2 }) });
if (!warm.ok) throw new Error(`warm-up: ${await warm.text()}`);
report.oneReplicaWorkers = await workersOf(queen.url);
const one = await benchHttp({ url: queen.url, concurrency: slots, tokens, rounds, model: "one" });
report.oneReplica = one;
report.oneReplicaMiB = usedMiB();
console.log(`one replica, ${slots} streams: ${one.tokensPerS.toFixed(0)} tok/s (TTFT p50 ${one.ttftP50Ms.toFixed(1)} ms); MiB used ${usedMiB().join(" / ")}; ${(report.oneReplicaWorkers as unknown[]).length} worker`);
await queen.stop();
rmSync(join(home, "config.toml"));

// More requests than one replica's slots: they wait, and the queen starts a replica on the other GPU.
queen = await startQueen();
for (let i = 0; (await workersOf(queen.url)).length < 2; i++) {
  if (i > 20) throw new Error(`no second replica: ${JSON.stringify(await workersOf(queen.url))}`);
  await Promise.all(Array.from({ length: slots * 2 }, () => fetch(`${queen.url}/v1/completions`, { method: "POST", body: JSON.stringify({ model: name, prompt: "Once", max_tokens: 256, ignore_eos: true }) }).then((r) => r.text())));
}
const replicas = await workersOf(queen.url);
report.twoReplicaWorkers = replicas;
const two = await benchHttp({ url: queen.url, concurrency: 2 * slots, tokens, rounds, model: name });
report.twoReplicas = two;
report.twoReplicasMiB = usedMiB();
report.ratio = two.tokensPerS / one.tokensPerS;
console.log(`two replicas, ${2 * slots} streams: ${two.tokensPerS.toFixed(0)} tok/s (TTFT p50 ${two.ttftP50Ms.toFixed(1)} ms); ${(report.ratio as number).toFixed(2)}× one; MiB used ${usedMiB().join(" / ")}`);
console.log(`replicas on devices: ${replicas.map((w) => JSON.stringify(w.devices)).join(", ")}`);
// The same two workers without the queen: half the streams straight to each, at once (the queen's share of the gap).
const direct = await Promise.all(replicas.map((w) => benchHttp({ url: w.url, concurrency: slots, tokens, rounds, model: name })));
report.directTwo = direct;
const directRate = direct.reduce((a, d) => a + d.tokensPerS, 0);
report.directRatio = directRate / one.tokensPerS;
console.log(`the two workers directly, ${slots} streams each: ${directRate.toFixed(0)} tok/s; ${(report.directRatio as number).toFixed(2)}× one replica through the queen; the queen keeps ${((100 * two.tokensPerS) / directRate).toFixed(1)}%`);
await queen.stop();
report.afterQueenMiB = usedMiB();
console.log(`after the queen stopped: MiB used ${usedMiB().join(" / ")}`);

// One worker over both GPUs (llama.cpp's layer split).
const split = await startDaemon(["worker", "--model", opts.model, "--port", "0", "--slots", "8", "--devices", "0,1"], { ...process.env, RBEE_HOME: home });
await workerReady(split);
const splitRun = await benchHttp({ url: split.url, concurrency: 8, tokens, rounds, model: name });
report.split = splitRun;
report.splitMiB = usedMiB();
console.log(`split over GPUs 0,1, 8 streams: ${splitRun.tokensPerS.toFixed(0)} tok/s; MiB used ${usedMiB().join(" / ")}`);
await fetch(`${split.url}/v1/shutdown`, { method: "POST" });
await split.proc.exited;
await Bun.sleep(1000);
report.afterSplitMiB = usedMiB();
console.log(`after the split worker stopped: MiB used ${usedMiB().join(" / ")}`);
console.log(JSON.stringify(report));
rmSync(home, { recursive: true, force: true });
