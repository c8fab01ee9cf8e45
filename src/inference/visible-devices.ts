// A worker pinned to some GPUs (--devices 0,1) sees only those: CUDA and Vulkan read which devices are visible from
// the environment when they start, so it is set before the backend is first loaded.

/** "0,1" as [0, 1]; a clear error for anything else. */
export function parseDevices(text: string): number[] {
  const parts = text.split(",").map((p) => p.trim());
  if (!parts.length || parts.some((p) => !/^\d+$/.test(p))) throw new Error(`--devices "${text}": expected GPU indexes such as 0 or 0,1`);
  const devices = parts.map(Number);
  if (new Set(devices).size !== devices.length) throw new Error(`--devices "${text}": a GPU is named twice`);
  return devices;
}

/** Makes only these GPUs visible to this process's backends (and the probe children it starts). */
export function useOnlyDevices(devices: number[]): void {
  const list = devices.join(",");
  process.env.CUDA_VISIBLE_DEVICES = list;
  process.env.GGML_VK_VISIBLE_DEVICES = list;
}
