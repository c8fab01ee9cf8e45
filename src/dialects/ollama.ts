// The Ollama dialect: its chat, generate and embed requests as the OpenAI requests rbee's workers serve, OpenAI's
// answers (whole or streamed) as Ollama's NDJSON records with its counters and durations, and rbee's models as its
// /api/tags and /api/show entries. Pure translation.
import { RbeeError } from "../errors";
import { noVisionMessage } from "../wire/request";
import type { OllamaChatRequest, OllamaGenerateRequest, OllamaMessage } from "../wire/ollama";
import type { ModelJson } from "../wire/hive";

const NS_PER_MS = 1e6;

function samplingOf(options: OllamaChatRequest["options"]) {
  const o = options ?? {};
  return {
    ...(o.num_predict !== undefined && o.num_predict > 0 && { max_tokens: o.num_predict }),
    ...(o.temperature !== undefined && { temperature: o.temperature }),
    ...(o.top_k !== undefined && { top_k: o.top_k }),
    ...(o.top_p !== undefined && { top_p: o.top_p }),
    ...(o.min_p !== undefined && { min_p: o.min_p }),
    ...(o.repeat_penalty !== undefined && { repeat_penalty: o.repeat_penalty }),
    ...(o.presence_penalty !== undefined && { presence_penalty: o.presence_penalty }),
    ...(o.frequency_penalty !== undefined && { frequency_penalty: o.frequency_penalty }),
    ...(o.seed !== undefined && o.seed >= 0 && { seed: o.seed }),
    ...(o.stop?.length && { stop: o.stop }),
    ...(o.num_ctx !== undefined && { context_tokens: o.num_ctx }),
  };
}

function formatOf(format: OllamaChatRequest["format"]) {
  if (format === undefined || format === "") return {};
  if (format === "json") return { response_format: { type: "json_object" } };
  return { response_format: { type: "json_schema", json_schema: { name: "format", schema: format } } };
}

function refuseImages(images: string[] | undefined): void {
  if (images?.length) throw new RbeeError("BAD_REQUEST", noVisionMessage(`images (${images.length})`));
}

/** Ollama's messages as OpenAI's: calls get ids, and each tool message answers the oldest call not yet answered. */
export function messagesOf(messages: OllamaMessage[]): unknown[] {
  const unanswered: { id: string; name: string }[] = [];
  return messages.map((m, i) => {
    refuseImages(m.images);
    if (m.role === "assistant" && m.tool_calls?.length) {
      const calls = m.tool_calls.map((c, j) => ({ id: `call_${i}_${j}`, type: "function", function: { name: c.function.name, arguments: JSON.stringify(c.function.arguments) } }));
      unanswered.push(...calls.map((c) => ({ id: c.id, name: c.function.name })));
      return { role: "assistant", content: m.content || null, tool_calls: calls };
    }
    if (m.role === "tool") {
      const at = m.tool_name ? unanswered.findIndex((c) => c.name === m.tool_name) : 0;
      const call = unanswered.splice(Math.max(0, at), 1)[0];
      if (!call) throw new RbeeError("BAD_REQUEST", `message ${i} is a tool result, but no earlier assistant message called a tool`);
      return { role: "tool", tool_call_id: call.id, content: m.content };
    }
    return { role: m.role, content: m.content };
  });
}

/** /api/chat as an OpenAI chat request (streamed from the worker either way, for the counters). */
export function chatRequest(body: OllamaChatRequest): Record<string, unknown> {
  if (!body.messages.length) throw new RbeeError("BAD_REQUEST", "messages: must hold at least one message");
  return {
    model: body.model,
    messages: messagesOf(body.messages),
    ...(body.tools?.length && { tools: body.tools }),
    ...(body.tool_choice !== undefined && { tool_choice: body.tool_choice }),
    ...samplingOf(body.options),
    ...formatOf(body.format),
    stream: true,
    stream_options: { include_usage: true },
  };
}

/**
 * /api/generate: through the chat template (with `system`), or raw as a plain completion; a `template` of Ollama's
 * Go syntax is applied for its {{ .System }}, {{ .Prompt }} and {{ .Response }} and sent raw.
 */
