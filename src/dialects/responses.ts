// OpenAI's Responses API: a request (its input items after the stored conversation it continues) as the OpenAI chat
// request rbee's workers serve, and the worker's chat stream as the Responses API's events and response object. Pure
// translation: the queen's routes store responses (roles/queen/response-store.ts) and relay.
import { RbeeError } from "../errors";
import type { ResponsesRequest } from "../wire/responses";

/** An item of a conversation as stored and listed: what the client sent and what the model answered. */
export type ConversationItem =
  | { type: "message"; id: string; role: "user" | "assistant" | "system" | "developer"; content: string }
  | { type: "function_call"; id: string; call_id: string; name: string; arguments: string }
  | { type: "function_call_output"; id: string; call_id: string; output: string };

const newId = (prefix: string) => `${prefix}_${crypto.randomUUID().replace(/-/g, "")}`;

/** The request's input as conversation items, each with an id. */
export function inputItemsOf(input: ResponsesRequest["input"]): ConversationItem[] {
  if (typeof input === "string") return [{ type: "message", id: newId("msg"), role: "user", content: input }];
  return input.map((item): ConversationItem => {
    if (item.type === "function_call") return { type: "function_call", id: item.id ?? newId("fc"), call_id: item.call_id, name: item.name, arguments: item.arguments };
    if (item.type === "function_call_output") return { type: "function_call_output", id: item.id ?? newId("fco"), call_id: item.call_id, output: item.output };
    return { type: "message", id: item.id ?? newId("msg"), role: item.role, content: typeof item.content === "string" ? item.content : item.content.join("") };
  });
}

/** Items as OpenAI chat messages: a model's calls join its turn (one assistant message), outputs become tool messages. */
function chatMessagesOf(items: ConversationItem[]): Record<string, unknown>[] {
  const messages: Record<string, unknown>[] = [];
  for (const item of items) {
    if (item.type === "message") messages.push({ role: item.role, content: item.content });
    else if (item.type === "function_call_output") messages.push({ role: "tool", tool_call_id: item.call_id, content: item.output });
    else {
      const call = { id: item.call_id, type: "function", function: { name: item.name, arguments: item.arguments } };
      const last = messages.at(-1);
      if (last?.role === "assistant") last.tool_calls = [...((last.tool_calls as unknown[] | undefined) ?? []), call];
      else messages.push({ role: "assistant", content: null, tool_calls: [call] });
    }
  }
  return messages;
}

/** The chat request for the conversation so far plus this request's items (streamed from the worker either way). */
export function chatRequest(body: ResponsesRequest, history: ConversationItem[], items: ConversationItem[]): Record<string, unknown> {
  const format = body.text?.format;
  const choice = body.tool_choice;
  return {
    model: body.model,
    messages: [...(body.instructions ? [{ role: "system", content: body.instructions }] : []), ...chatMessagesOf([...history, ...items])],
    ...(body.max_output_tokens !== undefined && { max_tokens: body.max_output_tokens }),
    ...(body.temperature !== undefined && { temperature: body.temperature }),
    ...(body.top_p !== undefined && { top_p: body.top_p }),
    ...(body.tools?.length && { tools: body.tools.map((t) => ({ type: "function", function: { name: t.name, description: t.description ?? undefined, parameters: t.parameters ?? undefined } })) }),
    ...(choice && { tool_choice: typeof choice === "string" ? choice : { type: "function", function: { name: choice.name } } }),
    ...(body.parallel_tool_calls !== undefined && { parallel_tool_calls: body.parallel_tool_calls }),
    ...(format && format.type !== "text" && { response_format: format.type === "json_object" ? format : { type: "json_schema", json_schema: { name: format.name, schema: format.schema, strict: format.strict } } }),
    stream: true,
    stream_options: { include_usage: true },
  };
}

type OpenAiChunk = {
  choices?: { delta?: { content?: string | null; tool_calls?: { index: number; id?: string; function?: { name?: string; arguments?: string } }[] }; finish_reason?: string | null }[];
  usage?: { prompt_tokens: number; completion_tokens: number; prompt_tokens_details?: { cached_tokens: number } };
  error?: { message: string };
};

export type ResponsesEvent = { type: string; sequence_number: number } & Record<string, unknown>;

type OutputItem =
  | { type: "message"; id: string; status: string; role: "assistant"; content: { type: "output_text"; text: string; annotations: []; logprobs: [] }[] }
  | { type: "function_call"; id: string; status: string; call_id: string; name: string; arguments: string };

/**
 * Turns the worker's chat stream into the Responses API's events (response.created, output items with their text or
 * arguments deltas and done events, response.completed or response.incomplete); `response()` is the same as one
 * object, and `items()` what the conversation gained, for the store.
 */
export class ResponsesStream {
  readonly id = newId("resp");
  private readonly createdAt = Math.floor(Date.now() / 1000);
  private readonly output: OutputItem[] = [];
  /** The open item's index in output, and which chat call it is (null: text). */
  private open: { index: number; call: number | null } | null = null;
  private finish: string | null = null;
  private usage: OpenAiChunk["usage"];
  private sequence = 0;

  constructor(private readonly body: ResponsesRequest) {}

  start(): ResponsesEvent[] {
    const response = this.response("in_progress");
    return [this.event("response.created", { response }), this.event("response.in_progress", { response })];
  }

