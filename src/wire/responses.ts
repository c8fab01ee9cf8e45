// OpenAI's Responses API (POST /v1/responses): the request body. Input is text or items (messages, function calls and
// their outputs); tools are functions; text.format asks for JSON. Unknown fields are ignored, as OpenAI's clients send many.
import { z } from "zod";
import { noVisionMessage, requestObject } from "./request";

/** A message's content: text, or parts of which only text ones are served. */
const Part = z
  .object({ type: z.string(), text: z.string().optional() })
  .passthrough()
  .superRefine((part, ctx) => {
    if (part.type === "input_image" || part.type === "input_file" || part.type === "input_audio") ctx.addIssue({ code: "custom", message: noVisionMessage(`an ${part.type} part`) });
    else if (!["input_text", "output_text", "text", "refusal"].includes(part.type)) ctx.addIssue({ code: "custom", message: `content parts of type ${part.type} are not supported` });
    else if (typeof part.text !== "string" && part.type !== "refusal") ctx.addIssue({ code: "custom", message: "a text part needs its text", path: ["text"] });
  })
  .transform((part) => part.text ?? "");

const MessageItem = z.object({
  type: z.literal("message").optional(),
  id: z.string().optional(),
  role: z.enum(["user", "assistant", "system", "developer"]),
  content: z.union([z.string(), z.array(Part)]),
});

const FunctionCallItem = z.object({
  type: z.literal("function_call"),
  id: z.string().optional(),
  call_id: z.string().min(1, "must name the call"),
  name: z.string().min(1),
  arguments: z.string(),
});

const FunctionCallOutputItem = z.object({
  type: z.literal("function_call_output"),
  id: z.string().optional(),
  call_id: z.string().min(1, "must name the call it answers"),
  output: z.union([z.string(), z.array(Part).transform((parts) => parts.join(""))]),
});

export const InputItem = z.union([MessageItem, FunctionCallItem, FunctionCallOutputItem]);
export type InputItem = z.infer<typeof InputItem>;

/** Items of a kind rbee does not serve (reasoning, web search, file search, item references ...) get a 400 naming them. */
const KnownItem = z.unknown().superRefine((v, ctx) => {
  const type = (v as { type?: unknown } | null)?.type;
  if (typeof type === "string" && !["message", "function_call", "function_call_output"].includes(type))
    ctx.addIssue({ code: "custom", message: `input items of type ${type} are not supported (messages, function_call and function_call_output are)` });
});

export const FunctionTool = z.object({
  type: z.literal("function", "only function tools are supported"),
  name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 letters, digits, _ or -"),
  description: z.string().nullish(),
  parameters: z.record(z.string(), z.unknown()).nullish(),
  strict: z.boolean().nullish(),
});

const TextFormat = z.discriminatedUnion("type", [
  z.object({ type: z.literal("text") }),
  z.object({ type: z.literal("json_object") }),
  z.object({ type: z.literal("json_schema"), name: z.string().optional(), schema: z.record(z.string(), z.unknown()), strict: z.boolean().nullish(), description: z.string().optional() }),
]);

export const ResponsesRequest = requestObject({
  model: z.string().min(1, "must name a model"),
  node: z.string().min(1).optional(),
  input: z.union([z.string(), z.array(KnownItem.pipe(InputItem)).min(1, "must hold at least one item")]),
  instructions: z.string().optional(),
  max_output_tokens: z.number().int().positive().optional(),
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().gt(0).max(1).optional(),
  tools: z.array(FunctionTool).max(128).optional(),
  tool_choice: z.union([z.enum(["none", "auto", "required"]), z.object({ type: z.literal("function"), name: z.string().min(1) })]).optional(),
  parallel_tool_calls: z.boolean().optional(),
  text: requestObject({ format: TextFormat.optional() }).optional(),
  stream: z.boolean().default(false),
  store: z.boolean().default(true),
  previous_response_id: z.string().min(1).optional(),
  metadata: z.record(z.string().max(64), z.string().max(512)).optional(),
  user: z.string().optional(),
});
export type ResponsesRequest = z.infer<typeof ResponsesRequest>;
