// A hive reports each device (index, name, memory, an id that survives a reboot), and `rbee status` shows them per
// node. The probe reads nvidia-smi on NVIDIA machines; RBEE_FAKE_DEVICES stands in for a machine the test lacks.
import { afterAll, describe, expect, test } from "bun:test";
import { parseNvidiaSmi } from "../../../src/roles/hive/devices";
import { removeTempHomes } from "../../support/home";
import { killStartedProcesses, runRbee, startRbee, waitFor } from "../../support/processes";
import { tempHome } from "../../support/home";

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
      { index: 0, name: "NVIDIA H100 80GB HBM3", vram_total_bytes: 81559 * 2 ** 20, vram_free_bytes: 81000 * 2 ** 20, uuid: "GPU-6f0c1d2e-aaaa", pci_bus: "00000000:19:00.0" },
      { index: 1, name: "NVIDIA H100 80GB HBM3", vram_total_bytes: 81559 * 2 ** 20, vram_free_bytes: 512 * 2 ** 20, uuid: "GPU-bbbb", pci_bus: "00000000:3B:00.0" },
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
});
