// OpenAI-compatible request bodies (unknown fields are ignored, as OpenAI clients send many) and response builders.
import { z } from "zod";

const common = {
  model: z.string().optional(),
  temperature: z.number().min(0).max(2).default(0.8),
  top_p: z.number().gt(0).max(1).default(0.95),
  seed: z.number().int().nonnegative().optional(),
  stop: z.union([z.string(), z.array(z.string()).max(8)]).nullish(),
  stream: z.boolean().default(false),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullish(),
  n: z.literal(1, "only n=1 is supported").optional(),
  /** llama.cpp's extension: generate exactly max_tokens. */
  ignore_eos: z.boolean().default(false),
  /** llama-server's extension: reuse the cells of a slot whose last prompt started the same way. */
  cache_prompt: z.boolean().default(true),
};

export const CompletionRequest = z.object({
  ...common,
  prompt: z.union([z.string().min(1, "must not be empty"), z.tuple([z.string().min(1, "must not be empty")])]),
  /** OpenAI's default for completions. */
  max_tokens: z.number().int().positive().default(16),
});
export type CompletionRequest = z.infer<typeof CompletionRequest>;

export const ChatMessage = z.object({
  role: z.enum(["system", "user", "assistant", "developer"]),
  content: z.union([
    z.string(),
    z.array(z.object({ type: z.literal("text", "only text content parts are supported"), text: z.string() })),
  ]),
});

export const ChatRequest = z.object({
  ...common,
  messages: z.array(ChatMessage).min(1, "must hold at least one message"),
  max_tokens: z.number().int().positive().optional(),
  max_completion_tokens: z.number().int().positive().optional(),
});
export type ChatRequest = z.infer<typeof ChatRequest>;

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** As OpenAI reports them: the prompt's tokens found already evaluated. */
  prompt_tokens_details: { cached_tokens: number };
}

export function usage(result: { promptTokens: number; cachedPromptTokens: number; tokensOut: number }): Usage {
  const { promptTokens, cachedPromptTokens, tokensOut } = result;
  return {
    prompt_tokens: promptTokens,
    completion_tokens: tokensOut,
    total_tokens: promptTokens + tokensOut,
    prompt_tokens_details: { cached_tokens: cachedPromptTokens },
  };
}

export function messageText(content: z.infer<typeof ChatMessage>["content"]): string {
  return typeof content === "string" ? content : content.map((p) => p.text).join("");
}
