// Turns request text into tokens: raw completions get BOS as the model wants; chats go through the model's chat template
// (node-llama-cpp's chat wrapper for it), tools and tool calls included.
import type { ChatHistoryItem, ChatModelFunctionCall, ChatWrapper, LlamaModel, Token } from "node-llama-cpp";
import { RbeeError } from "../errors";
import { loadNodeLlamaCpp } from "./runtime";
import { type CallSyntax, callSyntaxOf, parseArguments, prefillsCall, type ToolMode, type ToolSpec } from "./tool-calls";

export interface ToolCall {
  id: string;
  name: string;
  /** The arguments object as JSON text. */
  arguments: string;
}

/** One message of a conversation, as every dialect maps it. */
export type ChatMessage =
  | { role: "system" | "user"; content: string }
  | { role: "assistant"; content: string; toolCalls?: ToolCall[] }
  | { role: "tool"; toolCallId: string; content: string };

export interface ChatPrompt {
  tokens: Token[];
  /** The template's plain-text stop strings. */
  stop: string[];
  /** How this model writes a call, where tools were offered. */
  callSyntax: CallSyntax | null;
  /** The prompt ends with the call prefix: the model writes a call's name at once. */
  prefilled: boolean;
}

/** A raw prompt's tokens, BOS first where the model wants it; `parseSpecial` reads special tokens' text as them. */
export function completionTokens(model: LlamaModel, prompt: string, parseSpecial = false): Token[] {
  const tokens = model.tokenize(prompt, parseSpecial);
  const bos = model.tokens.bos;
  return model.tokens.shouldPrependBosToken && bos !== null ? [bos, ...tokens] : tokens;
}

/** Chat prompt tokens plus the template's plain-text stop strings; with tools, the template's tool section. */
export async function chatTokens(model: LlamaModel, messages: ChatMessage[], { tools = [], mode = { kind: "auto" } }: { tools?: ToolSpec[]; mode?: ToolMode } = {}): Promise<ChatPrompt> {
  const { LlamaText } = await loadNodeLlamaCpp();
  const wrapper = await chatWrapperOf(model);
  // With tool_choice none the tools are still described (as OpenAI does), but no call is read or allowed.
  const offered = tools.length > 0 && mode.kind !== "none";
  const callSyntax = offered ? callSyntaxOf(wrapper, (v) => LlamaText(v as never).toString()) : null;
  if (offered && !callSyntax) throw new RbeeError("BAD_REQUEST", "this model's chat template has no tool calls: tools cannot be used with it");
  if (mode.kind === "named" && !tools.some((t) => t.name === mode.name)) throw new RbeeError("BAD_REQUEST", `tool_choice names ${mode.name}, which is not among the tools`);
  const chatHistory = historyOf(messages);
  chatHistory.push({ type: "model", response: [] });
  const availableFunctions = tools.length ? Object.fromEntries(tools.map((t) => [t.name, { description: t.description, params: t.parameters as never }])) : undefined;
  const state = wrapper.generateContextState({ chatHistory, availableFunctions });
  const stop = state.stopGenerationTriggers
    .map((trigger) => trigger.values.filter((v): v is string => typeof v === "string").join(""))
    .filter((s) => s.length > 0 && s.trim().length > 0);
  const prefilled = offered && prefillsCall(mode);
  const text = prefilled ? LlamaText([state.contextText, LlamaText(wrapper.settings.functions!.call.prefix as never)]) : state.contextText;
  return { tokens: text.tokenize(model.tokenizer), stop, callSyntax, prefilled };
}

const wrappers = new WeakMap<LlamaModel, ChatWrapper>();

/**
 * The model's chat wrapper, resolved once: node-llama-cpp's resolveChatWrapper parses and probes the Jinja template
 * each time (250 ms for Qwen2.5's on this machine), which was most of a cached chat turn's time to first token.
 */
export async function chatWrapperOf(model: LlamaModel): Promise<ChatWrapper> {
  let wrapper = wrappers.get(model);
  if (!wrapper) {
    const { resolveChatWrapper, GeneralChatWrapper } = await loadNodeLlamaCpp();
    wrapper = resolveChatWrapper(model) ?? new GeneralChatWrapper();
    wrappers.set(model, wrapper);
  }
  return wrapper;
}

/** node-llama-cpp's history: an assistant turn holds its calls, each with the result of the tool message answering it. */
function historyOf(messages: ChatMessage[]): ChatHistoryItem[] {
  const results = new Map<string, string>();
  const callIds = new Set(messages.flatMap((m) => (m.role === "assistant" ? (m.toolCalls ?? []).map((c) => c.id) : [])));
  for (const m of messages)
    if (m.role === "tool") {
      if (!callIds.has(m.toolCallId)) throw new RbeeError("BAD_REQUEST", `a tool message answers ${m.toolCallId}, which no assistant message called`);
      results.set(m.toolCallId, m.content);
    }
  const history: ChatHistoryItem[] = [];
  for (const m of messages) {
    if (m.role === "tool") continue;
    if (m.role !== "assistant") {
      history.push({ type: m.role, text: m.content });
      continue;
    }
    const calls = (m.toolCalls ?? []).map(
      (c, i): ChatModelFunctionCall => ({ type: "functionCall", name: c.name, params: parseArguments(c.name, c.arguments), result: results.get(c.id) ?? "", startsNewChunk: i === 0 }),
    );
    history.push({ type: "model", response: [...(m.content ? [m.content] : []), ...calls] });
  }
  return history;
}
