// Loads a GGUF model for serving: backend, threads, GPU layers, and one context holding a sequence per slot.
import type { Llama, LlamaContext, LlamaModel } from "node-llama-cpp";
import { RbeeError } from "../errors";
import { logger } from "../log";
import { type Backend, createLlama, type GpuChoice, type SplitMode } from "./backend";
import { addonContextOf, rpcFolderOf, supportsModelSplit, useMicroBatch, useUnifiedKvCache } from "./addon";
import { helloRpcServer } from "./rpc-probe";
import { checkGgufFile } from "./gguf-file";
import { shapeFromMetadata } from "./gguf-metadata";
import { DEFAULT_MAX_CTX, estimateMemory, F16_KV, fittingCtxPerSlot, ggmlTypeOf, type KvTypes, kvPlan, MAX_BATCH_TOKENS, MIN_CTX_PER_SLOT, type ModelShape } from "./memory-plan";
import { freemem } from "node:os";
import { formatBytes } from "../format";
import { choosePromptThreads, chooseThreads } from "./threads";
import { type EngineInfo, engineInfoOf } from "./engine-info";

export interface LoadOptions {
  modelPath: string;
  gpu: GpuChoice;
  slots: number;
  /** Tokens of context per slot; defaults to the model's training context, capped at DEFAULT_MAX_CTX. */
  ctx?: number;
  threads?: number;
  /** How a model over several GPUs is split: by layers (llama.cpp's default), by rows, or by tensors. */
  splitMode?: SplitMode;
  /** Each device's share of the model (default: llama.cpp's, each one's free memory): the RPC servers' first. */
  tensorSplit?: number[];
  /** Other machines' devices, through their rpc-servers (HOST:PORT each): every layer goes to them and this machine's GPUs. */
  rpcServers?: string[];
  /** The KV cache's key and value types (f16 unless asked); a V type llama.cpp cannot have here stays f16, logged. */
  kv?: KvTypes;
  onProgress?: (fraction: number) => void;
}

/** llama.cpp's llama_split_mode values. */
const SPLIT_MODE_VALUES: Record<SplitMode, number> = { layer: 1, row: 2, tensor: 3 };

export interface LoadedModel {
  llama: Llama;
  model: LlamaModel;
  context: LlamaContext;
  backend: Backend;
  device: string;
  vramBytes: number;
  threads: number;
  /** Threads for steps that carry prompt chunks (on the CPU: every core). */
  promptThreads: number;
  /** One KV buffer shared by all slots (rbee's rebuilt addon), so every step is one batch whichever slots are busy. */
  unifiedKv: boolean;
  ctxPerSlot: number;
  shape: ModelShape;
  /** What llama.cpp allocated for the context (KV cache and compute buffers), on the GPU and in RAM. */
  contextBytes: { vram: number; ram: number };
  /** The KV cache's types as made (what was asked, less what llama.cpp cannot have here). */
  kv: KvTypes;
  /** llama.cpp's release, and the features this engine lacks (an older or stock addon). */
  engine: EngineInfo;
  dispose(): Promise<void>;
}

const log = logger("load");

/**
 * A token count the environment sets (RBEE_BATCH_TOKENS, RBEE_UBATCH_TOKENS; measured in docs/performance.md, issue
 * 21); undefined where unset.
 */
export function tokensFromEnv(name: string, env: Record<string, string | undefined> = process.env): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  const tokens = Number(raw);
  if (!Number.isInteger(tokens) || tokens < 1 || tokens > 65536) throw new RbeeError("BAD_REQUEST", `${name}=${raw}: a whole number of tokens from 1 to 65536`);
  return tokens;
}

