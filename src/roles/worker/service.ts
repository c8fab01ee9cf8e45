// The worker's state: loading progress, then the loaded model and its batching engine, until shutdown.
import { basename } from "node:path";
import type { LlamaRankingContext } from "node-llama-cpp";
import { RbeeError } from "../../errors";
import { logger } from "../../log";
import type { GpuChoice, SplitMode } from "../../inference/backend";
import { BatchEngine } from "../../inference/engine";
import { chatWrapperOf } from "../../inference/prompt";
import { type LoadedModel, loadModel } from "../../inference/load";
import { Embedder } from "../../inference/embeddings";
import { longestTokenPiece } from "../../inference/addon";
import { Grammars } from "../../inference/grammars";
import { backendSamplingWanted, decodeRunsAheadOn } from "../../inference/step";
import type { ReadyResponse } from "../../wire/worker";
import type { GenerationResult } from "../../inference/engine";
import { describeEngine } from "../../inference/engine-info";
import type { KvTypes } from "../../inference/memory-plan";
import { HostPromptCache } from "../../inference/host-prompt-cache";

export interface WorkerConfig {
  modelPath: string;
  /** How the hive and clients name the model; the file name when not given. */
  modelRef: string;
  gpu: GpuChoice;
  slots: number;
  ctx?: number;
  threads?: number;
  queueLimit: number;
  /** The GPUs this worker was pinned to (--devices), by index on its machine. */
  devices?: number[];
  /** How the model is split over several GPUs (--split-mode), and each one's share (--tensor-split). */
  splitMode?: SplitMode;
  tensorSplit?: number[];
  /** Other machines' devices, through their rpc-servers (HOST:PORT each). */
  rpcServers?: string[];
  /** The KV cache's key and value types (f16 unless asked). */
  kv?: KvTypes;
  /** Host memory for prompts kept beyond the slots (0: none). */
  promptCacheBytes?: number;
}

const log = logger("worker");

export class WorkerService {
  private progress = 0;
  private loaded: LoadedModel | undefined;
  private engine: BatchEngine | undefined;
  private shuttingDown: Promise<void> | undefined;
  private grammarCache: Grammars | undefined;
  private embedderOnce: Promise<Embedder> | undefined;
  private rankerOnce: Promise<LlamaRankingContext> | undefined;

  constructor(readonly config: WorkerConfig) {}

  async load(): Promise<LoadedModel> {
    const started = performance.now();
    // Settings are checked before the model loads: a wrong one fails the worker at once.
    const backendSampling = backendSamplingWanted();
    this.loaded = await loadModel({ ...this.config, onProgress: (p) => (this.progress = p) });
    // Its chat template is parsed before the first request, not during it (a quarter second for Qwen2.5's).
    await chatWrapperOf(this.loaded.model);
    this.progress = 1;
    this.engine = new BatchEngine({
      model: this.loaded.model,
      context: this.loaded.context,
      slots: this.config.slots,
      ctxPerSlot: this.loaded.ctxPerSlot,
      kvPerSlot: !this.loaded.unifiedKv,
      decodeRunsAhead: decodeRunsAheadOn(this.loaded.backend),
      backendSampling,
      queueLimit: this.config.queueLimit,
      ...(this.config.promptCacheBytes && { hostCache: new HostPromptCache(this.config.promptCacheBytes) }),
      ...(this.loaded.promptThreads !== this.loaded.threads && { threads: { prompt: this.loaded.promptThreads, decode: this.loaded.threads } }),
    });
    const { backend, device, threads, promptThreads, ctxPerSlot, unifiedKv } = this.loaded;
    const sampling = this.engine.sampling === "batched" ? "batched" : "per-sequence (stock addon)";
    const kv = `${this.loaded.kv.k}/${this.loaded.kv.v}`;
    log.info(`loaded ${basename(this.config.modelPath)} in ${Math.round(performance.now() - started)} ms`, { backend, device, threads, promptThreads, ctxPerSlot, slots: this.config.slots, kv, sampling, backendSampling: this.engine.backendSampling, unifiedKv });
    if (this.loaded.engine.features_off.length) log.info(`engine: ${describeEngine(this.loaded.engine)}`);
    return this.loaded;
  }

  get model() {
    return this.requireLoaded().model;
  }

  get shape() {
    return this.requireLoaded().shape;
  }

  /**
   * Refuses text that cannot fit a slot, before tokenizing it: no token is longer than the vocabulary's longest piece, so
   * text of more than ctx_per_slot × that many characters has more tokens than a slot holds.
   */
  checkTextFits(chars: number, what: string, tokens = this.requireLoaded().ctxPerSlot): void {
    const most = tokens * this.longestPiece();
    if (chars > most) throw new RbeeError("CONTEXT_OVERFLOW", `${what} has ${chars} characters: more than ${tokens} tokens can hold (at most ${most})`);
  }

