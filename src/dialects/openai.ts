// The OpenAI dialect: its request fields as rbee's generation parameters, and rbee's results as its responses and
// stream chunks. Pure translation: the roles that serve the dialect (worker, queen) mount it.
import { RbeeError } from "../errors";
import type { SamplingParams } from "../inference/generation";
import type { TokenLogprob } from "../inference/addon";
import type { GenerationResult } from "../inference/engine";
import { type OutputConstraint, onlyOneConstraint } from "../inference/grammars";
import type { ChatMessage as CoreMessage, ToolCall } from "../inference/prompt";
import type { ToolEvent, ToolMode, ToolSpec } from "../inference/tool-calls";
import type { ModelJson } from "../wire/hive";
import type { ChatMessage, ChatRequest, CompletionRequest, EmbeddingsRequest, ResponseFormat } from "../wire/openai";
import { messageText, usage } from "../wire/openai";

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

/** How many alternatives per token the request wants reported, or undefined for no log probabilities. */
export function logprobsOf(body: OpenAiRequest): { top: number } | undefined {
  if ("messages" in body) {
    if (!body.logprobs) {
      if (body.top_logprobs) throw new RbeeError("BAD_REQUEST", "top_logprobs needs logprobs: true");
      return undefined;
    }
    return { top: body.top_logprobs ?? 0 };
  }
  return body.logprobs === null || body.logprobs === undefined ? undefined : { top: body.logprobs };
}

/** The text of a token, as the dialect reports it. */
export type PieceOf = (token: number) => string;

const bytesOf = (text: string) => [...Buffer.from(text, "utf8")];

/** Chat's logprobs: one entry per token, with its alternatives. */
export function chatLogprobs(records: TokenLogprob[], pieceOf: PieceOf) {
  return {
    content: records.map((r) => ({
      token: pieceOf(r.token),
      logprob: r.logprob,
      bytes: bytesOf(pieceOf(r.token)),
      top_logprobs: r.top.map((t) => ({ token: pieceOf(t.token), logprob: t.logprob, bytes: bytesOf(pieceOf(t.token)) })),
    })),
    refusal: null,
  };
}

/** The legacy completions' logprobs: parallel arrays, alternatives as objects, offsets into the text. */
export function completionLogprobs(records: TokenLogprob[], pieceOf: PieceOf, textOffset = 0) {
  const tokens = records.map((r) => pieceOf(r.token));
  const offsets: number[] = [];
  let at = textOffset;
  for (const t of tokens) {
    offsets.push(at);
    at += t.length;
  }
  return {
    tokens,
    token_logprobs: records.map((r) => r.logprob),
    top_logprobs: records.map((r) => Object.fromEntries(r.top.map((t) => [pieceOf(t.token), t.logprob]))),
    text_offset: offsets,
  };
}

/** What response_format asks the text to be, if anything. */
function formatConstraint(format: ResponseFormat | null | undefined): OutputConstraint | undefined {
  if (!format || format.type === "text") return undefined;
  if (format.type === "json_schema" && format.json_schema.schema) return { kind: "json_schema", schema: format.json_schema.schema };
  return { kind: "json" };
}

/** The request's constraint on its text: response_format, or llama-server's grammar (GBNF) or json_schema, one of them. */
export function constraintOf(body: Partial<Pick<OpenAiRequest, "response_format" | "grammar" | "json_schema">>): OutputConstraint | undefined {
  return onlyOneConstraint({
    response_format: formatConstraint(body.response_format),
    grammar: body.grammar ? { kind: "gbnf", grammar: body.grammar } : undefined,
    json_schema: body.json_schema && Object.keys(body.json_schema).length ? { kind: "json_schema", schema: body.json_schema } : undefined,
  });
}

