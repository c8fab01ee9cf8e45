// Anthropic's Messages API on a real queen, through the official @anthropic-ai/sdk: whole and streamed messages,
// system prompts and turns, stop sequences, tools (tool_use out, tool_result back in), count_tokens, x-api-key, and
// errors in Anthropic's shape.
import Anthropic from "@anthropic-ai/sdk";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { qwenChatModel } from "../../support/chat-model";
import { removeTempHomes } from "../../support/home";
import { killStartedProcesses, runRbee } from "../../support/processes";
import { startQueen, tokensGenerated } from "../../support/queen";

const TOKEN = "anthropic-test-token";
let queen: Awaited<ReturnType<typeof startQueen>>;
let client: Anthropic;
beforeAll(async () => {
  queen = await startQueen(["--api-token", TOKEN]);
  const added = await runRbee(["hive", "models", "download", await qwenChatModel(), "--port", "1"], { env: { RBEE_HOME: queen.home } });
  expect(added.code).toBe(0);
  client = new Anthropic({ baseURL: queen.url, apiKey: TOKEN, maxRetries: 0 });
});
afterAll(async () => {
  await killStartedProcesses();
  removeTempHomes();
});

/** temperature 0 (greedy), which this SDK's types no longer list but the API still takes. */
const GREEDY = { temperature: 0 } as object;

const weather = {
  name: "get_weather",
  description: "The weather in a city",
  input_schema: { type: "object" as const, properties: { city: { type: "string", enum: ["Paris", "Oslo"] }, alerts: { type: "boolean" } }, required: ["city", "alerts"] },
};

