// Chooses the compute backend and creates the one Llama instance of the process, never building llama.cpp at run time.
import type { Llama } from "node-llama-cpp";
import { RbeeError } from "../errors";
import { logger } from "../log";
import { setNativeEnvDefault } from "./native-env";
import { loadNodeLlamaCpp } from "./runtime";

export type GpuChoice = "auto" | "cuda" | "vulkan" | "cpu";
export type Backend = "cuda" | "vulkan" | "cpu";

const log = logger("llama");

/**
 * Whether to run llama.cpp's CUDA graphs with a layer's independent operations (Q, K and V) on parallel streams
 * (GGML_CUDA_GRAPH_OPT; off by default there). H100, synthetic 1B, one stream: llama-bench 941 and 928 tok/s against
 * 894 and 902 without; a worker with 32 slots 4.7% faster at one stream. Only with one KV buffer per slot and several
 * slots: there the parallel part ends before the KV cache writes (a reshape of the cache joins the branches). Where it
 * runs on through them, a context with one KV buffer (one slot, or RBEE_KV_LAYOUT=unified), greedy text changed from
 * run to run on the H100 (docs/performance.md), so it stays off there.
 */
export function wantsCudaGraphOpt(context: { slots: number; unifiedKv: boolean }): boolean {
  return context.slots > 1 && !context.unifiedKv;
}

export async function createLlama(choice: GpuChoice, options: { cudaGraphOpt: boolean }): Promise<{ llama: Llama; backend: Backend }> {
  // llama.cpp reads it once, at its first graph; a value the user set wins.
  if (options.cudaGraphOpt && (choice === "auto" || choice === "cuda")) setNativeEnvDefault("GGML_CUDA_GRAPH_OPT", "1");
  const { getLlama, LlamaLogLevel } = await loadNodeLlamaCpp();
  try {
    const llama = await getLlama({
      gpu: choice === "cpu" ? false : choice,
      build: "never",
      usePrebuiltBinaries: true,
      progressLogs: false,
      skipDownload: true,
      logLevel: LlamaLogLevel.error,
      logger: (level, message) => log.debug(`[${level}] ${message.trim()}`),
    });
    const backend = llama.gpu === false ? "cpu" : llama.gpu;
    if (backend === "metal") throw new Error("Metal is not supported by rbee");
    return { llama, backend };
  } catch (err) {
    throw new RbeeError("INTERNAL", `backend ${choice} is not usable here: ${err instanceof Error ? err.message : err}`);
  }
}
