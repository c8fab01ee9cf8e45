// The Anthropic dialect: a Messages request as the OpenAI chat request rbee's workers serve (system, turns, tool_use
// and tool_result blocks, tool_choice), and OpenAI's answers as Anthropic's message or its stream of events. Pure
// translation (Anthropic's error shape is wire/errors.ts's).
import { RbeeError } from "../errors";
import { noVisionMessage } from "../wire/request";
import type { AnthropicMessage, ContentBlock, CountTokensRequest, MessagesRequest } from "../wire/anthropic";

function text(content: string | { type: "text"; text: string }[]): string {
  return typeof content === "string" ? content : content.map((b) => b.text).join("");
}

function refuse(block: ContentBlock): never {
  if (block.type === "image" || block.type === "document") throw new RbeeError("BAD_REQUEST", noVisionMessage(`an ${block.type} block`));
  throw new RbeeError("BAD_REQUEST", `content blocks of type ${block.type} are not supported (this model takes text only)`);
}

/** One Anthropic turn as OpenAI messages: a user turn's tool results become tool messages, ahead of its text. */
function messagesOf(m: AnthropicMessage): unknown[] {
  if (typeof m.content === "string") return [{ role: m.role, content: m.content }];
  const texts: string[] = [];
  const out: unknown[] = [];
  const calls: unknown[] = [];
  for (const block of m.content) {
    if (block.type === "text") texts.push(block.text);
    else if (block.type === "tool_use" && m.role === "assistant") calls.push({ id: block.id, type: "function", function: { name: block.name, arguments: JSON.stringify(block.input) } });
    else if (block.type === "tool_result" && m.role === "user") out.push({ role: "tool", tool_call_id: block.tool_use_id, content: (block.is_error ? "Error: " : "") + text(block.content) });
    else if (block.type === "tool_use" || block.type === "tool_result") throw new RbeeError("BAD_REQUEST", `${block.type} blocks belong in ${block.type === "tool_use" ? "assistant" : "user"} messages`);
    else refuse(block);
  }
  if (m.role === "assistant") return [{ role: "assistant", content: texts.join("") || null, ...(calls.length && { tool_calls: calls }) }];
  if (texts.length) out.push({ role: "user", content: texts.join("") });
  return out;
}

function toolsOf(body: Pick<MessagesRequest, "tools" | "tool_choice">) {
  if (!body.tools?.length) return {};
  const choice = body.tool_choice;
  const tool_choice =
    !choice || choice.type === "auto" ? "auto" : choice.type === "any" ? "required" : choice.type === "none" ? "none" : { type: "function", function: { name: choice.name } };
  return {
    tools: body.tools.map((t) => ({ type: "function", function: { name: t.name, description: t.description, parameters: t.input_schema } })),
    tool_choice,
    ...(choice && "disable_parallel_tool_use" in choice && choice.disable_parallel_tool_use && { parallel_tool_calls: false }),
  };
}

/** The chat messages of a Messages request (for generation and for counting tokens). */
export function chatMessages(body: Pick<CountTokensRequest, "system" | "messages">): unknown[] {
  const system = body.system === undefined ? [] : [{ role: "system", content: text(body.system) }];
  return [...system, ...body.messages.flatMap(messagesOf)];
}

/** /v1/messages as an OpenAI chat request (streamed from the worker either way). */
export function chatRequest(body: MessagesRequest): Record<string, unknown> {
  return {
    model: body.model,
    messages: chatMessages(body),
    max_tokens: body.max_tokens,
    ...(body.temperature !== undefined && { temperature: body.temperature }),
    ...(body.top_p !== undefined && { top_p: body.top_p }),
    ...(body.top_k !== undefined && { top_k: body.top_k }),
    ...(body.stop_sequences?.length && { stop: body.stop_sequences }),
    ...toolsOf(body),
    stream: true,
    stream_options: { include_usage: true },
  };
}

/** The count_tokens request as a chat request the worker can render and count. */
export function countRequest(body: CountTokensRequest): Record<string, unknown> {
  return { model: body.model, messages: chatMessages(body), ...toolsOf(body) };
}

type OpenAiChunk = {
  choices?: { delta?: { content?: string | null; tool_calls?: { index: number; id?: string; function?: { name?: string; arguments?: string } }[] }; finish_reason?: string | null }[];
  usage?: { prompt_tokens: number; completion_tokens: number; prompt_tokens_details?: { cached_tokens: number } };
  error?: { message: string };
};

