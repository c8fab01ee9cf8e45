// Tools through the official openai client and the Vercel AI SDK, on a worker serving a synthetic model with a real
// tokenizer and Qwen2.5's chat template: calls in the template's own syntax, arguments that always fit the schema,
// streamed as OpenAI streams them, and history with calls and results going back through the template.
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { generateText, jsonSchema, stepCountIs, tool } from "ai";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { z } from "zod";
import { QWEN_LESS_THAN_TOKEN, qwenChatModel } from "../../support/chat-model";
import type { RbeeProcess } from "../../support/processes";
import { startRbee, waitFor } from "../../support/processes";
import { startWorker } from "../../support/worker";

let worker: RbeeProcess;
let client: OpenAI;
beforeAll(async () => {
  worker = await startRbee(["worker", "--model", await qwenChatModel(), "--port", "0", "--slots", "4", "--ctx", "2048"]);
  await waitFor("worker ready", async () => (await (await fetch(`${worker.url}/v1/ready`)).json()).ready === true);
  client = new OpenAI({ baseURL: `${worker.url}/v1`, apiKey: "unused", maxRetries: 0 });
});
afterAll(async () => {
  expect(await worker.stop()).toBe(0);
});

const weatherParams = {
  type: "object",
  // No integers: node-llama-cpp's schema grammar lets them take exponents (1e999 parses as Infinity) and ignores minimum
  // and maximum, so only their syntax is enforced.
  properties: { city: { type: "string", enum: ["Paris", "Oslo", "Lima"] }, unit: { type: "string", enum: ["c", "f"] }, alerts: { type: "boolean" } },
  required: ["city", "unit", "alerts"],
  additionalProperties: false,
};
const WeatherArgs = z.strictObject({ city: z.enum(["Paris", "Oslo", "Lima"]), unit: z.enum(["c", "f"]), alerts: z.boolean() });
const TOOLS: OpenAI.ChatCompletionTool[] = [
  { type: "function", function: { name: "get_weather", description: "The weather in a city", parameters: weatherParams } },
  { type: "function", function: { name: "get_time", description: "The time now", parameters: { type: "object", properties: { zone: { type: "string", enum: ["UTC", "CET"] } }, required: ["zone"] } } },
];
const ARGS: Record<string, z.ZodType> = { get_weather: WeatherArgs, get_time: z.strictObject({ zone: z.enum(["UTC", "CET"]) }) };
/** A streamed chat about the weather with the tools: its tool-call deltas in order, and its finish_reason. */
async function streamToolCalls(extra: Partial<OpenAI.ChatCompletionCreateParamsStreaming>) {
  const stream = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "What is the weather in Paris?" }], tools: TOOLS, ...extra, stream: true });
  const deltas: OpenAI.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
  let finish: string | null = null;
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    if (!choice) continue;
    finish = choice.finish_reason ?? finish;
    deltas.push(...(choice.delta.tool_calls ?? []));
  }
  return { deltas, finish };
}
const ask = (extra: Partial<OpenAI.ChatCompletionCreateParamsNonStreaming>) =>
  client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "What is the weather in Paris?" }], max_tokens: 300, seed: 1, tools: TOOLS, ...extra });

