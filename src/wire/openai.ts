// OpenAI-compatible request bodies (unknown fields are ignored, as OpenAI clients send many) and response builders.
import { z } from "zod";
import { noVisionMessage, requestObject } from "./request";
import { MAX_STOP_CHARS } from "./worker";

/** A route of OpenAI's API under /v1 and without it (clients that build paths from a base URL that lacks /v1). */
export const openAiPaths = (path: string) => [`/v1${path}`, path];

/** The routes OpenAI's clients call: their errors are in OpenAI's shape (wire/errors.ts). */
export const OPENAI_PATHS = new Set(["/chat/completions", "/completions", "/embeddings", "/models", "/rerank", "/responses"].flatMap(openAiPaths));

/** The longest GBNF grammar a request may carry (llama-server's `grammar`). */
export const MAX_GRAMMAR_CHARS = 100_000;

/** Messages one chat request may carry. */
export const MAX_MESSAGES = 4096;

/** The most choices one request may ask for (`n`): each is a sequence of its own, in a slot of its own. */
export const MAX_CHOICES = 8;

/** A schema for JSON output: an object (JSON Schema), checked further when its grammar is built. */
const JsonSchemaObject = z.record(z.string(), z.unknown());

export const ResponseFormat = z.discriminatedUnion("type", [
  z.object({ type: z.literal("text") }),
  z.object({ type: z.literal("json_object") }),
  z.object({
    type: z.literal("json_schema"),
    json_schema: z.object({ name: z.string().optional(), schema: JsonSchemaObject.optional(), strict: z.boolean().nullish() }),
  }),
]);
export type ResponseFormat = z.infer<typeof ResponseFormat>;

/** Fields a client may send that rbee does not serve yet: refused with a 400 that says so, never silently dropped. */
const notYet = (what: string) => z.unknown().refine((v) => v === undefined || v === null || v === false || (Array.isArray(v) && v.length === 0), `${what} is not supported by rbee yet`).optional();

