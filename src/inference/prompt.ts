// Turns request text into tokens: raw completions get BOS as the model wants; chats go through the model's chat template.
import type { ChatHistoryItem, LlamaModel, Token } from "node-llama-cpp";
import { loadNodeLlamaCpp } from "./runtime";

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

export function completionTokens(model: LlamaModel, prompt: string): Token[] {
  const tokens = model.tokenize(prompt, false);
  const bos = model.tokens.bos;
  return model.tokens.shouldPrependBosToken && bos !== null ? [bos, ...tokens] : tokens;
}

/** Chat prompt tokens plus the template's plain-text stop strings. */
export async function chatTokens(model: LlamaModel, messages: ChatMessage[]): Promise<{ tokens: Token[]; stop: string[] }> {
  const { resolveChatWrapper, GeneralChatWrapper } = await loadNodeLlamaCpp();
  const wrapper = resolveChatWrapper(model) ?? new GeneralChatWrapper();
  const chatHistory: ChatHistoryItem[] = messages.map((m) =>
    m.role === "assistant" ? { type: "model", response: [m.content] } : { type: m.role, text: m.content },
  );
  chatHistory.push({ type: "model", response: [] });
  const state = wrapper.generateContextState({ chatHistory });
  const stop = state.stopGenerationTriggers
    .map((trigger) => trigger.values.filter((v): v is string => typeof v === "string").join(""))
    .filter((s) => s.length > 0 && s.trim().length > 0);
  return { tokens: state.contextText.tokenize(model.tokenizer), stop };
}
