// Where the queen puts a new worker (roles/queen/placement.ts), for machines described by their device reports: the
// node with the model, the tightest single GPU, the fewest GPUs of one node, the CPU only where allowed, and one error
// with the numbers when nothing fits. Then the same through a real queen and hives with fake devices.
import { afterAll, describe, expect, test } from "bun:test";
import { backendGpus } from "../../../src/inference/devices";
import { readModelShape } from "../../../src/inference/gguf-metadata";
import { estimateMemory, vramOnGpus } from "../../../src/inference/memory-plan";
import { type Candidate, place } from "../../../src/roles/queen/placement";
import { placeOverNodes } from "../../../src/roles/queen/pool-placement";
import type { DeviceReport } from "../../../src/wire/hive";
import { removeTempHomes } from "../../support/home";
import { STORIES_MODEL } from "../../support/paths";
import { killStartedProcesses } from "../../support/processes";
import { queenWorkers, startNodeHive, startQueen } from "../../support/queen";

afterAll(async () => {
  await killStartedProcesses();
  removeTempHomes();
});

const GIB = 2 ** 30;
const MIB = 2 ** 20;
const gpu = (index: number, freeBytes: number) => ({ index, name: `GPU ${index}`, vram_total_bytes: 80 * GIB, vram_free_bytes: freeBytes, uuid: null, pci_bus: null });
const machine = (gpus: ReturnType<typeof gpu>[], ramFree = 16 * GIB): DeviceReport => ({
  platform: "linux-x64",
  backend: gpus.length ? "cuda" : "cpu",
  backends: gpus.length ? ["cuda", "cpu"] : ["cpu"],
  gpus,
  ram_total_bytes: 32 * GIB,
  ram_free_bytes: ramFree,
  cpu_cores: 16,
});

const shape = await readModelShape(STORIES_MODEL);
const model = { ref: "file:stories", shape, sizeBytes: 1185376 };
const request = { model, slots: 4, allowCpu: false };
const needs = estimateMemory(shape, { weightsBytes: model.sizeBytes, slots: 4, ctxPerSlot: 2048, onGpu: true });
const need = needs.vramBytes;
/** Over two GPUs: the second one's compute buffer besides (fake devices report no process memory). */
const needOnTwo = vramOnGpus(needs, [{}, {}]);
/** Two GPUs that hold it together, neither alone: 90% of the model on one, the rest and a compute buffer on the other. */
const pairFree = () => [Math.ceil(need * 0.9), needOnTwo - Math.ceil(need * 0.9) + MIB / 2];

