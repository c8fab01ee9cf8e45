// How many CPU threads to give llama.cpp: the cores this process may actually use, but only one for tiny models,
// where splitting a matrix across threads costs more in synchronisation than it saves (4 threads on 2 cores made
// stories260K ~900x slower than 1 thread), and one when every layer runs on the GPU: the CPU then only looks up the
// input embeddings, and 16 idle-spinning threads slowed an H100 worker's steps (1B: 541 vs 693 tok/s, one stream).
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";

/** Below this many bytes of weights, one thread is fastest. */
export const SMALL_MODEL_BYTES = 64 * 1024 * 1024;

export function usableCores(): number {
  return Math.max(1, Math.min(availableParallelism(), cgroupCpuLimit() ?? Infinity));
}

export function chooseThreads({ modelBytes, requested, allLayersOnGpu = false }: { modelBytes: number; requested?: number; allLayersOnGpu?: boolean }): number {
  if (requested !== undefined) return requested;
  if (modelBytes < SMALL_MODEL_BYTES || allLayersOnGpu) return 1;
  return usableCores();
}

/**
 * Threads for steps with prompt chunks: on the CPU every usable core (a prompt is hundreds of tokens, where more threads
 * pay), unless --threads fixed the count; elsewhere what decoding has (all layers on a GPU: it does the work).
 */
export function choosePromptThreads({ onCpu, requested, decodeThreads }: { onCpu: boolean; requested?: number; decodeThreads: number }): number {
  return onCpu && requested === undefined ? usableCores() : decodeThreads;
}

function cgroupCpuLimit(): number | undefined {
  try {
    const text = readFileSync("/sys/fs/cgroup/cpu.max", "utf8");
    const [quota, period] = text.trim().split(/\s+/);
    if (quota === "max") return undefined;
    return Math.max(1, Math.floor(Number(quota) / Number(period)));
  } catch {
    return undefined;
  }
}