describe("Anthropic Messages API on the queen", () => {
  test("a message: system and turns through the template, text content, stop_reason and usage", async () => {
    const countedBefore = await tokensGenerated(queen.url);
    const msg = await client.messages.create({
      model: "stories260K",
      max_tokens: 20,
      ...GREEDY,
      system: "You tell stories.",
      messages: [
        { role: "user", content: "Once upon a time" },
        { role: "assistant", content: "there was a cat." },
        { role: "user", content: [{ type: "text", text: "And then?" }] },
      ],
    });
    expect(msg.type).toBe("message");
    expect(msg.id).toMatch(/^msg_/);
    expect(msg.role).toBe("assistant");
    expect(msg.content[0]!.type).toBe("text");
    expect((msg.content[0] as Anthropic.TextBlock).text.length).toBeGreaterThan(0);
    expect(msg.stop_reason).toBe("max_tokens");
    expect(msg.usage.output_tokens).toBe(20);
    expect(msg.usage.input_tokens).toBeGreaterThan(10);
    // Its tokens count in the queen's metrics, as OpenAI's do.
    expect(await tokensGenerated(queen.url)).toBe(countedBefore + 20);
  });

  test("streamed: Anthropic's events in order, and the same message as unstreamed", async () => {
    const request = { model: "stories260K", max_tokens: 25, ...GREEDY, messages: [{ role: "user" as const, content: "Tell me a story" }] };
    const whole = await client.messages.create(request);
    const events: string[] = [];
    const stream = client.messages.stream(request);
    stream.on("streamEvent", (e) => events.push(e.type));
    const final = await stream.finalMessage();
    expect(events[0]).toBe("message_start");
    expect(events[1]).toBe("content_block_start");
    expect(events.filter((e) => e === "content_block_delta").length).toBeGreaterThan(2);
    expect(events.slice(-3)).toEqual(["content_block_stop", "message_delta", "message_stop"]);
    expect(final.content as unknown[]).toEqual(whole.content);
    expect(final.stop_reason).toBe(whole.stop_reason);
    expect(final.usage.output_tokens).toBe(whole.usage.output_tokens);
    expect(final.usage.input_tokens).toBe(whole.usage.input_tokens);
  });

  test("stop_sequences end the text before them", async () => {
    const base = { model: "stories260K", max_tokens: 40, ...GREEDY, messages: [{ role: "user" as const, content: "Tell me a story" }] };
    const full = (await client.messages.create(base)).content[0] as Anthropic.TextBlock;
    const word = full.text.trim().split(/\s+/)[3]!;
    const stopped = await client.messages.create({ ...base, stop_sequences: [word] });
    expect((stopped.content[0] as Anthropic.TextBlock).text).toBe(full.text.slice(0, full.text.indexOf(word)));
    expect(stopped.stop_reason).toBe("end_turn");
  });

  test("tools: tool_choice any gives a tool_use block whose input fits the schema; the result goes back", async () => {
    const msg = await client.messages.create({
      model: "qwen-chat",
      max_tokens: 300,
      tools: [weather],
      tool_choice: { type: "any", disable_parallel_tool_use: true },
      messages: [{ role: "user", content: "Weather in Paris?" }],
    });
    expect(msg.stop_reason).toBe("tool_use");
    const use = msg.content.find((b) => b.type === "tool_use") as Anthropic.ToolUseBlock;
    expect(use.id).toMatch(/^toolu_/);
    expect(use.name).toBe("get_weather");
    expect(["Paris", "Oslo"]).toContain((use.input as { city: string }).city);
    expect(typeof (use.input as { alerts: boolean }).alerts).toBe("boolean");
    const next = await client.messages.create({
      model: "qwen-chat",
      max_tokens: 5,
      tools: [weather],
      messages: [
        { role: "user", content: "Weather in Paris?" },
        { role: "assistant", content: msg.content },
        { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "Sunny and warm" }] },
      ],
    });
    expect(next.usage.input_tokens).toBeGreaterThan(msg.usage.input_tokens);
  });

  test("tools streamed: a tool_use block with input_json_delta pieces; tool_choice names the tool", async () => {
    const stream = client.messages.stream({
      model: "qwen-chat",
      max_tokens: 300,
      tools: [weather, { name: "get_time", input_schema: { type: "object", properties: { zone: { enum: ["UTC", "CET"] } }, required: ["zone"] } }],
      tool_choice: { type: "tool", name: "get_time" },
      messages: [{ role: "user", content: "What time is it?" }],
    });
    let jsonDeltas = 0;
    stream.on("streamEvent", (e) => {
      if (e.type === "content_block_delta" && e.delta.type === "input_json_delta") jsonDeltas++;
    });
    const final = await stream.finalMessage();
    const use = final.content.find((b) => b.type === "tool_use") as Anthropic.ToolUseBlock;
    expect(use.name).toBe("get_time");
    expect(["UTC", "CET"]).toContain((use.input as { zone: string }).zone);
    expect(jsonDeltas).toBeGreaterThan(1);
    expect(final.stop_reason).toBe("tool_use");
  });

  test("system as blocks counts as a system prompt; tool_choice none writes text", async () => {
    const asText = await client.messages.countTokens({ model: "qwen-chat", system: "Answer briefly.", messages: [{ role: "user", content: "Hi" }] });
    const asBlocks = await client.messages.countTokens({ model: "qwen-chat", system: [{ type: "text", text: "Answer briefly." }], messages: [{ role: "user", content: "Hi" }] });
    expect(asBlocks.input_tokens).toBe(asText.input_tokens);
    const none = await client.messages.create({ model: "qwen-chat", max_tokens: 5, tools: [weather], tool_choice: { type: "none" }, messages: [{ role: "user", content: "Weather in Paris?" }] });
    expect(none.content.every((b) => b.type === "text")).toBe(true);
    expect(none.stop_reason).toBe("max_tokens");
  });

  test("count_tokens: the input tokens the message will take", async () => {
    const request = { model: "qwen-chat", system: "Be brief.", messages: [{ role: "user" as const, content: "Weather in Paris?" }], tools: [weather] };
    const counted = await client.messages.countTokens(request);
    const sent = await client.messages.create({ ...request, max_tokens: 1 });
    expect(counted.input_tokens).toBe(sent.usage.input_tokens);
  });

  test("errors in Anthropic's shape; a wrong x-api-key is refused", async () => {
    const noMax = await fetch(`${queen.url}/v1/messages`, { method: "POST", headers: { "x-api-key": TOKEN }, body: JSON.stringify({ model: "stories260K", messages: [{ role: "user", content: "hi" }] }) });
    expect(noMax.status).toBe(400);
    expect(await noMax.json()).toMatchObject({ type: "error", error: { type: "invalid_request_error", message: expect.stringContaining("max_tokens") } });
    const image = await client.messages
      .create({ model: "stories260K", max_tokens: 5, messages: [{ role: "user", content: [{ type: "image", source: { type: "base64", media_type: "image/png", data: "AA" } }] }] })
      .catch((e) => e);
    expect(image).toBeInstanceOf(Anthropic.BadRequestError);
    expect(image.error.error.message).toBe("an image block, but this model has no vision support: rbee serves text-only models (send the text alone)");
    const unknown = await client.messages.create({ model: "nope", max_tokens: 5, messages: [{ role: "user", content: "hi" }] }).catch((e) => e);
    expect(unknown.status).toBe(404);
    expect(unknown.error.error.type).toBe("not_found_error");
    const wrongKey = await new Anthropic({ baseURL: queen.url, apiKey: "wrong", maxRetries: 0 }).messages.create({ model: "stories260K", max_tokens: 5, messages: [{ role: "user", content: "hi" }] }).catch((e) => e);
    expect(wrongKey).toBeInstanceOf(Anthropic.AuthenticationError);
    // Refused before any route: in Anthropic's shape all the same.
    expect(wrongKey.error).toMatchObject({ type: "error", error: { type: "authentication_error", message: expect.any(String) } });
  });
});
