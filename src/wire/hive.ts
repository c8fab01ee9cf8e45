// The hive's wire format: request bodies, catalog entries and download progress as they travel over HTTP.
import { z } from "zod";
import { KV_TYPES } from "../inference/memory-plan";
import { GPU_CHOICES, SPLIT_MODES } from "../inference/backend";
import type { CatalogEntry } from "../catalog/catalog";
import type { ModelShape } from "../inference/memory-plan";
import type { EngineInfo } from "./worker";

export const DownloadRequest = z.strictObject({ ref: z.string().min(1, "must not be empty") });

export const SpawnRequest = z.strictObject({
  model: z.string().min(1, "must name a model (id, reference or name)"),
  gpu: z.enum(GPU_CHOICES).default("auto"),
  slots: z.number().int().min(1).max(256).default(4),
  ctx: z.number().int().min(16).optional(),
  threads: z.number().int().min(1).max(1024).optional(),
  /** The GPUs (indexes on the node) the worker may use; one to pin it, several to split the model over them. */
  devices: z.array(z.number().int().nonnegative()).min(1).max(64).optional(),
  /** How the model is split over several devices (llama.cpp's split mode; layer by default). */
  split_mode: z.enum(SPLIT_MODES).optional(),
  /** Seconds idle before the hive stops the worker; 0: never (the queen's keep-alive decides). The hive's default when absent. */
  idle_timeout_s: z.number().nonnegative().optional(),
  /** Other nodes' devices the worker's layers go to, through rpc-servers they lend (HOST:PORT each, here). */
  rpc: z.array(z.string().min(1)).min(1).max(16).optional(),
  /** Each device's share of the model: the RPC servers' devices first, then this node's GPUs. */
  tensor_split: z.array(z.number().nonnegative()).min(1).max(64).optional(),
  /** The KV cache's key and value types (f16 when absent). */
  kv: z.strictObject({ k: z.enum(KV_TYPES), v: z.enum(KV_TYPES) }).optional(),
});
export type SpawnRequest = z.infer<typeof SpawnRequest>;

/** An rpc-server a hive runs to lend its devices (GET/POST /v1/rpc-servers). */
export interface LentServer {
  id: string;
  /** 127.0.0.1:PORT on that node. */
  endpoint: string;
  port: number;
  pid: number;
  /** The GPUs it lends, by index on that node; null: every GPU (or the CPU where there is none). */
  devices: number[] | null;
  started_at: string;
}

/** A node lends devices to a worker elsewhere: an rpc-server on its loopback (every GPU when `devices` is absent). */
export const LendRequest = z.strictObject({ devices: z.array(z.number().int().nonnegative()).min(1).max(64).optional() });

export interface ModelJson {
  id: string;
  ref: string;
  name: string;
  provider: string;
  path: string;
  size_bytes: number;
  sha256: string;
  architecture: string | null;
  parameter_count: number | null;
  quantization: string | null;
  context_length: number | null;
  /** The model's shape for memory estimates, where the catalog has it. */
  shape: ModelShape | null;
  chat_template: string | null;
  downloaded_at: string;
  last_used_at: string | null;
  status: string;
}

export function modelJson(m: CatalogEntry): ModelJson {
  return {
    id: m.id,
    ref: m.ref,
    name: m.name,
    provider: m.provider,
    path: m.path,
    size_bytes: m.sizeBytes,
    sha256: m.sha256,
    architecture: m.architecture,
    parameter_count: m.parameterCount,
    quantization: m.quantization,
    context_length: m.contextLength,
    shape: m.shape ?? null,
    chat_template: m.chatTemplate ?? null,
    downloaded_at: m.downloadedAt.toISOString(),
    last_used_at: m.lastUsedAt?.toISOString() ?? null,
    status: m.status,
  };
}

export interface GpuDevice {
  index: number;
  name: string;
  vram_total_bytes: number;
  vram_free_bytes: number;
  /** An id that survives a reboot (the GPU's UUID), where the driver gives one. */
  uuid: string | null;
  pci_bus: string | null;
  /** What a process holds on it besides its own buffers (CUDA's context); absent where not known. */
  process_bytes?: number;
  /** Its memory is the machine's RAM (Apple silicon): what is free is the lesser of this and ram_free_bytes. */
  unified?: boolean;
}

/** What GET /v1/devices reports. */
export interface DeviceReport {
  /** The machine's platform, as rbee's builds name it (linux-x64, linux-arm64, darwin-arm64 …). */
  platform: string;
  backend: string;
  backends: string[];
  /** One entry per device (on NVIDIA from nvidia-smi; elsewhere the backend's devices as one, memory summed). */
  gpus: GpuDevice[];
  ram_total_bytes: number;
  ram_free_bytes: number;
  cpu_cores: number;
  /** The engine the hive's workers run on (absent where RBEE_FAKE_DEVICES stands in for the machine). */
  engine?: EngineInfo;
}

export type WorkerState = "starting" | "ready" | "stopping";

export interface WorkerInfo {
  id: string;
  model_id: string;
  model_ref: string;
  state: WorkerState;
  pid: number;
  url: string | null;
  backend: string | null;
  device: string | null;
  /** The GPUs it was pinned to; null: every GPU of its node. */
  devices: number[] | null;
  slots_total: number;
  started_at: string;
  ready_at: string | null;
}

/** What a hive tells its queen when it starts and on every heartbeat. */
export const HiveAnnouncement = z.object({
  node: z.string().min(1),
  url: z.string().url(),
  pid: z.number().int(),
  devices: z.any(),
  models: z.array(z.any()),
  workers: z.array(z.any()),
});
export type HiveAnnouncement = z.infer<typeof HiveAnnouncement>;

/** A hive relays its workers' comings and goings to its queen. */
export const WorkerRelay = z.object({ node: z.string().min(1), worker: z.any(), reason: z.string().optional() });

/** Downloads through the queen: onto one node's hive (localhost by default). */
export const QueenDownloadRequest = z.strictObject({ ref: z.string().min(1, "must not be empty"), node: z.string().min(1).optional() });
