// Anthropic's Messages API as its clients send it (@anthropic-ai/sdk, agents and coding tools pointed at a local URL).
import { z } from "zod";
import { requestObject } from "./request";

const TextBlock = z.object({ type: z.literal("text"), text: z.string() });
const ToolUseBlock = z.object({ type: z.literal("tool_use"), id: z.string().min(1), name: z.string().min(1), input: z.record(z.string(), z.unknown()).default({}) });
const ToolResultBlock = z.object({
  type: z.literal("tool_result"),
  tool_use_id: z.string().min(1),
  content: z.union([z.string(), z.array(TextBlock)]).default(""),
  is_error: z.boolean().optional(),
});
const UnsupportedBlock = z.object({ type: z.enum(["image", "document", "thinking", "redacted_thinking", "server_tool_use", "web_search_tool_result"]) }).passthrough();
export const ContentBlock = z.discriminatedUnion("type", [TextBlock, ToolUseBlock, ToolResultBlock, UnsupportedBlock]);
export type ContentBlock = z.infer<typeof ContentBlock>;

export const AnthropicMessage = z.object({ role: z.enum(["user", "assistant"]), content: z.union([z.string(), z.array(ContentBlock)]) });
export type AnthropicMessage = z.infer<typeof AnthropicMessage>;

export const AnthropicTool = z.object({ name: z.string().min(1), description: z.string().optional(), input_schema: z.record(z.string(), z.unknown()) });

export const AnthropicToolChoice = z.discriminatedUnion("type", [
  z.object({ type: z.literal("auto"), disable_parallel_tool_use: z.boolean().optional() }),
  z.object({ type: z.literal("any"), disable_parallel_tool_use: z.boolean().optional() }),
  z.object({ type: z.literal("tool"), name: z.string().min(1), disable_parallel_tool_use: z.boolean().optional() }),
  z.object({ type: z.literal("none") }),
]);

const System = z.union([z.string(), z.array(TextBlock)]).optional();

export const MessagesRequest = requestObject({
  model: z.string().min(1, "must name a model"),
  max_tokens: z.number().int().positive(),
  messages: z.array(AnthropicMessage).min(1, "must hold at least one message"),
  system: System,
  stop_sequences: z.array(z.string()).max(8).optional(),
  temperature: z.number().min(0).max(1).optional(),
  top_p: z.number().gt(0).max(1).optional(),
  top_k: z.number().int().nonnegative().optional(),
  stream: z.boolean().default(false),
  tools: z.array(AnthropicTool).optional(),
  tool_choice: AnthropicToolChoice.optional(),
  metadata: z.unknown().optional(),
});
export type MessagesRequest = z.infer<typeof MessagesRequest>;

export const CountTokensRequest = MessagesRequest.pick({ model: true, messages: true, system: true, tools: true, tool_choice: true });
export type CountTokensRequest = z.infer<typeof CountTokensRequest>;