describe("placement", () => {
  test("the tightest single GPU that holds it, on a node that has the model first", () => {
    const candidates: Candidate[] = [
      { node: "a", devices: machine([gpu(0, 40 * GIB), gpu(1, need + MIB)]), hasModel: false },
      { node: "b", devices: machine([gpu(0, 70 * GIB)]), hasModel: true },
    ];
    expect(place(candidates, request)).toEqual({ node: "b", devices: [0], gpu: "auto" });
    expect(place(candidates.map((c) => ({ ...c, hasModel: false })), request)).toEqual({ node: "a", devices: [1], gpu: "auto" });
  });

  test("no single GPU holds it: the fewest GPUs of one node, roomiest first", () => {
    // Together the two roomiest hold it; the third would not be needed.
    const [a, b] = pairFree();
    expect(Math.max(a!, b!)).toBeLessThan(need);
    const candidates: Candidate[] = [{ node: "a", devices: machine([gpu(0, a!), gpu(1, b!), gpu(2, Math.ceil(need * 0.4)), gpu(3, MIB)]), hasModel: true }];
    expect(place(candidates, request)).toEqual({ node: "a", devices: [0, 1], gpu: "auto" });
    // Enough for the model's own buffers but not for a second GPU's compute buffer: not split there.
    const short = [{ node: "a", devices: machine([gpu(0, Math.ceil(need * 0.55)), gpu(1, Math.ceil(need * 0.55))]), hasModel: true }];
    expect(() => place(short, request)).toThrow(/nothing fits/);
  });

  test("Apple's unified memory: a Metal GPU has only what the machine's RAM has free", () => {
    const mac = (ramFree: number): Candidate => ({ node: "mac", devices: { ...machine([{ ...gpu(0, 48 * GIB), unified: true } as ReturnType<typeof gpu>], ramFree), platform: "darwin-arm64", backend: "metal", backends: ["metal", "cpu"] }, hasModel: true });
    expect(place([mac(8 * GIB)], request)).toEqual({ node: "mac", devices: [0], gpu: "auto" });
    // Its GPU reports 48 GiB of working set, but the RAM behind it is taken.
    expect(() => place([mac(Math.floor(need / 2))], request)).toThrow(/nothing fits/);
  });

  test("a Mac's report as Metal's backend gives it (a working set of two thirds of the RAM, unified) places by the lesser", () => {
    const metal = backendGpus("metal", { total: 21.33 * GIB, free: 13.33 * GIB, unifiedSize: 21.33 * GIB }, ["Apple M2 Pro"]);
    const mac = (ramFree: number): Candidate => ({ node: "mac", devices: { ...machine([], ramFree), gpus: metal, platform: "darwin-arm64", backend: "metal", backends: ["metal", "cpu"] }, hasModel: true });
    expect(place([mac(11 * GIB)], request)).toEqual({ node: "mac", devices: [0], gpu: "auto" });
    expect(() => place([mac(Math.floor(need / 2))], request)).toThrow(/nothing fits/);
  });

  test("the CPU: always on a node without GPUs, on a GPU node only when allowed", () => {
    const full = { node: "g", devices: machine([gpu(0, MIB)]), hasModel: true };
    const cpuOnly = { node: "c", devices: machine([]), hasModel: false };
    expect(place([full, cpuOnly], request)).toEqual({ node: "c", gpu: "auto" });
    expect(place([full], { ...request, allowCpu: true })).toEqual({ node: "g", gpu: "cpu" });
  });

  test("nothing fits anywhere: one error with what it needs and what each node has", () => {
    const candidates: Candidate[] = [
      { node: "a", devices: machine([gpu(0, MIB), gpu(1, 2 * MIB)]), hasModel: true },
      { node: "b", devices: machine([], MIB), hasModel: false },
    ];
    expect(() => place(candidates, request)).toThrow(
      /^nothing fits file:stories with 4 slots of 2048 tokens: it needs [\d.]+ MiB on GPUs or [\d.]+ MiB of RAM; a: GPU 0 1\.0 MiB free, GPU 1 2\.0 MiB free; 16\.0 GiB RAM free \(CPU not allowed: --allow-cpu\); b: 1\.0 MiB RAM free$/,
    );
  });

  test("through a real queen: the worker goes to the node whose GPU fits, pinned to it", async () => {
    const queen = await startQueen(["--hive-check-interval", "0.5"]);
    const devicesOf = (gpus: ReturnType<typeof gpu>[]) => ({ RBEE_FAKE_DEVICES: JSON.stringify({ gpus }) });
    await startNodeHive(queen.url, "small", [], devicesOf([gpu(0, MIB)]));
    await startNodeHive(queen.url, "big", [], devicesOf([gpu(0, 2 * GIB), gpu(1, 60 * GIB)]));
    const res = await fetch(`${queen.url}/v1/completions`, { method: "POST", body: JSON.stringify({ model: "stories260K", prompt: "Once upon a time", max_tokens: 3, node: undefined }) });
    expect(res.status).toBe(200);
    const workers = (await queenWorkers(queen.url)) as unknown as { node: string; devices: number[] | null }[];
    expect(workers.map((w) => [w.node, w.devices])).toEqual([["big", [0]]]);
    // Pinned in the worker's own environment from its start, where CUDA and Vulkan read it (Bun's process.env does not
    // reach the C environment of a running process).
    const { nodes } = (await (await fetch(`${queen.url}/v1/nodes`)).json()) as { nodes: { name: string; hive_url: string }[] };
    const hive = nodes.find((n) => n.name === "big")!.hive_url;
    const { pid } = ((await (await fetch(`${hive}/v1/workers`)).json()) as { workers: { pid: number }[] }).workers[0]!;
    const environ = (await Bun.file(`/proc/${pid}/environ`).text()).split("\0");
    expect(environ).toContain("CUDA_VISIBLE_DEVICES=0");
    expect(environ).toContain("GGML_VK_VISIBLE_DEVICES=0");
    expect(await queen.stop()).toBe(0);
  });
});

