// A hive reports each device (index, name, memory, an id that survives a reboot), and `rbee status` shows them per
// node. The probe reads nvidia-smi on NVIDIA machines; RBEE_FAKE_DEVICES stands in for a machine the test lacks.
import { afterAll, describe, expect, test } from "bun:test";
import { parseNvidiaSmi } from "../../../src/inference/devices";
import { removeTempHomes } from "../../support/home";
import { killStartedProcesses, runRbee, startRbee, waitFor } from "../../support/processes";
import { tempHome } from "../../support/home";
import { STORIES_MODEL } from "../../support/paths";
import { postJson } from "../../support/sse";

afterAll(async () => {
  await killStartedProcesses();
  removeTempHomes();
});

const GIB = 2 ** 30;
const TWO_GPUS = [
  { index: 0, name: "NVIDIA H100 80GB HBM3", vram_total_bytes: 80 * GIB, vram_free_bytes: 70 * GIB, uuid: "GPU-aaaa", pci_bus: "00000000:19:00.0" },
  { index: 1, name: "NVIDIA H100 80GB HBM3", vram_total_bytes: 80 * GIB, vram_free_bytes: 12 * GIB, uuid: "GPU-bbbb", pci_bus: "00000000:3B:00.0" },
];

describe("devices", () => {
  test("nvidia-smi's CSV: one device per line, memory in bytes, UUID and PCI bus", () => {
    const csv = "0, GPU-6f0c1d2e-aaaa, NVIDIA H100 80GB HBM3, 81559, 81000, 00000000:19:00.0\n1, GPU-bbbb, NVIDIA H100 80GB HBM3, 81559, 512, 00000000:3B:00.0\n";
    expect(parseNvidiaSmi(csv)).toEqual([
      { index: 0, name: "NVIDIA H100 80GB HBM3", vram_total_bytes: 81559 * 2 ** 20, vram_free_bytes: 81000 * 2 ** 20, uuid: "GPU-6f0c1d2e-aaaa", pci_bus: "00000000:19:00.0", process_bytes: 600 * 2 ** 20 },
      { index: 1, name: "NVIDIA H100 80GB HBM3", vram_total_bytes: 81559 * 2 ** 20, vram_free_bytes: 512 * 2 ** 20, uuid: "GPU-bbbb", pci_bus: "00000000:3B:00.0", process_bytes: 600 * 2 ** 20 },
    ]);
    expect(parseNvidiaSmi("No devices were found\n")).toEqual([]);
  });

  test("a hive reports each GPU; rbee status shows every GPU of every node", async () => {
    const home = tempHome();
    const env = { RBEE_FAKE_DEVICES: JSON.stringify({ gpus: TWO_GPUS }) };
    const hive = await startRbee(["hive", "--port", "0", "--home", home], { env });
    const report = await (await fetch(`${hive.url}/v1/devices`)).json();
    expect(report.gpus).toEqual(TWO_GPUS);
    expect(report).toMatchObject({ backend: "cuda", cpu_cores: expect.any(Number), ram_total_bytes: expect.any(Number) });
    expect(await hive.stop()).toBe(0);

    const queen = await startRbee(["queen", "--port", "0", "--home", tempHome(), "--hive-check-interval", "0.5"], { env });
    // Naming a model starts the local hive (this one it does not have).
    await fetch(`${queen.url}/v1/completions`, { method: "POST", body: JSON.stringify({ model: "nope", prompt: "x" }) });
    await waitFor("the local hive's devices", async () => ((await (await fetch(`${queen.url}/v1/nodes`)).json()).nodes[0]?.devices ? true : undefined));
    const status = await runRbee(["status"], { env: { RBEE_QUEEN_URL: queen.url } });
    expect(status.stdout).toMatch(/localhost\s+0\s+NVIDIA H100 80GB HBM3\s+70\.0 GiB\s+80\.0 GiB\s+GPU-aaaa/);
    expect(status.stdout).toMatch(/localhost\s+1\s+NVIDIA H100 80GB HBM3\s+12\.0 GiB\s+80\.0 GiB\s+GPU-bbbb/);
    expect(await queen.stop()).toBe(0);
  });

  test("pinned workers: --devices is validated, reported, and a hive checks the pinned GPUs' memory", async () => {
    const bad = await runRbee(["worker", "--model", STORIES_MODEL, "--devices", "0,x"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim()).toBe('rbee: --devices "0,x": expected GPU indexes such as 0 or 0,1');

    const home = tempHome();
    expect((await runRbee(["hive", "models", "download", STORIES_MODEL, "--port", "1"], { env: { RBEE_HOME: home } })).code).toBe(0);
    // GPU 1 has almost nothing free: alone it cannot take even stories260K; with GPU 0 it can.
    const gpus = [TWO_GPUS[0], { ...TWO_GPUS[1], vram_free_bytes: 2 ** 20 }];
    const hive = await startRbee(["hive", "--port", "0", "--home", home], { env: { RBEE_FAKE_DEVICES: JSON.stringify({ gpus }) } });
    const spawn = (devices: number[]) => postJson(`${hive.url}/v1/workers/spawn`, { model: "stories260K", devices, slots: 1 });
    const missing = await spawn([5]);
    expect(missing.status).toBe(400);
    expect((await missing.json()).error.message).toBe("no GPU 5 on this node (it has 0, 1)");
    const tooSmall = await spawn([1]);
    expect(tooSmall.status).toBe(507);
    expect((await tooSmall.json()).error.message).toMatch(/^needs [\d.]+ MiB VRAM, 1\.0 MiB free on GPU 1 \(NVIDIA H100 80GB HBM3\)/);
    const split = await postJson(`${hive.url}/v1/workers/spawn`, { model: "stories260K", devices: [0, 1], slots: 1, split_mode: "row" });
    expect(split.status).toBe(201);
    const worker = (await split.json()).worker;
    expect(worker.devices).toEqual([0, 1]);
    const ready = await (await fetch(`${worker.url}/v1/ready`)).json();
    expect(ready).toMatchObject({ devices: [0, 1], split_mode: "row" });
    const badMode = await postJson(`${hive.url}/v1/workers/spawn`, { model: "stories260K", devices: [0, 1], split_mode: "diagonal" });
    expect(badMode.status).toBe(400);
    expect((await badMode.json()).error.message).toContain("split_mode");
    expect(await hive.stop()).toBe(0);
  });

  test("split over GPUs: --split-mode and --tensor-split are validated, reach the rebuilt addon, and are reported", async () => {
    const cases: [string[], string][] = [
      [["--split-mode", "diagonal"], "rbee: --split-mode: must be one of layer, row, tensor"],
      [["--tensor-split", "3,x"], 'rbee: --tensor-split: takes each GPU\'s share, such as 3,1 (got "3,x")'],
      [["--tensor-split", "0,0"], 'rbee: --tensor-split: takes each GPU\'s share, such as 3,1 (got "0,0")'],
    ];
    for (const [args, message] of cases) {
      const bad = await runRbee(["worker", "--model", STORIES_MODEL, ...args]);
      expect(bad.code).not.toBe(0);
      expect(bad.stderr.trim()).toBe(message);
    }
    const onCpu = await runRbee(["worker", "--model", STORIES_MODEL, "--port", "0", "--split-mode", "tensor"]);
    expect(onCpu.code).not.toBe(0);
    expect(onCpu.stderr.trim().split("\n").at(-1)).toBe("rbee: --split-mode tensor spreads a model over GPUs; this worker runs on the CPU");
    // Here on the CPU a row split has nothing to spread over: the options reach llama.cpp, and the model serves.
    const worker = await startRbee(["worker", "--model", STORIES_MODEL, "--port", "0", "--split-mode", "row", "--tensor-split", "3,1"]);
    const ready = await waitFor("ready", async () => {
      const r = await (await fetch(`${worker.url}/v1/ready`)).json();
      return r.ready ? r : undefined;
    });
    expect(ready.split_mode).toBe("row");
    const res = await postJson(`${worker.url}/v1/completions`, { prompt: "Once upon a time", max_tokens: 5 });
    expect((await res.json()).usage.completion_tokens).toBe(5);
    expect(await worker.stop()).toBe(0);
  });
});
