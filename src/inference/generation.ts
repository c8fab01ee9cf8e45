// One request's life inside the batching loop: its prompt, its slot, its sampler, its streamed text and timings.
import type { LlamaGrammar, LlamaModel, Token } from "node-llama-cpp";
import { type AddonSampler, type TokenLogprob, wantLogprobs } from "./addon";
import { TextStream } from "./text-stream";

export interface SamplingParams {
  temperature: number;
  topP: number;
  topK?: number;
  minP?: number;
  seed?: number;
  /** llama.cpp's penalties over the last PENALTY_LAST_TOKENS generated tokens (1 / 0: off). */
  repeatPenalty?: number;
  frequencyPenalty?: number;
  presencePenalty?: number;
  /** Added to a token's logit before sampling; -Infinity bans it. */
  logitBias?: Map<number, number>;
  /** Only text this grammar allows (node-llama-cpp's LlamaGrammar: JSON, a JSON schema). */
  grammar?: LlamaGrammar;
}

export interface GenerationRequest extends SamplingParams {
  promptTokens: Token[];
  maxTokens: number;
  stop: string[];
  ignoreEos?: boolean;
  /** Whitespace at the end of the text is dropped (held back while streaming until more text follows it). */
  trimEnd?: boolean;
  /** Start from a slot whose cells already hold the prompt's beginning (the default; see PromptCache). */
  cachePrompt?: boolean;
  signal?: AbortSignal;
  /** Called when the request gets a slot; `cachedTokens` of the prompt were already in its cells. */
  onStart?: (info: { slot: number; queuedMs: number; cachedTokens: number }) => void;
  /**
   * Called with each piece of text as it becomes safe to send; `index` is the generated token's index; with logprobs,
   * those of the tokens this piece completes.
   */
  onText?: (text: string, index: number, logprobs?: TokenLogprob[]) => void;
  /** Record each generated token's log probability and this many most likely alternatives (rbee's addon only). */
  logprobs?: { top: number };
}

export type StopReason = "stop" | "length" | "cancelled" | "error";

export interface GenerationResult {
  text: string;
  promptTokens: number;
  /** Of the prompt's tokens, those found already evaluated in the slot's cells. */
  cachedPromptTokens: number;
  tokensOut: number;
  stopReason: StopReason;
  ttftMs: number;
  tokensPerS: number;
  /** From the first generated token to the last. */
  decodeMs: number;
  /** The stop string that ended the text (stopReason "stop" without one: an end-of-generation token). */
  stopWord?: string;
  error?: string;
  /** One per generated token, where the request asked for them. */
  logprobs?: TokenLogprob[];
}

export class Generation {
  readonly done: Promise<GenerationResult>;
  slot = -1;
  position = 0;
  cachedPromptTokens = 0;
  sampler: AddonSampler | undefined;
  pendingPrompt: Token[];
  tokensOut = 0;
  private readonly text: TextStream;
  private readonly chunks: string[] = [];
  private readonly submittedAt = performance.now();
  private firstTokenAt = 0;
  private lastTokenAt = 0;
  private cancelled = false;
  private resolveDone!: (r: GenerationResult) => void;
  private readonly logprobs: TokenLogprob[] = [];
  private logprobsSent = 0;

  constructor(
    readonly request: GenerationRequest,
    private readonly model: LlamaModel,
  ) {
    this.pendingPrompt = request.promptTokens;
    this.text = new TextStream(model, request.stop, request.trimEnd, request.promptTokens);
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  get prefilling(): boolean {
    return this.pendingPrompt.length > 0;
  }
  get isCancelled(): boolean {
    return this.cancelled || this.request.signal?.aborted === true;
  }
  get stoppedByString(): boolean {
    return this.text.stopped;
  }

  cancel(): void {
    this.cancelled = true;
  }

  /** Starts in `slot`, whose cells hold the prompt's first `cached` tokens. */
  begin(slot: number, sampler: AddonSampler, cached: number): void {
    this.slot = slot;
    this.sampler = sampler;
    this.cachedPromptTokens = cached;
    this.position = cached;
    this.pendingPrompt = this.request.promptTokens.slice(cached);
    this.request.onStart?.({ slot, queuedMs: round(performance.now() - this.submittedAt), cachedTokens: cached });
  }

  /** Records that `count` tokens were placed in the batch at the current position. */
  advance(count: number): void {
    this.position += count;
    if (this.prefilling) this.pendingPrompt = this.pendingPrompt.slice(count);
  }

  /** Log probabilities of the tokens sampled in the last step, before they are emitted. */
  addLogprobs(records: TokenLogprob[]): void {
    this.logprobs.push(...records);
  }

  emit(token: Token): void {
    const now = performance.now();
    if (this.tokensOut === 0) this.firstTokenAt = now;
    this.lastTokenAt = now;
    const index = this.tokensOut++;
    const piece = this.text.push(token);
    if (piece) this.send(piece, index);
  }

  finish(stopReason: StopReason, err?: unknown): void {
    const rest = stopReason === "cancelled" || stopReason === "error" ? "" : this.text.flush();
    if (rest) this.send(rest, this.tokensOut - 1);
    // The native side keeps a sampler's recorded log probabilities by its address: forgotten before it is freed.
    if (this.sampler && this.request.logprobs) wantLogprobs(this.model, this.sampler, -1);
    this.sampler?.dispose();
    this.sampler = undefined;
    const decodeMs = this.lastTokenAt - this.firstTokenAt;
    this.resolveDone({
      text: this.chunks.join(""),
      promptTokens: this.request.promptTokens.length,
      cachedPromptTokens: this.cachedPromptTokens,
      tokensOut: this.tokensOut,
      stopReason,
      ttftMs: this.tokensOut ? round(this.firstTokenAt - this.submittedAt) : 0,
      tokensPerS: this.tokensOut > 1 && decodeMs > 0 ? round(((this.tokensOut - 1) * 1000) / decodeMs) : 0,
      decodeMs: round(decodeMs),
      ...(this.text.stoppedBy !== undefined && { stopWord: this.text.stoppedBy }),
      ...(err !== undefined && { error: err instanceof Error ? err.message : String(err) }),
      ...(this.request.logprobs && { logprobs: this.logprobs.slice(0, this.tokensOut) }),
    });
  }

  private send(piece: string, index: number): void {
    this.chunks.push(piece);
    if (!this.request.logprobs) return this.request.onText?.(piece, index);
    const upTo = Math.min(index + 1, this.logprobs.length);
    const completed = this.logprobs.slice(this.logprobsSent, upTo);
    this.logprobsSent = Math.max(this.logprobsSent, upTo);
    this.request.onText?.(piece, index, completed);
  }
}

const round = (x: number) => Math.round(x * 100) / 100;