type Event = { event: string; data: Record<string, unknown> };

/**
 * Turns the worker's OpenAI stream into Anthropic's events: message_start; per block content_block_start, deltas
 * (text_delta, input_json_delta), content_block_stop; then message_delta with the stop reason and usage, message_stop.
 * `message()` gives the same as one non-streamed message.
 */
export class AnthropicStream {
  private readonly id = `msg_${crypto.randomUUID().replace(/-/g, "").slice(0, 24)}`;
  private readonly blocks: ({ type: "text"; text: string } | { type: "tool_use"; id: string; name: string; json: string })[] = [];
  /** The open block's index, and which OpenAI call it is (null: text). */
  private open: { index: number; call: number | null } | null = null;
  private finish: string | null = null;
  private usage: OpenAiChunk["usage"];

  constructor(private readonly model: string) {}

  start(): Event {
    return { event: "message_start", data: { type: "message_start", message: { id: this.id, type: "message", role: "assistant", model: this.model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 0, output_tokens: 0 } } } };
  }

  push(chunk: OpenAiChunk): Event[] {
    if (chunk.error) throw new RbeeError("WORKER_FAILED", chunk.error.message);
    if (chunk.usage) this.usage = chunk.usage;
    const out: Event[] = [];
    for (const choice of chunk.choices ?? []) {
      const piece = choice.delta?.content;
      if (piece) {
        if (!this.open || this.open.call !== null) this.openBlock(out, { type: "text", text: "" }, null);
        (this.blocks[this.open!.index] as { text: string }).text += piece;
        out.push({ event: "content_block_delta", data: { type: "content_block_delta", index: this.open!.index, delta: { type: "text_delta", text: piece } } });
      }
      for (const call of choice.delta?.tool_calls ?? []) {
        if (call.id) this.openBlock(out, { type: "tool_use", id: call.id.replace(/^call_/, "toolu_"), name: call.function?.name ?? "", json: "" }, call.index);
        const args = call.function?.arguments;
        if (args && this.open?.call === call.index) {
          (this.blocks[this.open.index] as { json: string }).json += args;
          out.push({ event: "content_block_delta", data: { type: "content_block_delta", index: this.open.index, delta: { type: "input_json_delta", partial_json: args } } });
        }
      }
      if (choice.finish_reason) this.finish = choice.finish_reason;
    }
    return out;
  }

  end(): Event[] {
    const out: Event[] = [];
    this.closeBlock(out);
    out.push({ event: "message_delta", data: { type: "message_delta", delta: { stop_reason: this.stopReason(), stop_sequence: null }, usage: this.usageJson() } });
    out.push({ event: "message_stop", data: { type: "message_stop" } });
    return out;
  }

  /** The whole message, for a request that did not stream. */
  message() {
    return {
      id: this.id,
      type: "message",
      role: "assistant",
      model: this.model,
      content: this.blocks.map((b) => (b.type === "text" ? b : { type: "tool_use", id: b.id, name: b.name, input: parseInput(b.json) })),
      stop_reason: this.stopReason(),
      stop_sequence: null,
      usage: this.usageJson(),
    };
  }

  private usageJson() {
    return { input_tokens: this.usage?.prompt_tokens ?? 0, output_tokens: this.usage?.completion_tokens ?? 0, cache_read_input_tokens: this.usage?.prompt_tokens_details?.cached_tokens ?? 0 };
  }

  private stopReason(): string {
    return this.finish === "tool_calls" ? "tool_use" : this.finish === "length" ? "max_tokens" : "end_turn";
  }

  private openBlock(out: Event[], block: (typeof this.blocks)[number], call: number | null): void {
    this.closeBlock(out);
    this.blocks.push(block);
    this.open = { index: this.blocks.length - 1, call };
    const shown = block.type === "text" ? { type: "text", text: "" } : { type: "tool_use", id: block.id, name: block.name, input: {} };
    out.push({ event: "content_block_start", data: { type: "content_block_start", index: this.open.index, content_block: shown } });
  }

  private closeBlock(out: Event[]): void {
    if (!this.open) return;
    out.push({ event: "content_block_stop", data: { type: "content_block_stop", index: this.open.index } });
    this.open = null;
  }
}

function parseInput(json: string): unknown {
  try {
    return JSON.parse(json || "{}");
  } catch {
    return {};
  }
}
