// The worker's batching loop: every active request is one sequence of a shared context, and each step decodes
// one token of every sequence (plus chunks of waiting prompts) in a single llama.cpp batch, then samples them all.
// It drives node-llama-cpp's addon context directly: the high-level classes add a lock, a queue and a
// prioritisation pass per token per sequence, which costs more than the decode itself for small models.
import type { LlamaContext, LlamaModel, Token } from "node-llama-cpp";
import { RbeeError } from "../errors";
import { Generation, type GenerationRequest, type GenerationResult } from "./generation";
import { StepProfile } from "./step-profile";
import { type AddonContext, addonContextOf, createSampler, type DecodeAndSample, decodeAndSampleOf, lastStepTimingsOf } from "./addon";

export type { GenerationRequest, GenerationResult };

export interface EngineOptions {
  model: LlamaModel;
  context: LlamaContext;
  slots: number;
  ctxPerSlot: number;
  queueLimit: number;
}

interface InFlight {
  /** Resolves once the batch is decoded, with the sampled tokens when the addon sampled them in the same call. */
  decoding: Promise<Int32Array | undefined>;
  withLogits: { g: Generation; index: number }[];
  startedAt: number;
}

export class BatchEngine {
  private readonly addon: AddonContext;
  private readonly decodeAndSample: DecodeAndSample | undefined;
  private readonly profile: StepProfile | undefined;
  private readonly batchSize: number;
  private readonly freeSlots: number[];
  private readonly active = new Set<Generation>();
  private readonly waiting: Generation[] = [];
  private running = false;
  private closed = false;
  /** Unix ms of the last request start or finish, for idle accounting. */
  lastActivityAt = Date.now();

  constructor(private readonly options: EngineOptions) {
    this.addon = addonContextOf(options.context);
    this.decodeAndSample = decodeAndSampleOf(options.model);
    this.profile = StepProfile.fromEnv(this.decodeAndSample && lastStepTimingsOf(options.model));
    this.batchSize = options.context.batchSize;
    this.freeSlots = Array.from({ length: options.slots }, (_, i) => i);
  }

  get slotsTotal(): number {
    return this.options.slots;
  }
  get slotsIdle(): number {
    return this.freeSlots.length;
  }
  get queued(): number {
    return this.waiting.length;
  }
  get ctxPerSlot(): number {
    return this.options.ctxPerSlot;
  }
  /** "batched": decoding and sampling are one native call per step (rbee's rebuilt addon); else one call per sequence. */
  get sampling(): "batched" | "per-sequence" {
    return this.decodeAndSample ? "batched" : "per-sequence";
  }

  /** Throws the error that `submit` would throw for this request, without queueing it. */
  check(request: Pick<GenerationRequest, "promptTokens" | "maxTokens">): void {
    if (this.closed) throw new RbeeError("SHUTTING_DOWN", "the worker is shutting down");
    const needed = request.promptTokens.length + request.maxTokens;
    if (needed > this.options.ctxPerSlot)
      throw new RbeeError(
        "CONTEXT_OVERFLOW",
        `prompt (${request.promptTokens.length} tokens) + max_tokens (${request.maxTokens}) exceeds the context of ${this.options.ctxPerSlot} tokens`,
      );
    if (this.freeSlots.length === 0 && this.waiting.length >= this.options.queueLimit)
      throw new RbeeError("QUEUE_FULL", `all ${this.options.slots} slots are busy and ${this.waiting.length} requests are waiting`, { retryAfterSeconds: 1 });
  }

  /** Queues a request; resolves when it ends, however it ends. */
  submit(request: GenerationRequest): Promise<GenerationResult> {
    this.check(request);
    const generation = new Generation(request, this.options.model);
    this.waiting.push(generation);
    this.lastActivityAt = Date.now();
    request.signal?.addEventListener("abort", () => this.kick(), { once: true });
    this.kick();
    return generation.done;
  }

  /** Cancels everything and waits for the loop to stop. */
  async close(): Promise<void> {
    this.closed = true;
    for (const g of [...this.waiting, ...this.active]) g.cancel();
    this.kick();
    while (this.running) await Bun.sleep(1);
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    setImmediate(() => void this.loop());
  }

