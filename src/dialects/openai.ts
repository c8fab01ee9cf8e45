// The OpenAI dialect: its request fields as rbee's generation parameters, and rbee's results as its responses and
// stream chunks. Pure translation: the roles that serve the dialect (worker, queen) mount it.
import { RbeeError } from "../errors";
import type { SamplingParams } from "../inference/generation";
import type { GenerationResult } from "../inference/engine";
import type { OutputConstraint } from "../inference/grammars";
import type { ModelJson } from "../wire/hive";
import type { ChatRequest, CompletionRequest, ResponseFormat } from "../wire/openai";
import { usage } from "../wire/openai";

type OpenAiRequest = CompletionRequest | ChatRequest;
export type ChoiceKind = "text_completion" | "chat.completion";

/** Sampling for choice `index` of `n`: with a seed, each choice gets its own (seed + index), so they differ yet repeat. */
export function samplingOf(body: OpenAiRequest, index: number, vocabSize: number): Omit<SamplingParams, "grammar"> {
  return {
    temperature: body.temperature,
    topP: body.top_p,
    topK: body.top_k,
    minP: body.min_p,
    seed: body.seed === undefined ? undefined : body.seed + index,
    repeatPenalty: body.repeat_penalty,
    frequencyPenalty: body.frequency_penalty ?? undefined,
    presencePenalty: body.presence_penalty ?? undefined,
    logitBias: logitBias(body.logit_bias ?? undefined, vocabSize),
  };
}

/** OpenAI's bias (-100 to 100, added to the logit); -100 bans the token outright, as OpenAI documents. */
function logitBias(bias: Record<string, number> | undefined, vocabSize: number): Map<number, number> | undefined {
  if (!bias) return undefined;
  const map = new Map<number, number>();
  for (const [key, value] of Object.entries(bias)) {
    const token = Number(key);
    if (token >= vocabSize) throw new RbeeError("BAD_REQUEST", `logit_bias: token ${token} is not in the model's vocabulary of ${vocabSize} tokens`);
    map.set(token, value <= -100 ? -Infinity : value);
  }
  return map;
}

/** What response_format asks the text to be, if anything. */
export function constraintOf(format: ResponseFormat | null | undefined): OutputConstraint | undefined {
  if (!format || format.type === "text") return undefined;
  if (format.type === "json_schema" && format.json_schema.schema) return { kind: "json_schema", schema: format.json_schema.schema };
  return { kind: "json" };
}

export function finishReason(result: GenerationResult): "stop" | "length" {
  return result.stopReason === "length" ? "length" : "stop";
}

/** The non-streamed response: one choice per result, usage summed over them (the prompt counted once). */
export function response(kind: ChoiceKind, head: { id: string; created: number; model: string }, results: GenerationResult[]) {
  const choices = results.map((result, index) =>
    kind === "chat.completion"
      ? { index, message: { role: "assistant", content: result.text }, finish_reason: finishReason(result), logprobs: null }
      : { index, text: result.text, finish_reason: finishReason(result), logprobs: null },
  );
  return { ...head, object: kind, choices, usage: usageOf(results) };
}

export function usageOf(results: GenerationResult[]) {
  const first = results[0]!;
  return usage({ promptTokens: first.promptTokens, cachedPromptTokens: first.cachedPromptTokens, tokensOut: results.reduce((sum, r) => sum + r.tokensOut, 0) });
}

/** Stream chunks: the opening (chat: the role), a piece of text, the closing one with the finish reason, the usage. */
export function chunks(kind: ChoiceKind, head: { id: string; created: number; model: string }) {
  const chat = kind === "chat.completion";
  const object = chat ? "chat.completion.chunk" : "text_completion";
  const chunk = (index: number, choice: Record<string, unknown>) => ({ ...head, object, choices: [{ index, logprobs: null, finish_reason: null, ...choice }] });
  return {
    opening: (index: number) => (chat ? chunk(index, { delta: { role: "assistant", content: "" } }) : undefined),
    text: (index: number, text: string) => chunk(index, chat ? { delta: { content: text } } : { text }),
    closing: (index: number, result: GenerationResult) => chunk(index, chat ? { delta: {}, finish_reason: finishReason(result) } : { text: "", finish_reason: finishReason(result) }),
    usage: (results: GenerationResult[]) => ({ ...head, object, choices: [], usage: usageOf(results) }),
  };
}

/** GET /v1/models: OpenAI's fields, and rbee's beside them (where the model is, its size and quantization, loaded). */
export function modelList(models: { ref: string; model: ModelJson | null; nodes: string[]; workers: number }[]) {
  return {
    object: "list",
    data: models.map(({ ref, model, nodes, workers }) => ({
      id: ref,
      object: "model",
      created: model ? Math.floor(Date.parse(model.downloaded_at) / 1000) : 0,
      owned_by: "rbee",
      name: model?.name ?? ref,
      nodes,
      size_bytes: model?.size_bytes ?? null,
      quantization: model?.quantization ?? null,
      architecture: model?.architecture ?? null,
      context_length: model?.context_length ?? null,
      loaded: workers > 0,
      workers,
    })),
  };
}
