// A worker pinned to some GPUs (--devices 0,1) sees only those: CUDA and Vulkan read which devices are visible from
// the environment when they start, so it is set before the backend is first loaded. Bun's process.env does not reach
// the C environment that CUDA reads (oven-sh/bun#42891), so it is also set with libc's setenv; a hive passes it in
// its workers' environment at spawn as well (devicesEnv).
import { dlopen, FFIType } from "bun:ffi";

/** "0,1" as [0, 1]; a clear error for anything else. */
export function parseDevices(text: string): number[] {
  const parts = text.split(",").map((p) => p.trim());
  if (!parts.length || parts.some((p) => !/^\d+$/.test(p))) throw new Error(`--devices "${text}": expected GPU indexes such as 0 or 0,1`);
  const devices = parts.map(Number);
  if (new Set(devices).size !== devices.length) throw new Error(`--devices "${text}": a GPU is named twice`);
  return devices;
}

/** The environment that shows a process only these GPUs. */
export function devicesEnv(devices: number[]): Record<string, string> {
  const list = devices.join(",");
  return { CUDA_VISIBLE_DEVICES: list, GGML_VK_VISIBLE_DEVICES: list };
}

/** Makes only these GPUs visible to this process's backends (and the probe children it starts). */
export function useOnlyDevices(devices: number[]): void {
  for (const [name, value] of Object.entries(devicesEnv(devices))) {
    process.env[name] = value;
    setNativeEnv(name, value);
  }
}

const LIBC = process.platform === "darwin" ? "libSystem.B.dylib" : "libc.so.6";

function setNativeEnv(name: string, value: string): void {
  const libc = dlopen(LIBC, { setenv: { args: [FFIType.ptr, FFIType.ptr, FFIType.i32], returns: FFIType.i32 } });
  try {
    const cString = (text: string) => Buffer.from(`${text}\0`);
    if (libc.symbols.setenv(cString(name), cString(value), 1) !== 0) throw new Error(`setenv ${name} failed`);
  } finally {
    libc.close();
  }
}
