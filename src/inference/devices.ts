// What this machine can run models on: the backend node-llama-cpp picks, each GPU's name and VRAM, RAM and CPU cores.
import type { Llama } from "node-llama-cpp";
import { readFileSync } from "node:fs";
import { freemem, totalmem } from "node:os";
import { thisPlatform } from "../platforms";
import type { DeviceReport } from "../wire/hive";
import { type Backend, createLlama } from "./backend";
import { engineInfoOf } from "./engine-info";
import { usableCores } from "./threads";

export type { DeviceReport };

/** The device probe, replaceable so scheduling logic can be tested against any machine. */
export type DeviceProbe = () => Promise<DeviceReport>;

let llamaOnce: Promise<{ llama: Llama; backend: Backend }> | undefined;

/** The Llama of this hive process, on the backend a probe proved (queried for VRAM, never used to run models). */
export function sharedLlama(): Promise<{ llama: Llama; backend: Backend }> {
  llamaOnce ??= createLlama("auto");
  return llamaOnce;
}

const MIB = 1024 * 1024;
/** What a CUDA process holds on each GPU it uses besides its buffers: the context and the driver's (527 MiB on an H100). */
const CUDA_PROCESS_BYTES = 600 * MIB;

/** Each NVIDIA GPU as nvidia-smi sees it, or undefined where it is not there (or fails). */
function nvidiaGpus(): DeviceReport["gpus"] | undefined {
  const run = Bun.spawnSync(["nvidia-smi", "--query-gpu=index,uuid,name,memory.total,memory.free,pci.bus_id", "--format=csv,noheader,nounits"], { stdout: "pipe", stderr: "ignore" });
  if (!run.success) return undefined;
  return parseNvidiaSmi(run.stdout.toString());
}

export function parseNvidiaSmi(csv: string): DeviceReport["gpus"] {
  return csv
    .split("\n")
    .map((line) => line.split(",").map((f) => f.trim()))
    .filter((f) => f.length >= 6 && /^\d+$/.test(f[0]!))
    .map(([index, uuid, name, total, free, bus]) => ({ index: Number(index), name: name!, vram_total_bytes: Number(total) * MIB, vram_free_bytes: Number(free) * MIB, uuid: uuid ?? null, pci_bus: bus ?? null, process_bytes: CUDA_PROCESS_BYTES }));
}

/**
 * RBEE_FAKE_DEVICES (JSON: a DeviceReport's gpus, and optionally its backend and RAM; or @FILE holding it) stands in for
 * this machine's devices, so that placement can be tested for machines the test does not have.
 */
function fakeDevices(): Partial<DeviceReport> & { gpus: DeviceReport["gpus"] } | undefined {
  const setting = process.env.RBEE_FAKE_DEVICES;
  if (!setting) return undefined;
  const text = setting.startsWith("@") ? readFileSync(setting.slice(1), "utf8") : setting;
  const fake = JSON.parse(text) as Partial<DeviceReport> & { gpus: DeviceReport["gpus"] };
  return { ...fake, gpus: fake.gpus.map((g, i) => ({ ...g, uuid: g.uuid ?? null, pci_bus: g.pci_bus ?? null, index: g.index ?? i })) };
}

/**
 * What node-llama-cpp's getVramState says. On Metal `total` is the GPU's recommendedMaxWorkingSetSize (a share of the
 * RAM), `unifiedSize` the same, and `used` at least the wired memory beyond the rest of the RAM.
 */
export interface VramState {
  total: number;
  free: number;
  unifiedSize: number;
}

/**
 * The backend's devices as one GPU (where nvidia-smi does not list them), memory summed. Memory the backend calls
 * unified (Metal on Apple silicon; node-llama-cpp's unifiedSize) is the Mac's RAM, shared with everything else:
 * placement counts the lesser of it and the free RAM (memory-plan's usableVramBytes).
 */
export function backendGpus(backend: string, vram: VramState, names: string[]): DeviceReport["gpus"] {
  const unified = vram.unifiedSize > 0 || backend === "metal";
  return [{ index: 0, name: names.join(", ") || backend, vram_total_bytes: vram.total, vram_free_bytes: vram.free, uuid: null, pci_bus: null, ...(unified && { unified: true }) }];
}

/**
 * The RAM a new process can have. On macOS os.freemem() counts only free pages, while the file cache (inactive,
 * speculative and purgeable pages) is given back on demand and fills most of an active Mac's RAM: `vm_stat` tells
 * those apart. Elsewhere os.freemem() (Linux: MemAvailable).
 */
export function availableRamBytes(platform = process.platform): number {
  if (platform !== "darwin") return freemem();
  const run = Bun.spawnSync(["vm_stat"], { stdout: "pipe", stderr: "ignore" });
  return (run.success && parseVmStat(run.stdout.toString())) || freemem();
}

/** macOS's `vm_stat`: free + inactive + speculative + purgeable pages, in bytes (undefined if it does not parse). */
export function parseVmStat(text: string): number | undefined {
  const pageSize = Number(/page size of (\d+) bytes/.exec(text)?.[1]);
  const pages = (name: string) => Number(new RegExp(`^Pages ${name}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? NaN);
  const available = ["free", "inactive", "speculative", "purgeable"].map(pages).reduce((a, b) => a + b, 0);
  return Number.isFinite(available) && pageSize > 0 ? available * pageSize : undefined;
}

export const probeDevices: DeviceProbe = async () => {
  const machine = { platform: thisPlatform(), ram_total_bytes: totalmem(), ram_free_bytes: availableRamBytes(), cpu_cores: usableCores() };
  const fake = fakeDevices();
  if (fake) {
    const backend = fake.backend ?? (fake.gpus.length ? "cuda" : "cpu");
    return { backend, backends: backend === "cpu" ? ["cpu"] : [backend, "cpu"], ...machine, ...fake, gpus: fake.gpus };
  }
  const { llama, backend } = await sharedLlama();
  let gpus: DeviceReport["gpus"] = [];
  if (backend === "cuda") gpus = nvidiaGpus() ?? [];
  if (backend !== "cpu" && !gpus.length) {
    const [vram, names] = await Promise.all([llama.getVramState(), llama.getGpuDeviceNames()]);
    gpus = backendGpus(backend, vram, names);
  }
  return { backend, backends: backend === "cpu" ? ["cpu"] : [backend, "cpu"], gpus, ...machine, engine: engineInfoOf(llama, backend) };
};