const common = {
  model: z.string().optional(),
  temperature: z.number().min(0).max(2).default(0.8),
  top_p: z.number().gt(0).max(1).default(0.95),
  top_k: z.number().int().nonnegative().optional(),
  min_p: z.number().min(0).max(1).optional(),
  repeat_penalty: z.number().positive().max(10).optional(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  /** Token id (as a string, OpenAI's form) → bias from -100 (ban) to 100. */
  logit_bias: z.record(z.string().regex(/^\d+$/, "keys must be token ids"), z.number().min(-100).max(100)).nullish(),
  seed: z.number().int().nonnegative().optional(),
  stop: z.union([z.string().max(MAX_STOP_CHARS, `a stop string may have at most ${MAX_STOP_CHARS} characters`), z.array(z.string().max(MAX_STOP_CHARS, `a stop string may have at most ${MAX_STOP_CHARS} characters`)).max(8, "at most 8 stop strings")]).nullish(),
  stream: z.boolean().default(false),
  stream_options: requestObject({ include_usage: z.boolean().optional() }).nullish(),
  n: z.number().int().min(1).max(MAX_CHOICES, `n may be at most ${MAX_CHOICES}`).default(1),
  response_format: ResponseFormat.nullish(),
  /** llama.cpp's extension: generate exactly max_tokens. */
  ignore_eos: z.boolean().default(false),
  /** rbee's extension (Ollama's num_ctx): this request may use at most this many tokens of context, prompt included. */
  context_tokens: z.number().int().positive().optional(),
  /** llama-server's extension: reuse the cells of a slot whose last prompt started the same way. */
  cache_prompt: z.boolean().default(true),
  /** llama-server's extensions: the text follows this GBNF grammar, or this JSON schema ("" and {} are none). */
  grammar: z.string().max(MAX_GRAMMAR_CHARS, `a grammar may have at most ${MAX_GRAMMAR_CHARS} characters`).optional(),
  json_schema: JsonSchemaObject.optional(),
};

export const CompletionRequest = requestObject({
  ...common,
  /** How many most likely alternatives to report beside each token's log probability (OpenAI allows up to 5). */
  logprobs: z.number().int().min(0).max(5).nullish(),
  prompt: z.union([z.string().min(1, "must not be empty"), z.tuple([z.string().min(1, "must not be empty")])]),
  /** OpenAI's default for completions is 16 (with context_tokens: the rest of that context). */
  max_tokens: z.number().int().positive().optional(),
  /** The prompt is repeated before the completion's text. */
  echo: z.boolean().default(false),
  /** Text after the insertion point (fill-in-the-middle): refused with a 400 that says so, never dropped. */
  suffix: z.string().optional(),
});
export type CompletionRequest = z.infer<typeof CompletionRequest>;

/** A content part: text; an image, audio or file part is refused with one line that names it (noVisionMessage). */
const ContentPart = z
  .object({ type: z.string(), text: z.string().optional() })
  .passthrough()
  .superRefine((part, ctx) => {
    if (part.type !== "text") ctx.addIssue({ code: "custom", message: noVisionMessage(`an ${part.type} part`) });
    else if (typeof part.text !== "string") ctx.addIssue({ code: "custom", message: "a text part needs its text", path: ["text"] });
  })
  .transform((part) => ({ type: "text" as const, text: part.text! }));

const Content = z.union([z.string(), z.array(ContentPart)]);

export const ToolCallJson = z.object({
  id: z.string().min(1),
  type: z.literal("function").default("function"),
  function: z.object({ name: z.string().min(1), arguments: z.string() }),
});

export const ChatMessage = z.discriminatedUnion("role", [
  z.object({ role: z.enum(["system", "user", "developer"]), content: Content }),
  z.object({ role: z.literal("assistant"), content: Content.nullish(), tool_calls: z.array(ToolCallJson).nullish() }),
  z.object({ role: z.literal("tool"), tool_call_id: z.string().min(1, "must name the call it answers"), content: Content }),
]);
export type ChatMessage = z.infer<typeof ChatMessage>;

/** A function the model may call; `parameters` is the JSON Schema its arguments must fit. */
export const ToolJson = z.object({
  type: z.literal("function", "only function tools are supported"),
  function: z.object({
    name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, _ or -"),
    description: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    strict: z.boolean().nullish(),
  }),
});

export const ToolChoice = z.union([
  z.enum(["none", "auto", "required"]),
  z.object({ type: z.literal("function"), function: z.object({ name: z.string().min(1) }) }),
]);

export const ChatRequest = requestObject({
  ...common,
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  tools: z.array(ToolJson).max(128).nullish(),
  tool_choice: ToolChoice.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  functions: notYet("functions (the deprecated form of tools: use tools)"),
  function_call: notYet("function_call (the deprecated form of tool_choice: use tool_choice)"),
  messages: z.array(ChatMessage).min(1, "must hold at least one message").max(MAX_MESSAGES, `at most ${MAX_MESSAGES} messages`),
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

/** The completion tokens an answer or a stream chunk reports in its usage; undefined where it reports none. */
export function reportedCompletionTokens(record: unknown): number | undefined {
  const n = (record as { usage?: { completion_tokens?: unknown } } | null)?.usage?.completion_tokens;
  return typeof n === "number" ? n : undefined;
}

export function messageText(content: z.infer<typeof Content> | null | undefined): string {
  if (content === null || content === undefined) return "";
  return typeof content === "string" ? content : content.map((p) => p.text).join("");
}

/** Inputs one embeddings request may carry (OpenAI's limit). */
export const MAX_EMBEDDING_INPUTS = 2048;

export const EmbeddingsRequest = requestObject({
  model: z.string().optional(),
  input: z.union([
    z.string().min(1, "must not be empty"),
    z.array(z.string().min(1, "must not be empty")).min(1, "must hold at least one input").max(MAX_EMBEDDING_INPUTS),
    z.array(z.number().int().nonnegative()).min(1, "must hold at least one token"),
    z.array(z.array(z.number().int().nonnegative()).min(1, "must hold at least one token")).min(1).max(MAX_EMBEDDING_INPUTS),
  ]),
  encoding_format: z.enum(["float", "base64"]).default("float"),
  dimensions: z.number().int().positive().optional(),
  user: z.string().optional(),
});
export type EmbeddingsRequest = z.infer<typeof EmbeddingsRequest>;

/** The reranking call llama-server and Jina serve. */
export const RerankRequest = requestObject({
  model: z.string().optional(),
  query: z.string().min(1, "must not be empty"),
  documents: z.array(z.string()).min(1, "must hold at least one document").max(MAX_EMBEDDING_INPUTS),
  top_n: z.number().int().positive().optional(),
  return_documents: z.boolean().default(true),
});
export type RerankRequest = z.infer<typeof RerankRequest>;
