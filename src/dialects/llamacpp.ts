// llama-server's own dialect: /completion's fields as rbee's generation parameters, and rbee's results as its
// responses and stream records (content, stop, stop_type, tokens_predicted, timings ...), /tokenize's pieces,
// /props and /slots. Pure translation: the roles that serve it (worker, queen) mount it.
import type { Token } from "node-llama-cpp";
import { RbeeError } from "../errors";
import type { TokenLogprob } from "../inference/addon";
import type { GenerationResult, SamplingParams } from "../inference/generation";
import { type OutputConstraint, onlyOneConstraint } from "../inference/grammars";
import type { LlamaCompletionRequest } from "../wire/llamacpp";
import { VERSION } from "../version";

/** llama.cpp's LLAMA_DEFAULT_SEED: "a random seed", as -1 is. */
const RANDOM_SEED = 0xffffffff;

/** A prompt of text, token ids or both, as tokens; text is tokenized with the model's specials only at the start. */
export function promptTokensOf(prompt: string | (number | string)[], tokenize: (text: string, first: boolean) => Token[], vocabSize: number, field = "prompt"): Token[] {
  if (typeof prompt === "string") return tokenize(prompt, true);
  if (prompt.length > 1 && prompt.every((p) => typeof p === "string"))
    throw new RbeeError("BAD_REQUEST", `${field}: a list of several texts is several prompts; rbee serves one per request (send each on its own, or mix text with token ids for one)`);
  return prompt.flatMap((part, i) => {
    if (typeof part === "string") return tokenize(part, i === 0);
    if (part >= vocabSize) throw new RbeeError("BAD_REQUEST", `${field}: token ${part} is not in the model's vocabulary of ${vocabSize} tokens`);
    return [part as Token];
  });
}

export function samplingOf(body: LlamaCompletionRequest): Omit<SamplingParams, "grammar"> {
  return {
    temperature: body.temperature,
    topK: body.top_k,
    topP: body.top_p,
    minP: body.min_p,
    seed: body.seed < 0 || body.seed === RANDOM_SEED ? undefined : body.seed,
    repeatPenalty: body.repeat_penalty,
    presencePenalty: body.presence_penalty,
    frequencyPenalty: body.frequency_penalty,
  };
}

/** The grammar the text must follow: the request's GBNF or its JSON schema (not both). */
export function constraintOf(body: Pick<LlamaCompletionRequest, "grammar" | "json_schema">): OutputConstraint | undefined {
  return onlyOneConstraint({
    grammar: body.grammar ? { kind: "gbnf", grammar: body.grammar } : undefined,
    json_schema: body.json_schema ? { kind: "json_schema", schema: body.json_schema } : undefined,
  });
}

/** n_predict as a token budget: -1 and -2 mean "until the slot's context is full". */
export function maxTokensOf(body: LlamaCompletionRequest, promptTokens: number, ctxPerSlot: number): number {
  if (body.n_predict >= 0) return body.n_predict;
  if (promptTokens >= ctxPerSlot) throw new RbeeError("CONTEXT_OVERFLOW", `the prompt (${promptTokens} tokens) fills the context of ${ctxPerSlot} tokens`);
  return ctxPerSlot - promptTokens;
}

export type StopType = "eos" | "word" | "limit" | "none";

export function stopTypeOf(result: GenerationResult): StopType {
  if (result.stopReason === "length") return "limit";
  if (result.stopReason !== "stop") return "none";
  return result.stopWord !== undefined ? "word" : "eos";
}

export function timingsOf(result: GenerationResult) {
  const promptN = result.promptTokens - result.cachedPromptTokens;
  const predictedMs = result.decodeMs;
  const perSecond = (n: number, ms: number) => (ms > 0 ? (n * 1000) / ms : 0);
  return {
    cache_n: result.cachedPromptTokens,
    prompt_n: promptN,
    prompt_ms: result.ttftMs,
    prompt_per_token_ms: promptN ? result.ttftMs / promptN : 0,
    prompt_per_second: perSecond(promptN, result.ttftMs),
    predicted_n: result.tokensOut,
    predicted_ms: predictedMs,
    predicted_per_token_ms: result.tokensOut > 1 ? predictedMs / (result.tokensOut - 1) : 0,
    predicted_per_second: perSecond(Math.max(0, result.tokensOut - 1), predictedMs),
  };
}

/** The text of a token, as the dialect reports it. */
export type PieceOf = (token: number) => string;

/** llama-server's completion_probabilities: each token with its log probability and its most likely alternatives. */
export function probabilitiesOf(records: TokenLogprob[], pieceOf: PieceOf) {
  const entry = (token: number, logprob: number) => {
    const piece = pieceOf(token);
    return { id: token, token: piece, bytes: [...Buffer.from(piece, "utf8")], logprob };
  };
  return records.map((r) => ({ ...entry(r.token, r.logprob), top_logprobs: r.top.map((t) => entry(t.token, t.logprob)) }));
}

