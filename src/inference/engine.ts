// The worker's batching loop: every active request is one sequence of a shared context, and each step decodes
// one token of every sequence (plus chunks of waiting prompts) in a single llama.cpp batch, then samples them all.
// It drives node-llama-cpp's addon context directly: the high-level classes add a lock, a queue and a
// prioritisation pass per token per sequence, which costs more than the decode itself for small models.
import type { LlamaContext, LlamaModel, Token } from "node-llama-cpp";
import { RbeeError } from "../errors";
import { logger } from "../log";
import { Generation, type GenerationRequest, type GenerationResult } from "./generation";
import { PromptCache, sharedStart } from "./prompt-cache";
import { HOST_CACHE_MIN_TOKENS, type HostPromptCache } from "./host-prompt-cache";
import { StepProfile } from "./step-profile";
import { type AddonContext, type AddonSampler, addonContextOf, backendSamplingCountsOf, canCopySequences, createSampler, lastStepTimingsOf, type SequenceState, sequenceStateOf, takeLogprobs, useBackendSampling, wantLogprobs } from "./addon";
import { type OutputPlan, type Step, type Stepper, stepperFor } from "./step";

export type { GenerationRequest, GenerationResult };

const log = logger("engine");

export interface EngineOptions {
  model: LlamaModel;
  context: LlamaContext;
  slots: number;
  ctxPerSlot: number;
  /** One KV buffer per slot: llama.cpp then decodes only runs of consecutive slots in one pass. */
  kvPerSlot: boolean;
  /** Starting a decode returns before it ends (a GPU backend). */
  decodeRunsAhead: boolean;
  queueLimit: number;
  /**
   * On the CPU: threads for steps that carry prompt chunks, and for the others. Matrix products over hundreds of tokens
   * gain from every core, while one token per sequence loses to the threads' synchronisation (stories260K on 2 cores,
   * one thread against two: a 1,390-token prompt 424 against 245 ms, one stream 4,643 against 113 tok/s).
   */
  threads?: { prompt: number; decode: number };
  /** Tokens picked on the backend, in the decode's graph, where the sampler allows (rbee's rebuilt addon; see backendSamplingWanted). */
  backendSampling?: boolean;
  /** Prompts kept in host memory beyond the slots (--prompt-cache-mb; rbee's rebuilt addon, one KV buffer per slot). */
  hostCache?: HostPromptCache;
}

/** A step with at least this many prompt tokens runs on the prompt threads. */
const PROMPT_STEP_TOKENS = 128;

/** A sequence's output in the batch now decoding, at `index` in that batch. */
interface InFlightOutput {
  g: Generation;
  index: number;
}

export class BatchEngine {
  private readonly addon: AddonContext;
  private readonly stepper: Stepper;
  private readonly nativeSteps: boolean;
  /**
   * The addon copies a sequence's cells to another slot (node-llama-cpp 3.22's does, 3.21's not): without it, gaps stay
   * open (a step over split slots takes more passes) and a held prompt is never moved, only kept where it is.
   */
  readonly sequenceCopy: boolean;
  /** Requests whose samplers allow it get their tokens picked on the backend (off unless asked for). */
  readonly backendSampling: boolean;
  private readonly profile: StepProfile | undefined;
  private readonly batchSize: number;
  private readonly freeSlots: number[];
  private readonly promptCache = new PromptCache();
  /** Where prompts go beyond the slots, and the addon's calls that put them there and back. */
  private readonly host: { cache: HostPromptCache; state: SequenceState } | undefined;
  private readonly active = new Set<Generation>();
  private readonly waiting: Generation[] = [];
  private running = false;
  private closed = false;
  /** What the context's CPU threads were last set to (undefined: as it was created). */
  private threadsInUse: number | undefined;
  /** Unix ms of the last request start or finish, for idle accounting. */
  lastActivityAt = Date.now();