/** The text an answer starts with: the prompt, where `echo` asks for it. `suffix` (fill-in-the-middle) is refused. */
export function echoOf(body: CompletionRequest, prompt: string): string {
  if (body.suffix) throw new RbeeError("BAD_REQUEST", "suffix (fill-in-the-middle) is not supported by rbee: send the text before the gap as the prompt");
  if (!body.echo) return "";
  if (body.logprobs !== undefined && body.logprobs !== null) throw new RbeeError("BAD_REQUEST", "echo with logprobs is not supported: the prompt's tokens have no log probabilities here");
  return prompt;
}

export function finishReason(result: GenerationResult, calls = 0): "stop" | "length" | "tool_calls" {
  return result.stopReason === "length" ? "length" : calls > 0 ? "tool_calls" : "stop";
}

/** OpenAI's messages as rbee's: developer is system; tool calls and the tool messages answering them by id. */
export function chatMessagesOf(messages: ChatMessage[]): CoreMessage[] {
  return messages.map((m): CoreMessage => {
    if (m.role === "tool") return { role: "tool", toolCallId: m.tool_call_id, content: messageText(m.content) };
    if (m.role === "assistant")
      return { role: "assistant", content: messageText(m.content), toolCalls: (m.tool_calls ?? []).map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments })) };
    return { role: m.role === "developer" ? "system" : m.role, content: messageText(m.content) };
  });
}

/** The request's tools, how the model may use them (tool_choice; default auto), and whether several calls may come. */
export function toolsOf(body: Pick<ChatRequest, "tools" | "tool_choice"> & Partial<Pick<ChatRequest, "parallel_tool_calls" | "response_format" | "grammar" | "json_schema">>): { tools: ToolSpec[]; mode: ToolMode; parallel: boolean } {
  const tools = (body.tools ?? []).map((t) => ({ name: t.function.name, description: t.function.description, parameters: t.function.parameters }));
  const choice = body.tool_choice ?? "auto";
  const asked: ToolMode = typeof choice === "object" ? { kind: "named", name: choice.function.name } : { kind: choice };
  if (!tools.length && (asked.kind === "required" || asked.kind === "named")) throw new RbeeError("BAD_REQUEST", "tool_choice asks for a tool call, but the request has no tools");
  const mode: ToolMode = tools.length ? asked : { kind: "none" };
  if (mode.kind !== "none" && constraintOf(body)) throw new RbeeError("BAD_REQUEST", "response_format (or grammar, json_schema) and tools cannot be combined in one request");
  return { tools, mode, parallel: body.parallel_tool_calls ?? true };
}

/** A fresh id for a call the model made. */
export function callId(): string {
  return `call_${crypto.randomUUID().replace(/-/g, "").slice(0, 24)}`;
}

/** One choice's assistant message: its text and, where it called tools, the calls. */
export function assistantMessage(content: string, calls: ToolCall[]) {
  return calls.length
    ? { role: "assistant", content: content || null, tool_calls: calls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } })) }
    : { role: "assistant", content };
}

/** The non-streamed response: one choice per result, usage summed over them (the prompt counted once). */
export function response(
  kind: ChoiceKind,
  head: { id: string; created: number; model: string },
  results: GenerationResult[],
  { replies, pieceOf }: { replies?: { content: string; calls: ToolCall[] }[]; pieceOf: PieceOf },
) {
  const choices = results.map((result, index) => {
    const reply = replies?.[index] ?? { content: result.text, calls: [] };
    return kind === "chat.completion"
      ? { index, message: assistantMessage(reply.content, reply.calls), finish_reason: finishReason(result, reply.calls.length), logprobs: result.logprobs ? chatLogprobs(result.logprobs, pieceOf) : null }
      : { index, text: reply.content, finish_reason: finishReason(result), logprobs: result.logprobs ? completionLogprobs(result.logprobs, pieceOf) : null };
  });
  return { ...head, object: kind, choices, usage: usageOf(results) };
}

export function usageOf(results: GenerationResult[]) {
  const first = results[0]!;
  return usage({ promptTokens: first.promptTokens, cachedPromptTokens: first.cachedPromptTokens, tokensOut: results.reduce((sum, r) => sum + r.tokensOut, 0) });
}

