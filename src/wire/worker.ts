// The worker's wire format: request bodies and SSE event payloads, as zod schemas the server and clients share.
import { z } from "zod";
import { SPLIT_MODES } from "../inference/backend";
import { strictRequestObject } from "./request";

/** Stop strings: at most 8, each at most MAX_STOP_CHARS characters. */
export const MAX_STOP_CHARS = 256;
const stopString = z.string().max(MAX_STOP_CHARS, `a stop string may have at most ${MAX_STOP_CHARS} characters`);
const stop = z.union([stopString, z.array(stopString).max(8, "at most 8 stop strings")]).optional();

const executeFields = {
  prompt: z.string().min(1, "must not be empty"),
  max_tokens: z.number().int().positive().default(128),
  temperature: z.number().min(0).max(2).default(0.8),
  top_p: z.number().gt(0).max(1).default(0.95),
  seed: z.number().int().nonnegative().optional(),
  stop,
  /** Generate exactly max_tokens, past the end-of-text token (benchmarks). */
  ignore_eos: z.boolean().default(false),
  /** Reuse the cells of a slot whose last prompt started the same way (false: evaluate the whole prompt). */
  cache_prompt: z.boolean().default(true),
};
export const ExecuteRequest = strictRequestObject(executeFields);
export type ExecuteRequest = z.infer<typeof ExecuteRequest>;

export const StartedEvent = z.object({ request_id: z.string(), slot: z.number(), queued_ms: z.number(), prompt_tokens: z.number(), cached_tokens: z.number() });
export const TokenEvent = z.object({ t: z.string(), i: z.number() });
export const EndEvent = z.object({
  tokens_out: z.number(),
  stop_reason: z.enum(["stop", "length", "cancelled", "error"]),
  ttft_ms: z.number(),
  tokens_per_s: z.number(),
});
export const ErrorEvent = z.object({ code: z.string(), message: z.string() });

/** The engine models run on (src/inference/engine-info.ts): llama.cpp's release, the backend, and what it cannot do. */
export const EngineInfo = z.object({
  release: z.string(),
  backend: z.string(),
  /** "rbee": the addon scripts/build-addon.ts rebuilt; "stock": node-llama-cpp's own (another platform's, or an older engine). */
  addon: z.enum(["rbee", "stock"]),
  /** Features this engine lacks, whose paths the worker does not take (addon.ts's ENGINE_FEATURES). */
  features_off: z.array(z.string()),
});
export type EngineInfo = z.infer<typeof EngineInfo>;

export const WorkerState = z.enum(["loading", "idle", "busy"]);
export const ReadyResponse = z.object({
  ready: z.boolean(),
  state: WorkerState,
  progress: z.number(),
  model: z.string(),
  backend: z.string().nullable(),
  device: z.string().nullable(),
  /** The GPUs it was pinned to (--devices); null: every GPU it sees. */
  devices: z.array(z.number()).nullable(),
  /** How the model is split where it spans several GPUs (llama.cpp's split mode). */
  split_mode: z.enum(SPLIT_MODES),
  /** Other machines' rpc-servers whose devices hold part of the model (HOST:PORT each). */
  rpc_servers: z.array(z.string()),
  vram_bytes: z.number(),
  slots_total: z.number(),
  slots_idle: z.number(),
  ctx_per_slot: z.number(),
  /** Bytes llama.cpp allocated for the KV cache and compute buffers: slots × ctx_per_slot cells, on the GPU or in RAM. */
  context_bytes: z.object({ vram: z.number(), ram: z.number() }),
  /** The KV cache's key and value types. */
  kv_types: z.object({ k: z.string(), v: z.string() }),
  /** Prompts kept in host memory beyond the slots; null where the worker keeps none. */
  host_cache: z.object({ entries: z.number(), bytes: z.number(), limit_bytes: z.number(), hits: z.number() }).nullable(),
  /** "batched": one native call decodes and samples every sequence (scripts/build-addon.ts); "per-sequence": stock addon. */
  sampling: z.enum(["batched", "per-sequence"]).nullable(),
  /** null while loading. */
  engine: EngineInfo.nullable(),
  queued: z.number(),
  /** Milliseconds since the last request started or ended; 0 while busy. */
  idle_ms: z.number(),
});
export type ReadyResponse = z.infer<typeof ReadyResponse>;

/** What a worker tells its hive once it serves. */
export const WorkerReadyCallback = z.object({
  worker_id: z.string().min(1),
  url: z.string().url(),
  model_ref: z.string(),
  backend: z.string(),
  device: z.string(),
  slots_total: z.number().int().positive(),
});
export type WorkerReadyCallback = z.infer<typeof WorkerReadyCallback>;

export function stopList(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return (typeof value === "string" ? [value] : value).filter((s) => s.length > 0);
}

/** rbee's task call at the queen: the worker's execute call plus the model to use and an optional node. */
export const TaskRequest = strictRequestObject({
  ...executeFields,
  model: z.string().min(1, "must name a model"),
  node: z.string().min(1).optional(),
});
export type TaskRequest = z.infer<typeof TaskRequest>;