describe("tool calls (openai client)", () => {
  test("tool_choice required: one call, with an id, whose arguments parse and fit its tool's schema", async () => {
    for (const seed of [1, 2, 3]) {
      const res = await ask({ tool_choice: "required", parallel_tool_calls: false, seed });
      const choice = res.choices[0]!;
      expect(choice.finish_reason).toBe("tool_calls");
      expect(choice.message.tool_calls).toHaveLength(1);
      const call = choice.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
      expect(call.id).toMatch(/^call_[0-9a-f]{24}$/);
      expect(call.type).toBe("function");
      expect(Object.keys(ARGS)).toContain(call.function.name);
      ARGS[call.function.name]!.parse(JSON.parse(call.function.arguments));
    }
  });

  test("a named tool_choice calls that tool", async () => {
    const res = await ask({ tool_choice: { type: "function", function: { name: "get_time" } } });
    const call = res.choices[0]!.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(res.choices[0]!.message.tool_calls).toHaveLength(1);
    expect(call.function.name).toBe("get_time");
    ARGS.get_time!.parse(JSON.parse(call.function.arguments));
  });

  test("parallel calls: several in one turn where the template can write them, each valid", async () => {
    let most = 0;
    for (const seed of [1, 2, 3]) {
      const res = await ask({ tool_choice: "required", seed, max_tokens: 600 });
      const calls = res.choices[0]!.message.tool_calls! as OpenAI.ChatCompletionMessageFunctionToolCall[];
      expect(res.choices[0]!.finish_reason).toBe("tool_calls");
      expect(calls.length).toBeGreaterThanOrEqual(1);
      expect(calls.length).toBeLessThanOrEqual(8);
      for (const call of calls) ARGS[call.function.name]!.parse(JSON.parse(call.function.arguments));
      expect(new Set(calls.map((c) => c.id)).size).toBe(calls.length);
      most = Math.max(most, calls.length);
    }
    expect(most).toBeGreaterThan(1);
  });

  test("tool_choice auto: the model chooses; text when it writes text, a valid call when it opens one", async () => {
    const text = await ask({ tool_choice: "auto", max_tokens: 20 });
    expect(text.choices[0]!.message.tool_calls ?? []).toHaveLength(0);
    expect(text.choices[0]!.message.content!.length).toBeGreaterThan(0);
    // A bias on "<" makes this model open a call; the grammar then writes a valid one.
    const call = await ask({ tool_choice: "auto", logit_bias: { [QWEN_LESS_THAN_TOKEN]: 100 }, parallel_tool_calls: false });
    expect(call.choices[0]!.finish_reason).toBe("tool_calls");
    const made = call.choices[0]!.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
    ARGS[made.function.name]!.parse(JSON.parse(made.function.arguments));
  });

  test("streamed: delta.tool_calls carry index, id and name first, then the arguments in pieces; the same call as unstreamed", async () => {
    const plain = await ask({ tool_choice: "required", seed: 5, max_tokens: 600 });
    const { deltas, finish } = await streamToolCalls({ max_tokens: 600, seed: 5, tool_choice: "required" });
    const calls: { id: string; name: string; arguments: string }[] = [];
    let pieces = 0;
    for (const delta of deltas) {
      if (delta.id) {
        expect(delta.index).toBe(calls.length);
        expect(delta.function!.name!.length).toBeGreaterThan(0);
        calls.push({ id: delta.id, name: delta.function!.name!, arguments: delta.function!.arguments ?? "" });
      } else {
        calls[delta.index]!.arguments += delta.function!.arguments ?? "";
        pieces++;
      }
    }
    expect(finish).toBe("tool_calls");
    expect(pieces).toBeGreaterThan(calls.length);
    const expected = (plain.choices[0]!.message.tool_calls as OpenAI.ChatCompletionMessageFunctionToolCall[]).map((c) => ({ name: c.function.name, arguments: c.function.arguments }));
    expect(calls.map(({ name, arguments: a }) => ({ name, arguments: a }))).toEqual(expected);
  });

  test("streamed parallel calls cut by max_tokens at every point of the first call's name and separator: only tools' names, finish_reason length", async () => {
    const whole = await ask({ tool_choice: "required", parallel_tool_calls: true, seed: 3, max_tokens: 600 });
    const tokens = whole.usage!.completion_tokens;
    const names = TOOLS.map((t) => (t as OpenAI.ChatCompletionFunctionTool).function.name);
    // The first call's opening, name and separator lie in its first 24 tokens (Qwen's vocabulary).
    for (let cut = 1; cut < Math.min(tokens, 24); cut++) {
      const { deltas, finish } = await streamToolCalls({ max_tokens: cut, seed: 3, tool_choice: "required", parallel_tool_calls: true });
      for (const delta of deltas) {
        const name = delta.function?.name;
        // A name cut short is still a name; the separator's punctuation never is one.
        if (name !== undefined) expect({ cut, name }).toEqual({ cut, name: expect.stringMatching(/^[A-Za-z0-9_-]{1,64}$/) });
        if (name !== undefined && delta.id) expect(names.some((n) => n.startsWith(name))).toBe(true);
      }
      expect({ cut, finish }).toEqual({ cut, finish: "length" });
    }
  }, 60_000);

  test("history with the assistant's calls and the tools' results goes back through the template", async () => {
    const first = await ask({ tool_choice: "required", parallel_tool_calls: false });
    const call = first.choices[0]!.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
    const history: OpenAI.ChatCompletionMessageParam[] = [
      { role: "user", content: "What is the weather in Paris?" },
      { role: "assistant", content: null, tool_calls: [call] },
      { role: "tool", tool_call_id: call.id, content: "Sunny, 24 degrees" },
    ];
    const next = await client.chat.completions.create({ model: "m", messages: history, max_tokens: 10, seed: 1, tools: TOOLS });
    expect(next.choices[0]!.message.role).toBe("assistant");
    // The result is in the prompt: a longer result makes a longer prompt by its tokens.
    const longer = await client.chat.completions.create({
      model: "m",
      messages: [...history.slice(0, 2), { role: "tool", tool_call_id: call.id, content: "Sunny, 24 degrees, light wind from the west" }],
      max_tokens: 10,
      seed: 1,
      tools: TOOLS,
    });
    expect(longer.usage!.prompt_tokens).toBeGreaterThan(next.usage!.prompt_tokens);
    expect(next.usage!.prompt_tokens).toBeGreaterThan(first.usage!.prompt_tokens);
  });

  test("bad tool requests are refused with a message that says why", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ tools: TOOLS, tool_choice: { type: "function", function: { name: "nope" } } }, "tool_choice names nope"],
      [{ tool_choice: "required" }, "the request has no tools"],
      [{ tools: TOOLS, tool_choice: "required", response_format: { type: "json_object" } }, "cannot be combined"],
      [{ tools: [{ type: "function", function: { name: "bad name!" } }] }, "tools.0.function.name"],
      [{ tools: [{ type: "retrieval" }] }, "only function tools are supported"],
      [{ functions: [{ name: "f" }] }, "use tools"],
      [{ messages: [{ role: "tool", tool_call_id: "call_x", content: "42" }] }, "which no assistant message called"],
      [{ messages: [{ role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "get_time", arguments: "{not json" } }] }] }, "are not JSON"],
      [{ messages: [{ role: "tool", content: "42" }] }, "tool_call_id"],
    ];
    for (const [extra, message] of cases) {
      const res = await fetch(`${worker.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }], max_tokens: 5, ...extra }),
      });
      const body = await res.json();
      expect({ status: res.status, message: body.error?.message }).toMatchObject({ status: 400, message: expect.stringContaining(message) });
    }
  });

  test("a grammar's mask spread over threads gives the same calls as on one", async () => {
    const spread = await startRbee(["worker", "--model", await qwenChatModel(), "--port", "0", "--slots", "2", "--ctx", "2048"], { env: { RBEE_SAMPLING_THREADS: "4" } });
    try {
      await waitFor("worker ready", async () => (await (await fetch(`${spread.url}/v1/ready`)).json()).ready === true);
      const spreadClient = new OpenAI({ baseURL: `${spread.url}/v1`, apiKey: "unused", maxRetries: 0 });
      for (const seed of [1, 2]) {
        const request = { model: "m", messages: [{ role: "user" as const, content: "Weather?" }], max_tokens: 300, seed, tools: TOOLS, tool_choice: "required" as const, parallel_tool_calls: false };
        const [one, four] = await Promise.all([client.chat.completions.create(request), spreadClient.chat.completions.create(request)]);
        const calls = (r: OpenAI.ChatCompletion) => (r.choices[0]!.message.tool_calls as OpenAI.ChatCompletionMessageFunctionToolCall[]).map((c) => c.function);
        expect(calls(four)).toEqual(calls(one));
      }
    } finally {
      expect(await spread.stop()).toBe(0);
    }
  });

  test("a model without a chat template calls tools in node-llama-cpp's general syntax", async () => {
    const stories = await startWorker();
    try {
      const storiesClient = new OpenAI({ baseURL: `${stories.url}/v1`, apiKey: "unused", maxRetries: 0 });
      const res = await storiesClient.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }], max_tokens: 100, seed: 1, tools: TOOLS, tool_choice: "required", parallel_tool_calls: false });
      expect(res.choices[0]!.finish_reason).toBe("tool_calls");
      const call = res.choices[0]!.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
      ARGS[call.function.name]!.parse(JSON.parse(call.function.arguments));
    } finally {
      expect(await stories.stop()).toBe(0);
    }
  });
});

describe("tool calls (Vercel AI SDK)", () => {
  test("generateText with a tool: the SDK gets a valid call, runs the tool, and its result goes back to the model", async () => {
    const provider = createOpenAICompatible({ name: "rbee", baseURL: `${worker.url}/v1` });
    const seen: unknown[] = [];
    const result = await generateText({
      model: provider("qwen-chat"),
      prompt: "What is the weather in Paris?",
      maxOutputTokens: 1000,
      seed: 3,
      toolChoice: "required",
      // Step 1 calls the tool; step 2 sends its result back and asks for the answer.
      stopWhen: stepCountIs(2),
      prepareStep: ({ stepNumber }) => (stepNumber === 1 ? { toolChoice: "none", maxOutputTokens: 10 } : {}),
      tools: {
        get_weather: tool({
          description: "The weather in a city",
          inputSchema: jsonSchema<z.infer<typeof WeatherArgs>>(weatherParams as never),
          execute: async (input) => {
            seen.push(WeatherArgs.parse(input));
            return { forecast: "sunny" };
          },
        }),
      },
    });
    expect(result.steps).toHaveLength(2);
    const [calling, answering] = result.steps;
    expect(calling!.finishReason).toBe("tool-calls");
    expect(calling!.toolCalls.length).toBeGreaterThanOrEqual(1);
    expect(calling!.toolCalls[0]!.toolName).toBe("get_weather");
    expect(seen).toHaveLength(calling!.toolCalls.length);
    expect(calling!.toolResults[0]!.output).toEqual({ forecast: "sunny" });
    // The second request carried the call and the tool's result, and its prompt grew by them.
    const conversation = JSON.stringify(calling!.response.messages);
    expect(conversation).toContain('"role":"tool"');
    expect(conversation).toContain("sunny");
    expect(answering!.usage.inputTokens!).toBeGreaterThan(calling!.usage.inputTokens! + 20);
    expect(answering!.toolCalls).toHaveLength(0);
    expect(answering!.text.length).toBeGreaterThan(0);
  });
});