  constructor(private readonly options: EngineOptions) {
    this.addon = addonContextOf(options.context);
    ({ step: this.stepper, native: this.nativeSteps } = stepperFor(options.model, this.addon, options));
    this.sequenceCopy = canCopySequences(this.addon);
    this.profile = StepProfile.fromEnv(this.nativeSteps ? lastStepTimingsOf(options.model) : undefined);
    this.backendSampling = this.nativeSteps && useBackendSampling(options.model, this.addon, options.backendSampling === true);
    this.batchSize = options.context.batchSize;
    this.freeSlots = Array.from({ length: options.slots }, (_, i) => i);
    const state = sequenceStateOf(options.model);
    this.host = options.hostCache && state && options.kvPerSlot ? { cache: options.hostCache, state } : undefined;
  }

  /** The host prompt cache's figures, where the worker has one. */
  get hostCacheStats(): { entries: number; bytes: number; limit_bytes: number; hits: number } | null {
    const cache = this.host?.cache;
    return cache ? { entries: cache.size, bytes: cache.bytes, limit_bytes: cache.limitBytes, hits: cache.hits } : null;
  }

  /** Tokens picked on the backend so far, and sampler chains attached to slots for that (each costs a graph reserve). */
  get backendSamplingCounts(): { picks: number; attachments: number } {
    return backendSamplingCountsOf(this.options.model, this.addon);
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
  /**
   * "batched": one native call per step samples every sequence and starts the next decode (rbee's rebuilt addon);
   * else one call per sequence.
   */
  get sampling(): "batched" | "per-sequence" {
    return this.nativeSteps ? "batched" : "per-sequence";
  }

  /** Each slot: whether a request runs in it, and the tokens its cells hold (a running sequence's, or a kept prompt's). */
  slots(): { id: number; busy: boolean; tokens: number; generated: number }[] {
    const running = new Map([...this.active].map((g) => [g.slot, g]));
    return Array.from({ length: this.options.slots }, (_, id) => {
      const g = running.get(id);
      return { id, busy: g !== undefined, tokens: g ? g.position : (this.promptCache.heldBy(id)?.length ?? 0), generated: g?.tokensOut ?? 0 };
    });
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
    // The loop stops with no decode in flight; another engine on this context starts with no chains attached.
    if (this.backendSampling) useBackendSampling(this.options.model, this.addon, false);
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    setImmediate(() => void this.loop());
  }

  /**
   * One iteration is one step: the outputs of the batch in flight are sampled, the sequences that go on are appended to
   * the next batch (after any prompt chunks) and that batch starts decoding; the new tokens are turned into text and
   * events (detokenizing, stop strings, SSE writes) while it decodes. The context is only touched once the step has
   * started its decode: releasing slots and preparing the next batch wait for that.
   */
  private async loop(): Promise<void> {
    let inFlight: InFlightOutput[] = [];
    let decoding = false;
    let step: Step | undefined;
    try {
      for (;;) {
        this.dropCancelled();
        await this.admitWaiting();
        await this.closeGaps();
        if (!decoding && this.active.size === 0) {
          const counts = this.profile && this.backendSampling ? this.backendSamplingCounts : undefined;
          this.profile?.report(counts && { backend_picks: counts.picks, backend_attachments: counts.attachments });
          break;
        }
        // In slot order: with one KV buffer per slot llama.cpp puts only runs of consecutive slots into one pass.
        inFlight.sort((a, b) => a.g.slot - b.g.slot);
        const plans = inFlight.map(({ g, index }) => this.outputPlan(g, index));
        const goingOn = plans.filter((p) => p.position >= 0).length;
        const prompts = this.planPrompts(this.batchSize - goingOn);
        const preparedTokens = prompts.reduce((sum, p) => sum + p.tokens.length, 0);
        this.addon.initBatch(Math.max(1, preparedTokens + goingOn));
        const next: InFlightOutput[] = [];
        for (const { g, tokens, wantsLogits } of prompts) {
          const indexes = this.addon.addToBatch(g.slot, g.position, Uint32Array.from(tokens), wantsLogits ? Uint32Array.of(tokens.length - 1) : new Uint32Array());
          g.advance(tokens.length);
          if (wantsLogits) next.push({ g, index: indexes[0]! });
        }
        // Never while a decode runs: the threads are only switched on the CPU, where a step's decode ends within it.
        const threads = this.options.threads;
        if (threads && !this.options.decodeRunsAhead) this.useThreads(preparedTokens >= PROMPT_STEP_TOKENS ? threads.prompt : threads.decode);
        this.profile?.called();
        step = this.stepper(plans, preparedTokens, next.map(({ g, index }) => ({ index, sampler: g.sampler! })));
        const { tokens, goesOn } = await step.sampled;
        this.profile?.sampled(plans.length);
        for (const [i, { g }] of inFlight.entries()) {
          const wanted = g.request.logprobs;
          if (wanted && plans[i]!.sampler) g.addLogprobs(takeLogprobs(this.options.model, plans[i]!.sampler!, wanted.top));
        }
        const ended: [Generation, GenerationResult["stopReason"], unknown?][] = [];
        const toEmit: [Generation, Token][] = [];
        let appended = 0;
        inFlight.forEach(({ g }, i) => {
          const token = tokens[i]! as Token;
          // Appended after the prompt chunks, in output order: that is its output's index in the batch now decoding.
          if (goesOn(i)) {
            next.push({ g, index: preparedTokens + appended++ });
            g.advance(1);
          }
          const plan = plans[i]!;
          if (plan.sampler === null) return;
          if (token === -1) ended.push([g, "error", new Error("sampling failed")]);
          // Meant to go on but did not: the step saw an end-of-generation token.
          else if (plan.position >= 0 && !goesOn(i)) ended.push([g, "stop"]);
          else if (plan.position < 0) {
            const eog = plan.stopAtEog && this.options.model.isEogToken(token);
            // maxTokens 0 (llama-server's n_predict 0): the prompt is evaluated and kept, nothing is generated.
            if (!eog && g.request.maxTokens > 0) toEmit.push([g, token]);
            ended.push([g, eog ? "stop" : "length"]);
          } else toEmit.push([g, token]);
        });
        const emitStart = performance.now();
        for (const [g, token] of toEmit) {
          g.emit(token);
          // First, so that it wins over "length" when the last token also completes a stop string.
          if (g.stoppedByString) ended.unshift([g, "stop"]);
        }
        this.profile?.emitted(emitStart);
        await step.launched;
        decoding = preparedTokens + appended > 0;
        this.profile?.launched();
        for (const [g, reason, err] of ended) if (this.active.has(g)) this.release(g, reason, err);
        inFlight = next;
      }
    } catch (err) {
      // Never free a sequence's cells while a step that uses them is still running.
      await step?.launched.catch(() => {});
      for (const g of [...this.active]) this.release(g, "error", err);
    } finally {
      this.running = false;
      if (this.waiting.length && !this.closed) this.kick();
    }
  }

  /**
   * With one KV buffer per slot, a free slot below a busy one would split every step into two passes over the weights:
   * the sequence in the highest busy slot moves down into it (its cells are copied at the next decode).
   */
  private async closeGaps(): Promise<void> {
    if (!this.options.kvPerSlot || !this.sequenceCopy) return;
    for (;;) {
      const gap = this.freeSlots[0];
      if (gap === undefined) return;
      const top = [...this.active].reduce<Generation | undefined>((a, g) => (!a || g.slot > a.slot ? g : a), undefined);
      if (!top || top.slot < gap) return;
      await this.keepCachedPrompt(gap);
      await this.addon.copySequenceStateFromOtherSequence(gap, top.slot);
      this.addon.disposeSequence(top.slot);
      this.freeSlots.shift();
      this.freeSlot(top.slot);
      log.debug("moved a sequence down to close a gap", { from: top.slot, to: gap });
      top.slot = gap;
    }
  }

  /**
   * The slot is about to be overwritten: the prompt it holds moves to another free slot (an empty one, else the one
   * that has held its prompt longest), so that a chat's history outlives gap closing.
   */
  private async keepCachedPrompt(slot: number): Promise<void> {
    const spare = this.promptCache.heldBy(slot) && this.promptCache.spareSlot(this.freeSlots.filter((s) => s !== slot));
    if (spare !== undefined) await this.moveHeldPrompt(slot, spare);
    this.promptCache.forget(slot);
  }

  /** Copies the cells of the prompt free slot `from` holds into free slot `to`, which holds it from now on. */
  private async moveHeldPrompt(from: number, to: number): Promise<void> {
    const held = this.promptCache.heldBy(from)!;
    this.promptCache.forget(to);
    await this.addon.copySequenceStateFromOtherSequence(to, from);
    this.promptCache.remember(to, held);
  }

  /** How the step treats a sequence's output in the batch in flight: dropped if it ended, last if it hits a limit. */
  private outputPlan(g: Generation, index: number): OutputPlan {
    const live = this.active.has(g) && !g.isCancelled && g.sampler !== undefined;
    const last = g.tokensOut + 1 >= g.request.maxTokens || g.position + 1 >= this.options.ctxPerSlot;
    return { sampler: live ? g.sampler! : null, index, slot: g.slot, position: live && !last ? g.position : -1, stopAtEog: !g.request.ignoreEos, first: g.tokensOut === 0 };
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

  private async admitWaiting(): Promise<void> {
    while (this.freeSlots.length && this.waiting.length) {
      const g = this.waiting.shift()!;
      let sampler: AddonSampler;
      try {
        sampler = createSampler(this.options.model, g.request);
        if (g.request.logprobs && !wantLogprobs(this.options.model, sampler, g.request.logprobs.top)) {
          sampler.dispose();
          throw new RbeeError("BAD_REQUEST", "logprobs need rbee's rebuilt addon (bun scripts/build-addon.ts)");
        }
      } catch (err) {
        // Out of the queue and not yet active: it must end here, or its caller waits forever.
        g.finish("error", err);
        continue;
      }
      let taken: { slot: number; cached: number };
      try {
        taken = await this.takeSlot(g.request);
      } catch (err) {
        // The same: a slot the engine could not prepare (a failing addon call) ends this request, not the loop.
        if (g.request.logprobs) wantLogprobs(this.options.model, sampler, -1);
        sampler.dispose();
        g.finish("error", err);
        continue;
      }
      g.begin(taken.slot, sampler, taken.cached);
      this.active.add(g);
    }
  }

  /**
   * A free slot for this request: with one KV buffer per slot, the one whose cells already hold most of its prompt
   * (PromptCache), emptied past what the request reuses; `cached` of its prompt's tokens need no evaluation. A request
   * with no such slot takes the lowest free one (busy slots stay consecutive), whose prompt first moves to the free slot
   * that matters least, so that another chat's history is not lost to an unrelated request; an engine that cannot copy
   * sequences takes that least-mattering slot itself instead. The slot stays free until all of this has worked: a
   * failing call leaves the engine as it was, less the prompt the slot held.
   */
  private async takeSlot(request: GenerationRequest): Promise<{ slot: number; cached: number }> {
    if (!this.options.kvPerSlot) return { slot: this.freeSlots.shift()!, cached: 0 };
    const caching = request.cachePrompt !== false;
    let { slot, shared, similar } = caching ? this.promptCache.bestSlot(this.freeSlots, request.promptTokens) : { slot: this.freeSlots[0]!, shared: 0, similar: false };
    // A prompt kept in host memory that gives more than any slot: restored into the slot a fresh prompt would take.
    const kept = caching ? this.host?.cache.best(request.promptTokens, similar ? shared : 0) : undefined;
    if (kept) return this.restoreKept(kept, request.promptTokens.length);
    if (!similar) {
      const lowest = this.freeSlots[0]!;
      const target = this.sequenceCopy ? lowest : (this.promptCache.spareSlot(this.freeSlots) ?? lowest);
      if (target !== slot) {
        const held = this.promptCache.heldBy(target);
        if (held && this.sequenceCopy) await this.moveHeldPrompt(target, slot);
        slot = target;
        shared = caching ? sharedStart(held ?? [], request.promptTokens) : 0;
      }
    }
    this.promptCache.forget(slot);
    // The prompt's last token is always evaluated again: its logits give the first token.
    const cached = Math.min(shared, request.promptTokens.length - 1);
    const trimmed = cached > 0 && this.keepOnly(slot, cached);
    if (!trimmed) this.addon.disposeSequence(slot);
    this.freeSlots.splice(this.freeSlots.indexOf(slot), 1);
    return { slot, cached: trimmed ? cached : 0 };
  }

  /** Puts a prompt kept in host memory into the lowest free slot (its held prompt moved to the spare one first). */
  private async restoreKept(kept: { state: Uint8Array; shared: number }, promptLength: number): Promise<{ slot: number; cached: number }> {
    const slot = this.freeSlots[0]!;
    if (this.sequenceCopy) await this.keepCachedPrompt(slot);
    else this.promptCache.forget(slot);
    this.addon.disposeSequence(slot);
    const cached = Math.min(kept.shared, promptLength - 1);
    const restored = this.host!.state.set(this.addon, slot, kept.state) && this.keepOnly(slot, cached);
    if (!restored) this.addon.disposeSequence(slot);
    this.freeSlots.splice(this.freeSlots.indexOf(slot), 1);
    return { slot, cached: restored ? cached : 0 };
  }

  /**
   * A finished request's prompt, now held by its slot, is copied to host memory (unless kept there already): done as
   * the request ends, never when the slot is wanted by another, so that a new prompt does not wait for the copy.
   */
  private saveToHost(slot: number, tokens: readonly Token[]): void {
    const host = this.host;
    if (!host || tokens.length < HOST_CACHE_MIN_TOKENS || host.cache.holds(tokens)) return;
    try {
      host.cache.put(tokens, host.state.get(this.addon, slot));
    } catch (err) {
      log.warn(`could not keep a prompt in host memory: ${err instanceof Error ? err.message : err}`);
    }
  }

  /**
   * Frees the slot's cells from position `count` on; whether positions 0 to count-1 are all still there (a recurrent
   * model cannot cut a sequence, a sliding-window cache may have dropped its start).
   */
  private keepOnly(slot: number, count: number): boolean {
    return (
      this.addon.removeTokenCellsFromSequence(slot, count, -1) &&
      this.addon.getSequenceKvCacheMinPosition(slot) === 0 &&
      this.addon.getSequenceKvCacheMaxPosition(slot) === count - 1
    );
  }

  /** Chunks of waiting prompts, in slot order, in the room the sequences that go on leave in the batch. */
  private planPrompts(room: number): { g: Generation; tokens: Token[]; wantsLogits: boolean }[] {
    const plan: { g: Generation; tokens: Token[]; wantsLogits: boolean }[] = [];
    for (const g of [...this.active].sort((a, b) => a.slot - b.slot)) {
      if (!g.prefilling || room <= 0) continue;
      const tokens = g.pendingPrompt.slice(0, room);
      plan.push({ g, tokens, wantsLogits: tokens.length === g.pendingPrompt.length });
      room -= tokens.length;
    }
    return plan;
  }

  /** The CPU threads the next decode runs on; llama.cpp is told only when that changes. */
  private useThreads(count: number): void {
    if (count === this.threadsInUse) return;
    this.addon.setThreads(count);
    this.threadsInUse = count;
  }

  /** Lowest slots first: with one KV buffer per slot, llama.cpp batches only runs of consecutive slots. */
  private freeSlot(slot: number): void {
    const at = this.freeSlots.findIndex((s) => s > slot);
    this.freeSlots.splice(at < 0 ? this.freeSlots.length : at, 0, slot);
  }

  private release(g: Generation, reason: GenerationResult["stopReason"], err?: unknown): void {
    this.active.delete(g);
    // A prompt evaluated whole stays in the slot's cells for the next request that starts the same way.
    const keep = this.options.kvPerSlot && reason !== "error" && !g.prefilling;
    if (keep && this.keepOnly(g.slot, g.request.promptTokens.length)) {
      this.promptCache.remember(g.slot, g.request.promptTokens);
      if (g.request.cachePrompt !== false) this.saveToHost(g.slot, g.request.promptTokens);
    } else this.addon.disposeSequence(g.slot);
    this.freeSlot(g.slot);
    this.lastActivityAt = Date.now();
    g.finish(reason, err);
  }
}