/** The settings a completion ran with, as llama-server reports them (generation_settings). */
function settingsOf(body: LlamaCompletionRequest, maxTokens: number) {
  return {
    n_predict: maxTokens,
    temperature: body.temperature,
    top_k: body.top_k,
    top_p: body.top_p,
    min_p: body.min_p,
    repeat_penalty: body.repeat_penalty,
    presence_penalty: body.presence_penalty,
    frequency_penalty: body.frequency_penalty,
    seed: body.seed < 0 ? RANDOM_SEED : body.seed,
    stop: typeof body.stop === "string" ? [body.stop] : body.stop,
    n_probs: body.n_probs,
    ignore_eos: body.ignore_eos,
    cache_prompt: body.cache_prompt,
    grammar: body.grammar,
  };
}

export interface CompletionHead {
  model: string;
  /** The prompt as text (a token prompt detokenized). */
  prompt: string;
  slot: number;
  maxTokens: number;
}

/** One streamed piece of text. */
export function partial(text: string, slot: number, result: { tokensOut: number; promptTokens: number }, probs?: ReturnType<typeof probabilitiesOf>) {
  return {
    index: 0,
    content: text,
    tokens: [],
    stop: false,
    id_slot: slot,
    tokens_predicted: result.tokensOut,
    tokens_evaluated: result.promptTokens,
    ...(probs && { completion_probabilities: probs }),
  };
}

/** The whole answer (or, streamed, its last record, with the text already sent). `stop` comes last: see streamEnded. */
export function final(body: LlamaCompletionRequest, head: CompletionHead, result: GenerationResult, { content, probs }: { content: string; probs?: ReturnType<typeof probabilitiesOf> }) {
  return {
    index: 0,
    content,
    tokens: [],
    id_slot: head.slot,
    model: head.model,
    tokens_predicted: result.tokensOut,
    tokens_evaluated: result.promptTokens,
    generation_settings: settingsOf(body, head.maxTokens),
    prompt: head.prompt,
    has_new_line: result.text.includes("\n"),
    truncated: false,
    stop_type: stopTypeOf(result),
    stopping_word: result.stopWord ?? "",
    tokens_cached: result.promptTokens + result.tokensOut,
    timings: timingsOf(result),
    ...(probs && { completion_probabilities: probs }),
    stop: true,
  };
}

/** A streamed completion's last record was sent: the stream ended whole (the queen checks a relayed stream's tail). */
export const STREAM_ENDED = /"stop":true\}/;

/** /tokenize's answer: ids, or with_pieces, each id with its text (bytes where it is not valid UTF-8 alone). */
export function tokenizeResponse(tokens: readonly number[], withPieces: boolean, pieceBytes: (token: number) => Uint8Array) {
  if (!withPieces) return { tokens };
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  return {
    tokens: tokens.map((id) => {
      const bytes = pieceBytes(id);
      try {
        return { id, piece: utf8.decode(bytes) };
      } catch {
        return { id, piece: [...bytes] };
      }
    }),
  };
}

export interface PropsSource {
  model: string;
  modelPath: string;
  ctxPerSlot: number;
  slots: number;
  chatTemplate: string | null;
  bosToken: string;
  eosToken: string;
  engineRelease: string;
}

/** GET /props: the model, its context per slot, its slots and chat template, the build. */
export function props(p: PropsSource) {
  return {
    default_generation_settings: {
      n_ctx: p.ctxPerSlot,
      params: { n_predict: -1, temperature: 0.8, top_k: 40, top_p: 0.95, min_p: 0.05, repeat_penalty: 1, seed: RANDOM_SEED, stop: [] },
    },
    total_slots: p.slots,
    model_alias: p.model,
    model_path: p.modelPath,
    modalities: { vision: false, audio: false },
    chat_template: p.chatTemplate ?? "",
    bos_token: p.bosToken,
    eos_token: p.eosToken,
    build_info: `rbee ${VERSION} (llama.cpp ${p.engineRelease})`,
    endpoint_slots: true,
    endpoint_props: false,
    endpoint_metrics: false,
    is_sleeping: false,
  };
}

/** GET /slots, read only: what each slot is doing and the tokens its cells hold. */
export function slotsOf(slots: { id: number; busy: boolean; tokens: number; generated: number }[], ctxPerSlot: number) {
  return slots.map((s) => ({ id: s.id, id_task: -1, n_ctx: ctxPerSlot, speculative: false, is_processing: s.busy, n_tokens: s.tokens, next_token: [{ n_decoded: s.generated }] }));
}

/** GET /health, in llama-server's shape: ok, or 503 while the model loads. */
export function health(ready: boolean) {
  return ready ? { status: "ok" } : { error: { code: 503, message: "Loading model", type: "unavailable_error" } };
}