  /**
   * One iteration: wait for the batch in flight, sample every sequence that has logits, decide who goes on, start the
   * next batch, and only then turn the sampled tokens into text and events — that JavaScript work (detokenizing, stop
   * strings, SSE writes) runs while the next batch decodes instead of between batches.
   */
  private async loop(): Promise<void> {
    let inflight: InFlight | undefined;
    try {
      for (;;) {
        if (!inflight) {
          this.dropCancelled();
          this.admitWaiting();
          if (this.active.size === 0) {
            this.profile?.report();
            break;
          }
          inflight = this.startBatch();
        }
        const batch = inflight;
        inflight = undefined;
        const sampled = await this.finishBatch(batch);
        if (!sampled) continue;
        const toEmit: [Generation, Token][] = [];
        for (const [g, token] of sampled) {
          if (token === -1) this.release(g, "error", new Error("sampling failed"));
          else if (!g.request.ignoreEos && this.options.model.isEogToken(token)) this.release(g, "stop");
          else if (g.tokensOut + 1 >= g.request.maxTokens || g.position + 1 >= this.options.ctxPerSlot) {
            g.emit(token);
            this.release(g, "length");
          } else toEmit.push([g, token]);
        }
        for (const [g, token] of toEmit) g.lastToken = token;
        this.dropCancelled();
        this.admitWaiting();
        if (this.active.size) inflight = this.startBatch();
        const emitStart = performance.now();
        for (const [g, token] of toEmit) {
          if (!this.active.has(g)) continue;
          g.emit(token);
          // It is in the batch now decoding: its slot is released once that batch is done.
          if (g.stoppedByString) g.stopPending = true;
        }
        this.profile?.emitted(emitStart);
      }
    } catch (err) {
      // Never free a sequence's cells while a batch that uses them is still decoding.
      await inflight?.decoding.catch(() => {});
      for (const g of [...this.active]) this.release(g, "error", err);
    } finally {
      this.running = false;
      if (this.waiting.length && !this.closed) this.kick();
    }
  }

  private startBatch(): InFlight {
    const plan = this.planBatch();
    this.addon.initBatch(plan.reduce((sum, p) => sum + p.tokens.length, 0));
    const withLogits: { g: Generation; index: number }[] = [];
    for (const { g, tokens, wantsLogits } of plan) {
      const indexes = this.addon.addToBatch(g.slot, g.position, Uint32Array.from(tokens), wantsLogits ? Uint32Array.of(tokens.length - 1) : new Uint32Array());
      g.advance(tokens.length);
      if (wantsLogits) withLogits.push({ g, index: indexes[0]! });
    }
    const startedAt = this.profile?.started() ?? 0;
    const decoding = this.decodeAndSample
      ? this.decodeAndSample(this.addon, withLogits.map(({ g }) => g.sampler!), Int32Array.from(withLogits, ({ index }) => index))
      : this.addon.decodeBatch().then(() => undefined);
    decoding.catch(() => {});
    return { decoding, withLogits, startedAt };
  }

  /** Waits for a batch and its samples; sequences that stopped meanwhile are released and their samples dropped. */
  private async finishBatch({ decoding, withLogits, startedAt }: InFlight): Promise<[Generation, Token | -1][] | undefined> {
    let sampled: Int32Array | undefined;
    try {
      sampled = await decoding;
      this.profile?.returned(startedAt, withLogits.length);
    } catch (err) {
      for (const g of [...this.active]) this.release(g, "error", err);
      return undefined;
    }
    for (const g of [...this.active]) if (g.stopPending) this.release(g, "stop");
    const isLive = ({ g }: { g: Generation }) => this.active.has(g) && !g.isCancelled;
    if (sampled) return withLogits.flatMap((entry, k) => (isLive(entry) ? [[entry.g, sampled[k] as Token | -1]] : []));
    // A stock addon: one sampleToken call per sequence.
    const live = withLogits.filter(isLive);
    const tokens = await Promise.all(live.map(({ g, index }) => this.addon.sampleToken(index, g.sampler!)));
    return live.map(({ g }, k) => [g, tokens[k] as Token | -1]);
  }

  private dropCancelled(): void {
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      const g = this.waiting[i]!;
      if (g.isCancelled) {
        this.waiting.splice(i, 1);
        g.finish("cancelled");
      }
    }
    for (const g of this.active) if (g.isCancelled) this.release(g, "cancelled");
  }

  private admitWaiting(): void {
    while (this.freeSlots.length && this.waiting.length) {
      const g = this.waiting.shift()!;
      const slot = this.freeSlots.shift()!;
      g.begin(slot, createSampler(this.options.model, g.request));
      this.active.add(g);
    }
  }

  /** Running sequences first (one token each), then prompt chunks in the room left. */
  private planBatch(): { g: Generation; tokens: Token[]; wantsLogits: boolean }[] {
    const plan: { g: Generation; tokens: Token[]; wantsLogits: boolean }[] = [];
    let room = this.batchSize;
    const bySlot = [...this.active].sort((a, b) => a.slot - b.slot);
    for (const g of bySlot)
      if (!g.prefilling) {
        plan.push({ g, tokens: [g.lastToken!], wantsLogits: true });
        room--;
      }
    for (const g of bySlot) {
      if (!g.prefilling || room <= 0) continue;
      const tokens = g.pendingPrompt.slice(0, room);
      plan.push({ g, tokens, wantsLogits: tokens.length === g.pendingPrompt.length });
      room -= tokens.length;
    }
    return plan;
  }

  private release(g: Generation, reason: GenerationResult["stopReason"], err?: unknown): void {
    this.active.delete(g);
    this.addon.disposeSequence(g.slot);
    // Lowest slots first: with the stock addon's per-sequence KV buffers, llama.cpp batches only consecutive ids.
    const at = this.freeSlots.findIndex((slot) => slot > g.slot);
    this.freeSlots.splice(at < 0 ? this.freeSlots.length : at, 0, g.slot);
    this.lastActivityAt = Date.now();
    g.finish(reason, err);
  }
}