export async function loadModel(options: LoadOptions): Promise<LoadedModel> {
  // Tokens one decode call carries (prompt chunks), and at most per micro-batch inside it (default: as many).
  const batchTokens = tokensFromEnv("RBEE_BATCH_TOKENS") ?? MAX_BATCH_TOKENS;
  const microBatchTokens = tokensFromEnv("RBEE_UBATCH_TOKENS") ?? 0;
  const file = await checkGgufFile(options.modelPath);
  const rpcServers = options.rpcServers ?? [];
  // Every server answers, in this engine's protocol, before anything loads (llama.cpp's client would block or abort).
  await Promise.all(rpcServers.map((server) => helloRpcServer(server)));
  const { llama, backend } = await createLlama(options.gpu);
  const vramBefore = backend === "cpu" ? 0 : (await llama.getVramState()).used;
  if (rpcServers.length && rpcFolderOf(llama) === undefined) {
    await llama.dispose();
    throw new RbeeError("BACKEND_UNAVAILABLE", "--rpc needs rbee's rebuilt addon (bun scripts/build-addon.ts); this one is node-llama-cpp's stock addon");
  }
  const split = options.splitMode !== undefined || options.tensorSplit !== undefined;
  if (split && !supportsModelSplit(llama)) {
    await llama.dispose();
    throw new RbeeError("BACKEND_UNAVAILABLE", "--split-mode and --tensor-split need rbee's rebuilt addon (bun scripts/build-addon.ts); this one is node-llama-cpp's stock addon");
  }
  if (options.splitMode === "tensor" && backend === "cpu") {
    await llama.dispose();
    throw new RbeeError("BACKEND_UNAVAILABLE", "--split-mode tensor spreads a model over GPUs; this worker runs on the CPU");
  }
  // Only asked whether the addon can, here: the micro-batch is set for the serving context alone (below).
  if (microBatchTokens > 0 && !useMicroBatch(llama, 0)) {
    await llama.dispose();
    throw new RbeeError("BACKEND_UNAVAILABLE", "RBEE_UBATCH_TOKENS needs rbee's rebuilt addon (bun scripts/build-addon.ts); this one is node-llama-cpp's stock addon");
  }
  let model: LlamaModel;
  try {
    model = await llama.loadModel({
      modelPath: options.modelPath,
      // With RPC servers the native hook offloads every layer (to them and this machine's GPUs), which node-llama-cpp's
      // own choice, counting this machine's VRAM alone, must not refuse first.
      gpuLayers: backend === "cpu" || rpcServers.length ? 0 : "auto",
      onLoadProgress: options.onProgress,
      // Passed on to llama.cpp by rbee's patch of node-llama-cpp (patches/) and its rebuilt addon.
      ...(split && { splitMode: SPLIT_MODE_VALUES[options.splitMode ?? "layer"], tensorSplit: options.tensorSplit }),
      ...(rpcServers.length && { rpcServers }),
    } as Parameters<Llama["loadModel"]>[0]);
  } catch (err) {
    await llama.dispose();
    // llama.cpp of this release keeps row splits only where a backend has split buffers, which its CUDA one lacks.
    const hint = options.splitMode === "row" && backend !== "cpu" ? ` (--split-mode row needs split buffers, which llama.cpp's ${backend} backend of this release lacks: use --split-mode tensor or layer)` : "";
    throw new RbeeError("INVALID_MODEL", `cannot load ${options.modelPath}: ${err instanceof Error ? err.message : err}${hint}`);
  }
  const allLayersOnGpu = backend !== "cpu" && model.gpuLayers >= model.fileInsights.totalLayers;
  const threads = chooseThreads({ modelBytes: file.bytes, requested: options.threads, allLayersOnGpu });
  const promptThreads = choosePromptThreads({ onCpu: backend === "cpu", requested: options.threads, decodeThreads: threads });
  const shape = shapeFromMetadata(model.fileInfo.metadata as unknown as Parameters<typeof shapeFromMetadata>[0]);
  // --ctx is honoured exactly (past the training context too, as llama.cpp allows); the default may shrink below.
  let ctxPerSlot = options.ctx ?? Math.min(model.trainContextSize, DEFAULT_MAX_CTX);
  // On the CPU llama.cpp takes whatever it is asked for and the kernel kills the process once the pages are touched
  // (a minute later, for a context of terabytes): the estimate decides first, against the RAM that is free.
  const { kv, flash, note } = kvPlan(shape, options.kv ?? F16_KV, backend !== "cpu");
  if (note) log.warn(note);
  if (backend === "cpu" && !rpcServers.length) {
    const free = freemem();
    const needs = estimateMemory(shape, { weightsBytes: file.bytes, slots: options.slots, ctxPerSlot, onGpu: false, kv });
    if (needs.ramBytes > free) {
      const fitting = options.ctx === undefined ? fittingCtxPerSlot(shape, { weightsBytes: file.bytes, slots: options.slots, onGpu: false, freeBytes: free, kv }) : undefined;
      if (fitting === undefined) {
        await model.dispose();
        await llama.dispose();
        throw new RbeeError("INSUFFICIENT_MEMORY", `not enough RAM for ${options.slots} slots of ${ctxPerSlot} tokens: needs ${formatBytes(needs.ramBytes)}, ${formatBytes(free)} free; use fewer --slots or a smaller --ctx`);
      }
      ctxPerSlot = fitting;
    }
  }
  if (ctxPerSlot > model.trainContextSize) log.warn(`--ctx ${ctxPerSlot} is past the model's training context of ${model.trainContextSize} tokens`);
  let context: LlamaContext | undefined;
  // One KV buffer per slot: the engine keeps the busy slots contiguous (see BatchEngine.closeGaps), so a step is one
  // pass over the weights. llama.cpp's unified buffer would spare those moves, but with it every decode checks all 256
  // possible sequence pairs on the CPU before the GPU starts (130 µs per step on an H100's host: 1B, 1 / 8 / 32 streams
  // 702 / 3,279 / 7,226 against 735 / 3,515 / 8,311 tok/s per slot), and on the CPU and Vulkan its attention over every
  // slot's cells costs more. RBEE_KV_LAYOUT=unified chooses it anyway (rbee's rebuilt addon).
  const wantUnified = process.env.RBEE_KV_LAYOUT === "unified";
  const unifiedKv = useUnifiedKvCache(llama, wantUnified) && wantUnified;
  // Size the context from the memory left: halve the tokens per slot until it fits (unless --ctx fixed them). The
  // micro-batch applies to the contexts created meanwhile: an embedding context made later needs each input whole.
  useMicroBatch(llama, microBatchTokens);
  try {
    for (;;) {
      try {
        context = await model.createContext({
          // Per sequence: node-llama-cpp asks llama.cpp for contextSize × sequences cells.
          contextSize: ctxPerSlot,
          sequences: options.slots,
          batchSize: Math.min(batchTokens, ctxPerSlot * options.slots),
          threads,
          // "auto": llama.cpp turns it off by itself where the GPU kernel does not exist (head sizes such as 32); a
          // quantized V needs it on (memory-plan.ts's kvPlan).
          flashAttention: flash,
          experimentalKvCacheKeyType: ggmlTypeOf(kv.k),
          experimentalKvCacheValueType: ggmlTypeOf(kv.v),
        });
        break;
      } catch (err) {
        const smaller = Math.floor(ctxPerSlot / 2);
        if (options.ctx === undefined && smaller >= MIN_CTX_PER_SLOT) {
          ctxPerSlot = smaller;
          continue;
        }
        await model.dispose();
        await llama.dispose();
        const where = backend === "cpu" ? "RAM" : `VRAM on ${backend}`;
        throw new RbeeError(backend === "cpu" ? "INSUFFICIENT_MEMORY" : "INSUFFICIENT_VRAM", `not enough ${where} for ${options.slots} slots of ${ctxPerSlot} tokens (${err instanceof Error ? err.message : err}); use fewer --slots or a smaller --ctx`);
      }
    }
  } finally {
    useMicroBatch(llama, 0);
  }
  const breakdown = addonContextOf(context!).getMemoryBreakdown();
  const vramBytes = backend === "cpu" ? 0 : Math.max(0, (await llama.getVramState()).used - vramBefore);
  const device = backend === "cpu" ? "cpu" : ((await llama.getGpuDeviceNames())[0] ?? backend);
  return {
    llama,
    model,
    context: context!,
    backend,
    device,
    vramBytes,
    threads,
    promptThreads,
    unifiedKv,
    ctxPerSlot,
    shape,
    contextBytes: { vram: breakdown.gpuVram, ram: breakdown.cpuRam },
    kv,
    engine: engineInfoOf(llama, backend),
    async dispose() {
      await context!.dispose();
      await model.dispose();
      await llama.dispose();
    },
  };
}