  push(chunk: OpenAiChunk): ResponsesEvent[] {
    if (chunk.error) throw new RbeeError("WORKER_FAILED", chunk.error.message);
    if (chunk.usage) this.usage = chunk.usage;
    const out: ResponsesEvent[] = [];
    for (const choice of chunk.choices ?? []) {
      const piece = choice.delta?.content;
      if (piece) {
        if (!this.open || this.open.call !== null) this.openItem(out, { type: "message", id: newId("msg"), status: "in_progress", role: "assistant", content: [] }, null);
        const item = this.output[this.open!.index] as Extract<OutputItem, { type: "message" }>;
        item.content[0]!.text += piece;
        out.push(this.event("response.output_text.delta", { item_id: item.id, output_index: this.open!.index, content_index: 0, delta: piece, logprobs: [] }));
      }
      for (const call of choice.delta?.tool_calls ?? []) {
        if (call.id) this.openItem(out, { type: "function_call", id: newId("fc"), status: "in_progress", call_id: call.id, name: call.function?.name ?? "", arguments: "" }, call.index);
        const args = call.function?.arguments;
        if (args && this.open?.call === call.index) {
          const item = this.output[this.open.index] as Extract<OutputItem, { type: "function_call" }>;
          item.arguments += args;
          out.push(this.event("response.function_call_arguments.delta", { item_id: item.id, output_index: this.open.index, delta: args }));
        }
      }
      if (choice.finish_reason) this.finish = choice.finish_reason;
    }
    return out;
  }

  end(): ResponsesEvent[] {
    const out: ResponsesEvent[] = [];
    this.closeItem(out);
    const response = this.response();
    out.push(this.event(response.status === "completed" ? "response.completed" : "response.incomplete", { response }));
    return out;
  }

  /** The stream's last event where it fails (the worker lost, a refusal after the first chunk). */
  failure(error: { code: string; message: string; param: string | null }): ResponsesEvent {
    return this.event("error", { ...error });
  }

  /** The response object (as created, as it ended). */
  response(status = this.finish === "length" ? "incomplete" : "completed") {
    const b = this.body;
    const format = b.text?.format ?? { type: "text" };
    return {
      id: this.id,
      object: "response",
      created_at: this.createdAt,
      status,
      background: false,
      error: null,
      incomplete_details: status === "incomplete" ? { reason: "max_output_tokens" } : null,
      instructions: b.instructions ?? null,
      max_output_tokens: b.max_output_tokens ?? null,
      metadata: b.metadata ?? {},
      model: b.model,
      output: status === "in_progress" ? [] : structuredClone(this.output),
      parallel_tool_calls: b.parallel_tool_calls ?? true,
      previous_response_id: b.previous_response_id ?? null,
      reasoning: { effort: null, summary: null },
      store: b.store,
      temperature: b.temperature ?? null,
      text: { format },
      tool_choice: b.tool_choice ?? "auto",
      tools: b.tools ?? [],
      top_p: b.top_p ?? null,
      truncation: "disabled",
      usage: status === "in_progress" ? null : this.usageJson(),
      user: b.user ?? null,
    };
  }

  /** What the model answered, as conversation items. */
  items(): ConversationItem[] {
    return this.output.map((item): ConversationItem =>
      item.type === "message"
        ? { type: "message", id: item.id, role: "assistant", content: item.content.map((c) => c.text).join("") }
        : { type: "function_call", id: item.id, call_id: item.call_id, name: item.name, arguments: item.arguments },
    );
  }

  private usageJson() {
    const input = this.usage?.prompt_tokens ?? 0;
    const output = this.usage?.completion_tokens ?? 0;
    return {
      input_tokens: input,
      input_tokens_details: { cached_tokens: this.usage?.prompt_tokens_details?.cached_tokens ?? 0 },
      output_tokens: output,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: input + output,
    };
  }

  private event(type: string, fields: Record<string, unknown>): ResponsesEvent {
    return { type, sequence_number: this.sequence++, ...fields };
  }

  private openItem(out: ResponsesEvent[], item: OutputItem, call: number | null): void {
    this.closeItem(out);
    this.output.push(item);
    const index = this.output.length - 1;
    this.open = { index, call };
    out.push(this.event("response.output_item.added", { output_index: index, item: structuredClone(item) }));
    if (item.type === "message") {
      const part = { type: "output_text" as const, text: "", annotations: [] as [], logprobs: [] as [] };
      item.content.push(part);
      out.push(this.event("response.content_part.added", { item_id: item.id, output_index: index, content_index: 0, part: structuredClone(part) }));
    }
  }

  private closeItem(out: ResponsesEvent[]): void {
    if (!this.open) return;
    const index = this.open.index;
    const item = this.output[index]!;
    item.status = this.finish === "length" ? "incomplete" : "completed";
    if (item.type === "message") {
      const part = item.content[0]!;
      out.push(this.event("response.output_text.done", { item_id: item.id, output_index: index, content_index: 0, text: part.text, logprobs: [] }));
      out.push(this.event("response.content_part.done", { item_id: item.id, output_index: index, content_index: 0, part: structuredClone(part) }));
    } else out.push(this.event("response.function_call_arguments.done", { item_id: item.id, output_index: index, name: item.name, arguments: item.arguments }));
    out.push(this.event("response.output_item.done", { output_index: index, item: structuredClone(item) }));
    this.open = null;
  }
}
