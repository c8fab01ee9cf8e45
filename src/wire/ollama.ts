// Ollama's API as its clients send it (ollama-js, Open WebUI, Continue…): request bodies as zod schemas. Unknown fields
// are ignored, as Ollama does.
import { z } from "zod";
import { requestObject } from "./request";

export const OllamaOptions = requestObject({
    num_predict: z.number().int().optional(),
    temperature: z.number().min(0).max(2).optional(),
    top_k: z.number().int().nonnegative().optional(),
    top_p: z.number().gt(0).max(1).optional(),
    min_p: z.number().min(0).max(1).optional(),
    repeat_penalty: z.number().positive().max(10).optional(),
    presence_penalty: z.number().min(-2).max(2).optional(),
    frequency_penalty: z.number().min(-2).max(2).optional(),
    seed: z.number().int().optional(),
    stop: z.array(z.string()).max(8).optional(),
    num_ctx: z.number().int().positive().optional(),
  }).optional();

/** "json", or a JSON schema the output must fit. */
const Format = z.union([z.literal("json"), z.literal(""), z.record(z.string(), z.unknown())]).optional();
/** "10m", "1h30m", "300ms", seconds as a number; 0 unloads at once; negative keeps the model loaded. */
export const KeepAlive = z.union([z.string(), z.number()]).optional();

const ToolCall = z.object({ function: z.object({ name: z.string().min(1), arguments: z.record(z.string(), z.unknown()).default({}) }) });

export const OllamaMessage = z.object({
  role: z.enum(["system", "user", "assistant", "tool"]),
  content: z.string().default(""),
  images: z.array(z.string()).optional(),
  tool_calls: z.array(ToolCall).optional(),
  tool_name: z.string().optional(),
});
export type OllamaMessage = z.infer<typeof OllamaMessage>;

export const OllamaChatRequest = requestObject({
  model: z.string().min(1, "must name a model"),
  messages: z.array(OllamaMessage).default([]),
  tools: z.array(z.unknown()).optional(),
  /** rbee's extension (OpenAI's field): Ollama lets the model choose; "required" or a named function forces a call. */
  tool_choice: z.unknown().optional(),
  format: Format,
  options: OllamaOptions,
  stream: z.boolean().default(true),
  keep_alive: KeepAlive,
});
export type OllamaChatRequest = z.infer<typeof OllamaChatRequest>;

export const OllamaGenerateRequest = requestObject({
  model: z.string().min(1, "must name a model"),
  prompt: z.string().default(""),
  suffix: z.string().optional(),
  system: z.string().optional(),
  template: z.string().optional(),
  raw: z.boolean().default(false),
  images: z.array(z.string()).optional(),
  format: Format,
  options: OllamaOptions,
  stream: z.boolean().default(true),
  keep_alive: KeepAlive,
});
export type OllamaGenerateRequest = z.infer<typeof OllamaGenerateRequest>;

export const OllamaEmbedRequest = requestObject({
  model: z.string().min(1, "must name a model"),
  input: z.union([z.string(), z.array(z.string()).min(1)]),
  truncate: z.boolean().default(true),
  keep_alive: KeepAlive,
});

export const OllamaLegacyEmbeddingsRequest = requestObject({ model: z.string().min(1, "must name a model"), prompt: z.string().min(1, "must not be empty"), keep_alive: KeepAlive });

export const OllamaModelRequest = requestObject({ model: z.string().min(1).optional(), name: z.string().min(1).optional() }).refine((b) => b.model || b.name, "must name a model (model)");
export const OllamaPullRequest = requestObject({ model: z.string().min(1).optional(), name: z.string().min(1).optional(), stream: z.boolean().default(true), insecure: z.boolean().optional() }).refine((b) => b.model || b.name, "must name a model (model)");
export const OllamaCopyRequest = requestObject({ source: z.string().min(1, "must name a model"), destination: z.string().min(1, "must name the new name") });
