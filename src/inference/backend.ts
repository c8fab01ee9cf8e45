// Chooses the compute backend and creates the one Llama instance of the process, never building llama.cpp at run time.
import type { Llama } from "node-llama-cpp";
import { RbeeError } from "../errors";
import { logger } from "../log";
import { setNativeEnvDefault } from "./native-env";
import { loadNodeLlamaCpp } from "./runtime";

export type GpuChoice = "auto" | "cuda" | "vulkan" | "cpu";
export type Backend = "cuda" | "vulkan" | "cpu";

const log = logger("llama");

export async function createLlama(choice: GpuChoice): Promise<{ llama: Llama; backend: Backend }> {
  // llama.cpp's CUDA graphs with independent operations (a layer's Q, K and V) on parallel streams; off by default
  // there, on here unless GGML_CUDA_GRAPH_OPT is set. H100, synthetic 1B, one stream: llama-bench 941 and 928 tok/s
  // against 894 and 902 without; the worker's decode wait 852-874 µs per step against 910-947.
  if (choice === "auto" || choice === "cuda") setNativeEnvDefault("GGML_CUDA_GRAPH_OPT", "1");
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