describe("split over GPUs", () => {
  test("a model no single GPU holds is split over two of one node, with config.toml's split_mode", async () => {
    const { tempHome } = await import("../../support/home");
    const { writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const home = tempHome();
    writeFileSync(join(home, "config.toml"), `[models.tale]\nmodel = "stories260K"\nsplit_mode = "row"\n`);
    const queen = await startQueen(["--hive-check-interval", "0.5"], home);
    // Neither GPU holds what the worker needs (the estimate of every test here: 4 slots of 2,048 tokens); both do.
    const [a, b] = pairFree();
    await startNodeHive(queen.url, "pair", [], { RBEE_FAKE_DEVICES: JSON.stringify({ gpus: [gpu(0, a!), gpu(1, b!)] }) });
    const res = await fetch(`${queen.url}/v1/completions`, { method: "POST", body: JSON.stringify({ model: "tale", prompt: "Once upon a time", max_tokens: 3, node: "pair" }) });
    expect(res.status).toBe(200);
    const [worker] = (await queenWorkers(queen.url)) as unknown as { url: string; devices: number[] | null }[];
    expect(worker!.devices).toEqual([0, 1]);
    expect((await (await fetch(`${worker!.url}/v1/ready`)).json()).split_mode).toBe("row");
    expect(await queen.stop()).toBe(0);
  });
});

describe("eviction", () => {
  test("a spawn that needs the memory an idle worker holds stops the least recently used one; never one in use", async () => {
    const { copyFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tempHome } = await import("../../support/home");
    const { runRbee } = await import("../../support/processes");
    const { startRbee } = await import("../../support/processes");
    // Room on the one GPU for one stories260K worker (4 slots of 2048 tokens), not two.
    const env = { RBEE_FAKE_DEVICES: JSON.stringify({ gpus: [gpu(0, Math.round(need * 1.5))] }) };
    const home = tempHome("rbee-evict-");
    const tales = join(home, "tales.gguf");
    copyFileSync(STORIES_MODEL, tales);
    for (const model of [STORIES_MODEL, tales]) expect((await runRbee(["hive", "models", "download", model, "--port", "1"], { env: { RBEE_HOME: home } })).code).toBe(0);
    const queen = await startRbee(["queen", "--port", "0", "--home", home, "--hive-check-interval", "0.5"], { env });
    const ask = (model: string, extra: Record<string, unknown> = {}) =>
      fetch(`${queen.url}/v1/completions`, { method: "POST", body: JSON.stringify({ model, prompt: "Once upon a time", max_tokens: 3, ...extra }) });
    expect((await ask("stories260K")).status).toBe(200);
    expect((await ask("tales")).status).toBe(200);
    const workers = async () => ((await queenWorkers(queen.url)) as unknown as { model_ref: string }[]).map((w) => w.model_ref.split("/").pop());
    expect(await workers()).toEqual(["tales.gguf"]);
    const metrics = await (await fetch(`${queen.url}/metrics`)).text();
    expect(metrics).toMatch(/rbee_evictions_total\{model="file:[^"]*stories260K\.gguf"\} 1/);
    // While tales streams a long answer it is in use: stories260K cannot have its memory, and says why.
    const busy = await ask("tales", { max_tokens: 2000, ignore_eos: true, stream: true });
    const refused = await ask("stories260K");
    expect(refused.status).toBe(507);
    expect((await refused.json()).error.message).toMatch(/^nothing fits .*stories260K\.gguf with 4 slots of 2048 tokens: it needs [\d.]+ MiB on GPUs/);
    await busy.text();
    expect(await workers()).toEqual(["tales.gguf"]);
    expect(await queen.stop()).toBe(0);
  });
});

describe("replicas", () => {
  test("requests that wait bring up another replica on a free GPU; an idle replica stops after its keep-alive", async () => {
    const { tempHome } = await import("../../support/home");
    const { waitFor } = await import("../../support/processes");
    // A keep-alive long enough that the second replica, loading while the machine is busy, is seen before it expires.
    const queen = await startQueen(["--worker-slots", "1", "--keep-alive", "4s", "--hive-check-interval", "0.5"], tempHome());
    await startNodeHive(queen.url, "twin", [], { RBEE_FAKE_DEVICES: JSON.stringify({ gpus: [gpu(0, 40 * GIB), gpu(1, 40 * GIB)] }) });
    const long = () =>
      fetch(`${queen.url}/v1/completions`, { method: "POST", body: JSON.stringify({ model: "stories260K", prompt: "Once upon a time", max_tokens: 1500, ignore_eos: true, node: "twin" }) });
    const both = await Promise.all([long(), long()]);
    expect(both.map((r) => r.status)).toEqual([200, 200]);
    // The second replica, started while one request waited, may finish loading after both are answered.
    await waitFor("two replicas", async () => ((await queenWorkers(queen.url)).length === 2 ? true : undefined));
    const workers = (await queenWorkers(queen.url)) as unknown as { node: string; devices: number[] }[];
    expect(workers.map((w) => w.devices).sort()).toEqual([[0], [1]]);
    // One keeps serving (requests back to back, each to the least loaded, the same one); the other, idle past 4 s, stops.
    let serving = true;
    const busy = (async () => {
      while (serving) expect((await long()).status).toBe(200);
    })();
    await waitFor("one replica left", async () => ((await queenWorkers(queen.url)).length === 1 ? true : undefined), 15_000);
    serving = false;
    await busy;
    expect(await queen.stop()).toBe(0);
  });

  test("min_replicas: started with the queen, kept past the keep-alive, and started again when one dies", async () => {
    const { tempHome } = await import("../../support/home");
    const { waitFor, isAlive } = await import("../../support/processes");
    const { writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const home = tempHome();
    writeFileSync(join(home, "config.toml"), `[models.tale]\nmodel = "stories260K"\nmin_replicas = 2\n`);
    const queen = await startQueen(["--keep-alive", "1s", "--hive-check-interval", "0.5"], home);
    await startNodeHive(queen.url, "twin", [], { RBEE_FAKE_DEVICES: JSON.stringify({ gpus: [gpu(0, 40 * GIB), gpu(1, 40 * GIB)] }) });
    const twoWorkers = () => waitFor("two workers", async () => ((await queenWorkers(queen.url)).length === 2 ? queenWorkers(queen.url) : undefined), 30_000);
    const first = await twoWorkers();
    // Past the 1 s keep-alive, with no request at all: both stay.
    await Bun.sleep(2500);
    expect((await queenWorkers(queen.url)).map((w) => w.id).sort()).toEqual(first.map((w) => w.id).sort());
    // Unloading it is refused with the reason, not accepted and then not done.
    const unload = await fetch(`${queen.url}/v1/models/unload`, { method: "POST", body: JSON.stringify({ model: "tale" }) });
    expect(unload.status).toBe(409);
    const { error } = await unload.json();
    expect(error.code).toBe("MODEL_KEPT");
    expect(error.message).toContain("min_replicas");
    expect((await queenWorkers(queen.url)).length).toBe(2);
    // One dies: another takes its place.
    const { nodes } = await (await fetch(`${queen.url}/v1/nodes`)).json();
    const victim = first[0]!;
    const hiveUrl = nodes.find((n: { name: string }) => n.name === victim.node).hive_url;
    const pid = (await (await fetch(`${hiveUrl}/v1/workers`)).json()).workers.find((w: { id: string }) => w.id === victim.id).pid;
    process.kill(pid, "SIGKILL");
    await waitFor("the worker gone", () => (isAlive(pid) ? undefined : true));
    await waitFor("a new second worker", async () => {
      const now = await queenWorkers(queen.url);
      return now.length === 2 && !now.some((w) => w.id === victim.id) ? true : undefined;
    }, 30_000);
    expect(await queen.stop()).toBe(0);
  }, 90_000);
});

describe("split over nodes (pool-placement.ts)", () => {
  const big = { ref: "file:stories", shape: { ...shape }, sizeBytes: model.sizeBytes };
  const splitRequest = { model: big, slots: 64, allowCpu: false, main: "localhost" };
  const splitNeeds = estimateMemory(shape, { weightsBytes: model.sizeBytes, slots: 64, ctxPerSlot: 2048, onGpu: true });
  const node = (name: string, gpus: ReturnType<typeof gpu>[], ramFree = 16 * GIB): Candidate => ({ node: name, devices: machine(gpus, ramFree), hasModel: name === "localhost" });

  test("the fewest nodes, roomiest first, each device's share its free memory; this machine's GPUs last", () => {
    const third = Math.ceil(vramOnGpus(splitNeeds, [{}, {}, {}]) / 3);
    const plan = placeOverNodes([node("localhost", [gpu(0, third)]), node("small", [gpu(0, MIB)]), node("pc", [gpu(0, third), gpu(1, 2 * third)]), node("mac", [gpu(0, third)])], splitRequest);
    expect(plan.lenders).toEqual([{ node: "pc", devices: [0, 1], shares: [expect.any(Number), expect.any(Number)] }]);
    expect(plan.mainDevices).toEqual([0]);
    expect(plan.tensorSplit).toHaveLength(3);
    expect(plan.tensorSplit[1]! / plan.tensorSplit[0]!).toBeCloseTo(2, 1);
    expect(plan.parts.map((p) => p.node)).toEqual(["pc", "localhost"]);
    expect(plan.parts.reduce((s, p) => s + p.share, 0)).toBeCloseTo(1, 5);
  });

  test("a node without GPUs lends its CPU; config.toml's pins are taken in their order; what cannot hold it is one error", () => {
    const half = Math.ceil(vramOnGpus(splitNeeds, [{}, {}]) / 2);
    const cpuNodes = [node("localhost", [], MIB), node("a", [], half), node("b", [], half), node("c", [], half)];
    const plan = placeOverNodes(cpuNodes, { ...splitRequest, pinned: ["localhost", "c", "a"] });
    expect(plan.lenders.map((l) => [l.node, l.devices])).toEqual([["c", null], ["a", null]]);
    expect(plan.mainDevices).toEqual([]);
    expect(() => placeOverNodes(cpuNodes, { ...splitRequest, pinned: ["localhost", "a"] })).toThrow(/^nothing holds file:stories with 64 slots of 2048 tokens, not even split over the pinned nodes: it needs [\d.]+ MiB over 1 devices; localhost: CPU 1\.0 MiB free; a: CPU [\d.]+ MiB free; b: CPU/);
    expect(() => placeOverNodes(cpuNodes, { ...splitRequest, pinned: ["localhost", "zz"] })).toThrow("config.toml pins file:stories to zz, whose hive is not up");
    expect(() => placeOverNodes(cpuNodes.slice(1), splitRequest)).toThrow("the queen's own node (localhost) has no hive up to run a split worker");
    expect(() => placeOverNodes([node("localhost", [], MIB), node("a", [], MIB)], splitRequest)).toThrow(/not even split over the pool/);
  });
});
