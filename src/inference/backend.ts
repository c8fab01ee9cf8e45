// Chooses the compute backend and creates the one Llama instance of the process, never building llama.cpp at run time.
import type { Llama } from "node-llama-cpp";
import { RbeeError } from "../errors";
import { logger } from "../log";
import { useGraphKeys } from "./addon";
import { chooseBackend } from "./backend-probe";
import { loadNodeLlamaCpp, withoutBinaryTest } from "./runtime";

export const GPU_CHOICES = ["auto", "cuda", "vulkan", "metal", "cpu"] as const;
export type GpuChoice = (typeof GPU_CHOICES)[number];
export type Backend = "cuda" | "vulkan" | "metal" | "cpu";
/** How a model over several GPUs is split (llama.cpp's split modes): by layers, by rows, by tensors. */
export const SPLIT_MODES = ["layer", "row", "tensor"] as const;
export type SplitMode = (typeof SPLIT_MODES)[number];

const log = logger("llama");

/** The backend `choice` comes to (proven by chooseBackend's probe), and the Llama on it. */
export async function createLlama(choice: GpuChoice): Promise<{ llama: Llama; backend: Backend }> {
  const chosen = await chooseBackend(choice);
  const { getLlama, LlamaLogLevel } = await loadNodeLlamaCpp();
  try {
    // Proven by the probe: node-llama-cpp's own load test of the binary would only repeat it.
    const llama = await withoutBinaryTest(() =>
      getLlama({
        gpu: chosen === "cpu" ? false : chosen,
        build: "never",
        usePrebuiltBinaries: true,
        progressLogs: false,
        skipDownload: true,
        logLevel: LlamaLogLevel.error,
        logger: (level, message) => log.debug(`[${level}] ${message.trim()}`),
      }),
    );
    const backend = llama.gpu === false ? "cpu" : llama.gpu;
    // A prompt then no longer evicts the decode graph's CUDA capture; RBEE_GRAPH_KEYS=0 turns it off for A/B runs.
    useGraphKeys(llama, process.env.RBEE_GRAPH_KEYS !== "0");
    return { llama, backend };
  } catch (err) {
    throw new RbeeError("INTERNAL", `backend ${chosen} is not usable here: ${err instanceof Error ? err.message : err}`);
  }
}
