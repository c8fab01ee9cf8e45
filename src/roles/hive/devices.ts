// What this machine can run models on: the backend node-llama-cpp picks, each GPU's name and VRAM, RAM and CPU cores.
import type { Llama } from "node-llama-cpp";
import { freemem, totalmem } from "node:os";
import { type Backend, createLlama } from "../../inference/backend";
import type { DeviceReport } from "../../wire/hive";

export type { DeviceReport };
import { usableCores } from "../../inference/threads";


/** The device probe, replaceable so scheduling logic can be tested against any machine. */
export type DeviceProbe = () => Promise<DeviceReport>;

let llamaOnce: Promise<{ llama: Llama; backend: Backend }> | undefined;

/** The Llama of this hive process, on the backend a probe proved (queried for VRAM, never used to run models). */
export function sharedLlama(): Promise<{ llama: Llama; backend: Backend }> {
  llamaOnce ??= createLlama("auto");
  return llamaOnce;
}

export const probeDevices: DeviceProbe = async () => {
  const { llama, backend } = await sharedLlama();
  const gpus: DeviceReport["gpus"] = [];
  if (backend !== "cpu") {
    const [vram, names] = await Promise.all([llama.getVramState(), llama.getGpuDeviceNames()]);
    gpus.push({ index: 0, name: names.join(", ") || backend, vram_total_bytes: vram.total, vram_free_bytes: vram.free });
  }
  return {
    backend,
    backends: backend === "cpu" ? ["cpu"] : [backend, "cpu"],
    gpus,
    ram_total_bytes: totalmem(),
    ram_free_bytes: freemem(),
    cpu_cores: usableCores(),
  };
};
