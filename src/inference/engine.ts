// The worker's batching loop: every active request is one sequence of a shared context, and each step decodes
// one token of every sequence (plus chunks of waiting prompts) in a single llama.cpp batch, then samples them all.
// It drives node-llama-cpp's addon context directly: the high-level classes add a lock, a queue and a
// prioritisation pass per token per sequence, which costs more than the decode itself for small models.
import type { LlamaContext, LlamaModel, Token } from "node-llama-cpp";
import { RbeeError } from "../errors";
import { Generation, type GenerationRequest, type GenerationResult } from "./generation";
import { type AddonContext, addonContextOf, createSampler } from "./addon";

export type { GenerationRequest, GenerationResult };

export interface EngineOptions {
  model: LlamaModel;
  context: LlamaContext;
  slots: number;
  ctxPerSlot: number;
  queueLimit: number;
}

export class BatchEngine {
  private readonly addon: AddonContext;
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

  private async loop(): Promise<void> {
    try {
      for (;;) {
        this.dropCancelled();
        this.admitWaiting();
        if (this.active.size === 0) break;
        await this.step();
      }
    } finally {
      this.running = false;
    }
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

  private async step(): Promise<void> {
    const plan = this.planBatch();
    this.addon.initBatch(plan.reduce((sum, p) => sum + p.tokens.length, 0));
    const withLogits: { g: Generation; index: number }[] = [];
    for (const { g, tokens, wantsLogits } of plan) {
      const indexes = this.addon.addToBatch(g.slot, g.position, Uint32Array.from(tokens), wantsLogits ? Uint32Array.of(tokens.length - 1) : new Uint32Array());
      g.advance(tokens.length);
      if (wantsLogits) withLogits.push({ g, index: indexes[0]! });
    }
    try {
      await this.addon.decodeBatch();
      const sampled = await Promise.all(withLogits.map(({ g, index }) => this.addon.sampleToken(index, g.sampler!)));
      withLogits.forEach(({ g }, k) => this.accept(g, sampled[k] as Token | -1));
    } catch (err) {
      for (const g of [...this.active]) this.release(g, "error", err);
    }
  }

  /** Running sequences first (one token each), then prompt chunks in the room left. */
  private planBatch(): { g: Generation; tokens: Token[]; wantsLogits: boolean }[] {
    const plan: { g: Generation; tokens: Token[]; wantsLogits: boolean }[] = [];
    let room = this.batchSize;
    for (const g of this.active)
      if (!g.prefilling) {
        plan.push({ g, tokens: [g.lastToken!], wantsLogits: true });
        room--;
      }
    for (const g of this.active) {
      if (!g.prefilling || room <= 0) continue;
      const tokens = g.pendingPrompt.slice(0, room);
      plan.push({ g, tokens, wantsLogits: tokens.length === g.pendingPrompt.length });
      room -= tokens.length;
    }
    return plan;
  }

  private accept(g: Generation, token: Token | -1): void {
    if (token === -1) return this.release(g, "error", new Error("sampling failed"));
    if (!g.request.ignoreEos && this.options.model.isEogToken(token)) return this.release(g, "stop");
    g.emit(token);
    if (g.stoppedByString) return this.release(g, "stop");
    if (g.tokensOut >= g.request.maxTokens || g.position + 1 >= this.options.ctxPerSlot) return this.release(g, "length");
  }

  private release(g: Generation, reason: GenerationResult["stopReason"], err?: unknown): void {
    this.active.delete(g);
    this.addon.disposeSequence(g.slot);
    this.freeSlots.push(g.slot);
    this.lastActivityAt = Date.now();
    g.finish(reason, err);
  }
}
