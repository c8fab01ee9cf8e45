// The memory check before a spawn, from the model's real GGUF metadata against a given machine.
import { describe, expect, test } from "bun:test";
import { RbeeError } from "../../../src/errors";
import { backendGpus, parseVmStat } from "../../../src/inference/devices";
import { checkFit, estimateNeeds } from "../../../src/roles/hive/fit";
import type { DeviceReport } from "../../../src/wire/hive";
import { STORIES_MODEL } from "../../support/paths";

const machine = (vramFree: number | null, ramFree: number): DeviceReport => ({
  platform: "linux-x64",
  backend: vramFree === null ? "cpu" : "cuda",
  backends: vramFree === null ? ["cpu"] : ["cuda", "cpu"],
  gpus: vramFree === null ? [] : [{ index: 0, name: "Test GPU", vram_total_bytes: 8 * 2 ** 30, vram_free_bytes: vramFree, uuid: null, pci_bus: null }],
  ram_total_bytes: 16 * 2 ** 30,
  ram_free_bytes: ramFree,
  cpu_cores: 2,
});

describe("memory fit", () => {
  test("estimates grow with slots and context, and fit a roomy machine", async () => {
    const small = await estimateNeeds(STORIES_MODEL, { onGpu: true, slots: 1, ctxPerSlot: 256 });
    const large = await estimateNeeds(STORIES_MODEL, { onGpu: true, slots: 8, ctxPerSlot: 2048 });
    expect(small.vramBytes).toBeGreaterThan(0);
    expect(large.vramBytes).toBeGreaterThan(small.vramBytes);
    expect(() => checkFit(large, machine(8 * 2 ** 30, 8 * 2 ** 30))).not.toThrow();
  });

  test("too little VRAM: a clear error naming both figures and the GPU", async () => {
    const needs = await estimateNeeds(STORIES_MODEL, { onGpu: true, slots: 4, ctxPerSlot: 2048 });
    let err: unknown;
    try {
      checkFit(needs, machine(1024 * 1024, 2 ** 30));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RbeeError);
    expect((err as RbeeError).code).toBe("INSUFFICIENT_VRAM");
    expect((err as RbeeError).message).toMatch(/^needs [\d.]+ MiB VRAM, 1\.0 MiB free on GPU 0 \(Test GPU\); 4 slots of 2048 tokens: weights 1\.1 MiB, KV cache 5\.0 MiB, compute [\d.]+ MiB$/);
  });

  test("Apple's unified memory: a Metal GPU has no more free than the machine's RAM", async () => {
    const needs = await estimateNeeds(STORIES_MODEL, { onGpu: true, slots: 4, ctxPerSlot: 2048 });
    const mac = (ramFree: number): DeviceReport => ({ ...machine(8 * 2 ** 30, ramFree), platform: "darwin-arm64", backend: "metal", backends: ["metal", "cpu"], gpus: [{ index: 0, name: "Apple M2", vram_total_bytes: 8 * 2 ** 30, vram_free_bytes: 8 * 2 ** 30, uuid: null, pci_bus: null, unified: true }] });
    expect(() => checkFit(needs, mac(2 ** 30))).not.toThrow();
    expect(() => checkFit(needs, mac(2 ** 20))).toThrow(/VRAM, 1\.0 MiB free on GPU 0 \(Apple M2\)/);
  });

  test("without a context per slot, the default shrinks to what fits, as the worker does", async () => {
    const roomy = await estimateNeeds(STORIES_MODEL, { onGpu: false, slots: 32 });
    expect(roomy.ctxPerSlot).toBe(2048);
    const half = await estimateNeeds(STORIES_MODEL, { onGpu: false, slots: 32, ctxPerSlot: 1024 });
    const shrunk = await estimateNeeds(STORIES_MODEL, { onGpu: false, slots: 32, freeBytes: half.ramBytes });
    expect(shrunk.ctxPerSlot).toBe(1024);
    expect(shrunk.ramBytes).toBe(half.ramBytes);
  });

  test("on a CPU machine the model must fit in free RAM", async () => {
    const needs = await estimateNeeds(STORIES_MODEL, { onGpu: false, slots: 4, ctxPerSlot: 2048 });
    expect(needs.ramBytes).toBeGreaterThan(1_000_000);
    expect(() => checkFit(needs, machine(null, 1000))).toThrow(/needs [\d.]+ MiB RAM, 1000 B free/);
  });
});

describe("a Mac, as Metal's backend reports it", () => {
  // node-llama-cpp's getVramState on a 32 GiB Apple-silicon Mac: total is the GPU's recommendedMaxWorkingSetSize (about
  // two thirds of the RAM), unifiedSize the same, free what the wired memory leaves of it.
  const metalVram = { total: 21.33 * 2 ** 30, free: 13.33 * 2 ** 30, unifiedSize: 21.33 * 2 ** 30 };
  // macOS's vm_stat on the same Mac (16 KiB pages): 1.0 GiB free, 9.0 GiB inactive, 0.5 speculative, 0.5 purgeable.
  const vmStat = [
    "Mach Virtual Memory Statistics: (page size of 16384 bytes)",
    "Pages free:                               65536.",
    "Pages active:                            524288.",
    "Pages inactive:                          589824.",
    "Pages speculative:                        32768.",
    "Pages throttled:                              0.",
    "Pages wired down:                        524288.",
    "Pages purgeable:                          32768.",
    '"Translation faults":                 123456789.',
  ].join("\n");

  test("the GPU is one unified device; the RAM free counts the file cache macOS gives back", () => {
    const [gpu] = backendGpus("metal", metalVram, ["Apple M2 Pro"]);
    expect(gpu).toEqual({ index: 0, name: "Apple M2 Pro", vram_total_bytes: metalVram.total, vram_free_bytes: metalVram.free, uuid: null, pci_bus: null, unified: true });
    // Memory a backend calls unified is unified whatever the backend's name (an integrated GPU through Vulkan).
    expect(backendGpus("vulkan", metalVram, ["AMD Radeon 780M"])[0]!.unified).toBe(true);
    expect(backendGpus("vulkan", { ...metalVram, unifiedSize: 0 }, ["AMD Radeon RX 7900"])[0]!.unified).toBeUndefined();
    expect(parseVmStat(vmStat)).toBe(11 * 2 ** 30);
    expect(parseVmStat("not vm_stat")).toBeUndefined();
  });

  test("the hive's fit takes the lesser of the GPU's share and the RAM free", async () => {
    const mac = (ramFree: number): DeviceReport => ({ ...machine(0, ramFree), platform: "darwin-arm64", backend: "metal", backends: ["metal", "cpu"], gpus: backendGpus("metal", metalVram, ["Apple M2 Pro"]), ram_total_bytes: 32 * 2 ** 30 });
    const needs = await estimateNeeds(STORIES_MODEL, { onGpu: true, slots: 4, ctxPerSlot: 2048 });
    expect(() => checkFit(needs, mac(parseVmStat(vmStat)!))).not.toThrow();
    expect(() => checkFit(needs, mac(2 ** 20))).toThrow(/VRAM, 1\.0 MiB free on GPU 0 \(Apple M2 Pro\)/);
  });
});