/** Stream chunks: the opening (chat: the role), a piece of text, the closing one with the finish reason, the usage. */
export function chunks(kind: ChoiceKind, head: { id: string; created: number; model: string }, pieceOf: PieceOf) {
  const chat = kind === "chat.completion";
  const offsets: number[] = [];
  const object = chat ? "chat.completion.chunk" : "text_completion";
  const chunk = (index: number, choice: Record<string, unknown>) => ({ ...head, object, choices: [{ index, logprobs: null, finish_reason: null, ...choice }] });
  return {
    opening: (index: number) => (chat ? chunk(index, { delta: { role: "assistant", content: "" } }) : undefined),
    text: (index: number, text: string, logprobs?: TokenLogprob[]) => {
      const at = offsets[index] ?? 0;
      offsets[index] = at + text.length;
      const lp = logprobs ? (chat ? chatLogprobs(logprobs, pieceOf) : completionLogprobs(logprobs, pieceOf, at)) : null;
      return chunk(index, chat ? { delta: { content: text }, logprobs: lp } : { text, logprobs: lp });
    },
    /** A tool event as OpenAI streams calls: the call's index, id and name first, then its arguments in pieces. */
    tool: (index: number, event: ToolEvent, id: string) =>
      event.kind === "text"
        ? chunk(index, { delta: { content: event.text } })
        : event.kind === "call"
          ? chunk(index, { delta: { tool_calls: [{ index: event.index, id, type: "function", function: { name: event.name, arguments: "" } }] } })
          : chunk(index, { delta: { tool_calls: [{ index: event.index, function: { arguments: event.text } }] } }),
    closing: (index: number, result: GenerationResult, calls = 0) =>
      chunk(index, chat ? { delta: {}, finish_reason: finishReason(result, calls) } : { text: "", finish_reason: finishReason(result) }),
    usage: (results: GenerationResult[]) => ({ ...head, object, choices: [], usage: usageOf(results) }),
  };
}

/** GET /v1/models: OpenAI's fields, and rbee's beside them (where the model is, its size and quantization, loaded). */
export function modelList(models: { ref: string; model: ModelJson | null; nodes: string[]; workers: number; aliasOf?: string }[]) {
  return {
    object: "list",
    data: models.map(({ ref, model, nodes, workers, aliasOf }) => ({
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
      /** For a name: the reference it points at. */
      alias_of: aliasOf ?? null,
    })),
  };
}

/** OpenAI's `dimensions` shortens vectors of models trained for it; rbee serves the model's own size only. */
export function checkDimensions(body: EmbeddingsRequest, size: number): void {
  if (body.dimensions !== undefined && body.dimensions !== size)
    throw new RbeeError("BAD_REQUEST", `dimensions: this model's embeddings have ${size} dimensions; it cannot give ${body.dimensions}`);
}

/** The inputs of an embeddings request as token arrays: text through the tokenizer, token arrays as they are. */
export function embeddingInputs(body: EmbeddingsRequest, tokenize: (text: string) => number[], vocabSize: number): number[][] {
  const input = body.input;
  const inputs: (string | number[])[] = typeof input === "string" ? [input] : typeof input[0] === "number" ? [input as number[]] : (input as (string | number[])[]);
  return inputs.map((x, i) => {
    if (typeof x === "string") return tokenize(x);
    const bad = x.find((t) => t >= vocabSize);
    if (bad !== undefined) throw new RbeeError("BAD_REQUEST", `input ${i}: token ${bad} is not in the model's vocabulary of ${vocabSize} tokens`);
    return x;
  });
}

/** OpenAI's embeddings response; base64 is the float32 vector's little-endian bytes, as OpenAI encodes it. */
export function embeddingsResponse(body: EmbeddingsRequest, model: string, vectors: Float32Array[], promptTokens: number) {
  return {
    object: "list",
    model,
    data: vectors.map((v, index) => ({
      object: "embedding",
      index,
      embedding: body.encoding_format === "base64" ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") : Array.from(v),
    })),
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  };
}