  private longestPieceOnce: number | undefined;
  private longestPiece(): number {
    this.longestPieceOnce ??= longestTokenPiece(this.requireLoaded().model, this.shape.vocab);
    return this.longestPieceOnce;
  }

  /** The embeddings context, made on the first request (its memory is taken only by workers that embed). */
  embedder(): Promise<Embedder> {
    const loaded = this.requireLoaded();
    this.embedderOnce ??= Embedder.create(loaded.model, loaded.threads);
    this.embedderOnce.catch(() => (this.embedderOnce = undefined));
    return this.embedderOnce;
  }

  /** A ranking context, for reranker models only (a classification head scoring query and document together). */
  ranker(): Promise<LlamaRankingContext> {
    const loaded = this.requireLoaded();
    this.rankerOnce ??= loaded.model.createRankingContext({ contextSize: Math.min(loaded.model.trainContextSize, 2048), threads: loaded.threads }).catch((err) => {
      this.rankerOnce = undefined;
      throw new RbeeError("BAD_REQUEST", `this model cannot rank documents (it is not a reranker): ${err instanceof Error ? err.message : err}`);
    });
    return this.rankerOnce;
  }

  /** The model's chat template (Jinja) as its file carries it, or null. */
  get chatTemplate(): string | null {
    const template = (this.model.fileInfo.metadata as { tokenizer?: { chat_template?: unknown } }).tokenizer?.chat_template;
    return typeof template === "string" ? template : null;
  }

  /** JSON and JSON-schema grammars for this model's requests. */
  get grammars(): Grammars {
    this.grammarCache ??= new Grammars(this.requireLoaded().llama);
    return this.grammarCache;
  }

  requireEngine(): BatchEngine {
    if (this.shuttingDown) throw new RbeeError("SHUTTING_DOWN", "the worker is shutting down", { retryAfterSeconds: 1 });
    if (!this.engine) throw new RbeeError("NOT_READY", `the model is still loading (${Math.round(this.progress * 100)}%)`, { retryAfterSeconds: 1 });
    return this.engine;
  }

  readiness(): ReadyResponse {
    const engine = this.engine;
    const busy = engine !== undefined && (engine.slotsIdle < engine.slotsTotal || engine.queued > 0);
    return {
      ready: engine !== undefined && !this.shuttingDown,
      state: engine === undefined ? "loading" : busy ? "busy" : "idle",
      progress: this.progress,
      model: this.config.modelRef,
      backend: this.loaded?.backend ?? null,
      device: this.loaded?.device ?? null,
      devices: this.config.devices ?? null,
      split_mode: this.config.splitMode ?? "layer",
      rpc_servers: this.config.rpcServers ?? [],
      vram_bytes: this.loaded?.vramBytes ?? 0,
      slots_total: this.config.slots,
      slots_idle: engine?.slotsIdle ?? 0,
      ctx_per_slot: this.loaded?.ctxPerSlot ?? 0,
      context_bytes: this.loaded?.contextBytes ?? { vram: 0, ram: 0 },
      kv_types: this.loaded?.kv ?? this.config.kv ?? { k: "f16", v: "f16" },
      host_cache: engine?.hostCacheStats ?? null,
      sampling: engine?.sampling ?? null,
      engine: engine ? this.loaded!.engine : null,
      queued: engine?.queued ?? 0,
      idle_ms: engine && !busy ? Date.now() - engine.lastActivityAt : 0,
    };
  }

  /** Cancels running requests and frees the model; safe to call more than once. */
  shutdown(): Promise<void> {
    this.shuttingDown ??= (async () => {
      await this.engine?.close();
      await (await this.embedderOnce?.catch(() => undefined))?.dispose();
      await (await this.rankerOnce?.catch(() => undefined))?.dispose();
      await this.loaded?.dispose();
    })();
    return this.shuttingDown;
  }

  private requireLoaded(): LoadedModel {
    if (!this.loaded) throw new RbeeError("NOT_READY", "the model is still loading", { retryAfterSeconds: 1 });
    return this.loaded;
  }
}

/** A whole (not streamed) answer's generation that failed or was cancelled, as the request's error. */
export function throwIfFailed(result: GenerationResult): void {
  if (result.stopReason === "error") throw new RbeeError("INTERNAL", result.error ?? "generation failed");
  if (result.stopReason === "cancelled") throw new RbeeError("SHUTTING_DOWN", "the request was cancelled");
}
