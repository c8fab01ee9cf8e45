// llama-server's own API (what SillyTavern's llama.cpp backend, token counters and scripts written against llama.cpp
// call): request bodies of /completion, /tokenize, /detokenize and /apply-template, with llama-server's defaults.
import { z } from "zod";
import { requestObject } from "./request";
import { ChatMessage, MAX_GRAMMAR_CHARS, ToolChoice, ToolJson } from "./openai";
import { MAX_STOP_CHARS } from "./worker";

/** The routes llama-server's clients call: their errors are in llama-server's shape (wire/errors.ts). */
export const LLAMACPP_PATHS = new Set(["/completion", "/tokenize", "/detokenize", "/props", "/apply-template", "/health", "/slots"]);

const token = z.number().int().nonnegative();
/** Text, token ids, or both mixed (llama-server's tokenize_mixed): one prompt. */
const MixedPrompt = z.union([z.string(), z.array(z.union([token, z.string()])).min(1, "must hold at least one token or text")]);
const stopString = z.string().max(MAX_STOP_CHARS, `a stop string may have at most ${MAX_STOP_CHARS} characters`);

export const LlamaCompletionRequest = requestObject({
  /** On the queen: which model (else the only one loaded). */
  model: z.string().min(1).optional(),
  prompt: MixedPrompt,
  /** -1: until the context is full (llama-server's default); -2 the same. */
  n_predict: z.number().int().min(-2).default(-1),
  temperature: z.number().min(0).max(100).default(0.8),
  top_k: z.number().int().nonnegative().default(40),
  top_p: z.number().min(0).max(1).default(0.95),
  min_p: z.number().min(0).max(1).default(0.05),
  repeat_penalty: z.number().positive().max(10).default(1),
  presence_penalty: z.number().min(-2).max(2).default(0),
  frequency_penalty: z.number().min(-2).max(2).default(0),
  /** -1 (or 0xFFFFFFFF, llama.cpp's LLAMA_DEFAULT_SEED): a random one. */
  seed: z.number().int().min(-1).max(0xffffffff).default(-1),
  stop: z.union([stopString, z.array(stopString).max(8, "at most 8 stop strings")]).default([]),
  /** GBNF; "" is none. */
  grammar: z.string().max(MAX_GRAMMAR_CHARS, `a grammar may have at most ${MAX_GRAMMAR_CHARS} characters`).default(""),
  json_schema: z.record(z.string(), z.unknown()).optional(),
  cache_prompt: z.boolean().default(true),
  stream: z.boolean().default(false),
  /** The most likely alternatives reported beside each generated token (llama-server's completion_probabilities). */
  n_probs: z.number().int().min(0).max(20).default(0),
  ignore_eos: z.boolean().default(false),
});
export type LlamaCompletionRequest = z.infer<typeof LlamaCompletionRequest>;

export const TokenizeRequest = requestObject({
  model: z.string().min(1).optional(),
  content: MixedPrompt,
  add_special: z.boolean().default(false),
  parse_special: z.boolean().default(true),
  with_pieces: z.boolean().default(false),
});
export type TokenizeRequest = z.infer<typeof TokenizeRequest>;

export const DetokenizeRequest = requestObject({
  model: z.string().min(1).optional(),
  tokens: z.array(token).default([]),
});
export type DetokenizeRequest = z.infer<typeof DetokenizeRequest>;

export const ApplyTemplateRequest = requestObject({
  model: z.string().min(1).optional(),
  messages: z.array(ChatMessage).min(1, "must hold at least one message"),
  tools: z.array(ToolJson).max(128).optional(),
  tool_choice: ToolChoice.optional(),
});
export type ApplyTemplateRequest = z.infer<typeof ApplyTemplateRequest>;