export function generateRequest(body: OllamaGenerateRequest): { path: string; body: Record<string, unknown> } {
  refuseImages(body.images);
  if (body.suffix) throw new RbeeError("BAD_REQUEST", "suffix (fill-in-the-middle) is not supported");
  const common = { model: body.model, ...samplingOf(body.options), ...formatOf(body.format), stream: true, stream_options: { include_usage: true } };
  if (body.template !== undefined) {
    const prompt = body.template
      .replace(/{{-?\s*\.System\s*-?}}/g, body.system ?? "")
      .replace(/{{-?\s*\.Prompt\s*-?}}/g, body.prompt)
      .replace(/{{-?\s*\.Response\s*-?}}/g, "");
    if (/{{/.test(prompt)) throw new RbeeError("BAD_REQUEST", "template: only {{ .System }}, {{ .Prompt }} and {{ .Response }} are supported");
    return { path: "/v1/completions", body: { ...common, prompt, ...rawLength(common) } };
  }
  if (body.raw) return { path: "/v1/completions", body: { ...common, prompt: body.prompt, ...rawLength(common) } };
  const messages = [...(body.system ? [{ role: "system", content: body.system }] : []), { role: "user", content: body.prompt }];
  return { path: "/v1/chat/completions", body: { ...common, messages } };
}

/** Ollama generates until the end of the text or the context; a completion without num_ctx stops at this many. */
const RAW_MAX_TOKENS = 512;

function rawLength(common: { max_tokens?: number; context_tokens?: number }) {
  return common.max_tokens || common.context_tokens ? {} : { max_tokens: RAW_MAX_TOKENS };
}

export interface Timings {
  startedAt: number;
  firstTokenAt?: number;
  endedAt: number;
}

/** Ollama's closing counters and durations (nanoseconds). */
export function counters(usage: { prompt_tokens: number; completion_tokens: number } | undefined, t: Timings) {
  const first = t.firstTokenAt ?? t.endedAt;
  return {
    total_duration: Math.round((t.endedAt - t.startedAt) * NS_PER_MS),
    load_duration: 0,
    prompt_eval_count: usage?.prompt_tokens ?? 0,
    prompt_eval_duration: Math.round((first - t.startedAt) * NS_PER_MS),
    eval_count: usage?.completion_tokens ?? 0,
    eval_duration: Math.round((t.endedAt - first) * NS_PER_MS),
  };
}

type OpenAiChunk = {
  choices?: { delta?: { content?: string | null; tool_calls?: { index: number; function?: { name?: string; arguments?: string } }[] }; text?: string; finish_reason?: string | null }[];
  usage?: { prompt_tokens: number; completion_tokens: number };
  error?: { message: string };
};

/**
 * Turns the worker's OpenAI stream into Ollama records: a record per piece of text, the calls (with their arguments
 * as objects) once complete, and the closing record with done_reason and the counters.
 */
export class OllamaStream {
  private readonly calls: { name: string; arguments: string }[] = [];
  private finish: string | null = null;
  private usage: OpenAiChunk["usage"];
  private readonly timings: Timings = { startedAt: performance.now(), endedAt: 0 };
  private content = "";

  constructor(
    private readonly model: string,
    private readonly kind: "chat" | "generate",
  ) {}

  /** The Ollama records for one OpenAI chunk. */
  push(chunk: OpenAiChunk): unknown[] {
    if (chunk.error) throw new RbeeError("WORKER_FAILED", chunk.error.message);
    if (chunk.usage) this.usage = chunk.usage;
    const out: unknown[] = [];
    for (const choice of chunk.choices ?? []) {
      const text = choice.delta?.content ?? choice.text ?? "";
      if (text) {
        this.timings.firstTokenAt ??= performance.now();
        this.content += text;
        out.push(this.record(text));
      }
      for (const call of choice.delta?.tool_calls ?? []) {
        this.timings.firstTokenAt ??= performance.now();
        const known = (this.calls[call.index] ??= { name: "", arguments: "" });
        known.name += call.function?.name ?? "";
        known.arguments += call.function?.arguments ?? "";
      }
      if (choice.finish_reason) this.finish = choice.finish_reason;
    }
    return out;
  }

  /** The closing record (preceded, in chat, by one carrying the calls); `whole`: the non-streamed answer in one. */
  end(whole: boolean): unknown[] {
    this.timings.endedAt = performance.now();
    const toolCalls = this.calls.map((c) => ({ function: { name: c.name, arguments: parseArguments(c.arguments) } }));
    const closing = {
      ...this.record(whole ? this.content : "", toolCalls),
      done: true,
      done_reason: this.finish === "length" ? "length" : "stop",
      ...counters(this.usage, this.timings),
    };
    return [closing];
  }

  private record(text: string, toolCalls: unknown[] = []) {
    const head = { model: this.model, created_at: new Date().toISOString() };
    if (this.kind === "generate") return { ...head, response: text, done: false };
    return { ...head, message: { role: "assistant", content: text, ...(toolCalls.length && { tool_calls: toolCalls }) }, done: false };
  }
}

function parseArguments(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}

function details(m: ModelJson) {
  return {
    parent_model: "",
    format: "gguf",
    family: m.architecture ?? "",
    families: m.architecture ? [m.architecture] : null,
    parameter_size: m.parameter_count ? parameterSize(m.parameter_count) : "",
    quantization_level: m.quantization ?? "",
  };
}

/** A model as /api/tags and /api/ps list it. */
export function tagEntry(name: string, m: ModelJson) {
  return { name, model: name, modified_at: m.downloaded_at, size: m.size_bytes, digest: m.sha256, details: details(m) };
}

/** A model as /api/show describes it. */
export function showEntry(m: ModelJson) {
  const arch = m.architecture ?? "llama";
  const shape = m.shape;
  return {
    modelfile: "",
    parameters: "",
    template: m.chat_template ?? "",
    details: details(m),
    model_info: {
      "general.architecture": arch,
      "general.parameter_count": m.parameter_count,
      "general.file_type": m.quantization,
      [`${arch}.context_length`]: m.context_length,
      ...(shape && {
        [`${arch}.embedding_length`]: shape.embedding,
        [`${arch}.block_count`]: shape.layers,
        [`${arch}.feed_forward_length`]: shape.feedForward,
        [`${arch}.attention.head_count`]: shape.heads,
        [`${arch}.vocab_size`]: shape.vocab,
      }),
    },
    capabilities: ["completion", "embedding", ...(m.chat_template?.includes("tool") ? ["tools"] : [])],
    modified_at: m.downloaded_at,
  };
}

function parameterSize(count: number): string {
  const units: [number, string][] = [[1e9, "B"], [1e6, "M"], [1e3, "K"]];
  for (const [n, unit] of units) if (count >= n) return `${(count / n).toFixed(count >= 10 * n ? 0 : 1)}${unit}`;
  return String(count);
}

/** /api/embed's answer from an OpenAI embeddings response. */
export function embedResponse(model: string, res: Record<string, unknown>, startedAt: number) {
  const data = res.data as { embedding: number[] }[];
  const usage = res.usage as { prompt_tokens: number };
  return { model, embeddings: data.map((d) => d.embedding), total_duration: Math.round((performance.now() - startedAt) * 1e6), load_duration: 0, prompt_eval_count: usage.prompt_tokens };
}

/** The older /api/embeddings' answer: one vector. */
export function legacyEmbeddingResponse(res: Record<string, unknown>) {
  return { embedding: (res.data as { embedding: number[] }[])[0]!.embedding };
}

/** The record an empty prompt gets: the model loaded (or, with keep_alive 0, unloaded). */
export function loadRecord(model: string, kind: "chat" | "generate", unload: boolean) {
  const head = { model, created_at: new Date().toISOString(), done: true, done_reason: unload ? "unload" : "load" };
  return kind === "chat" ? { ...head, message: { role: "assistant", content: "" } } : { ...head, response: "" };
}
