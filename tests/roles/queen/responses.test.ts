// OpenAI's Responses API on a real queen, through the official openai client: responses.create whole and streamed (its
// stream helper and raw events), instructions and items, max_output_tokens, text.format, function calls and their
// outputs (a round trip), previous_response_id from the stored responses (SQLite, bounded; store: false keeps none),
// retrieve, input items and delete, and bad input in OpenAI's error shape.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import OpenAI from "openai";
import { qwenChatModel } from "../../support/chat-model";
import { removeTempHomes } from "../../support/home";
import { killStartedProcesses, runRbee } from "../../support/processes";
import { startQueen } from "../../support/queen";
import { postJson } from "../../support/sse";

const STORED = 6;
let queen: Awaited<ReturnType<typeof startQueen>>;
let client: OpenAI;
beforeAll(async () => {
  queen = await startQueen([], undefined, { RBEE_STORED_RESPONSES: String(STORED) });
  const added = await runRbee(["hive", "models", "download", await qwenChatModel(), "--port", "1"], { env: { RBEE_HOME: queen.home } });
  expect(added.code).toBe(0);
  client = new OpenAI({ baseURL: `${queen.url}/v1`, apiKey: "unused", maxRetries: 0 });
});
afterAll(async () => {
  await killStartedProcesses();
  removeTempHomes();
});

const STORIES = "stories260K";
const CHAT = "qwen-chat";
const weather = {
  type: "function" as const,
  name: "get_weather",
  description: "The weather in a city",
  parameters: { type: "object", properties: { city: { type: "string", enum: ["Paris", "Oslo"] } }, required: ["city"], additionalProperties: false },
  strict: true,
};

describe("Responses API on the queen", () => {
  test("text in, a message out: status, usage, output_text; stored and read back by id", async () => {
    const response = await client.responses.create({ model: STORIES, input: "Once upon a time", instructions: "Tell a story.", temperature: 0, max_output_tokens: 40 });
    expect(response.id).toMatch(/^resp_/);
    expect(response.object).toBe("response");
    expect(response.output).toHaveLength(1);
    expect(response.output[0]).toMatchObject({ type: "message", role: "assistant", status: response.status });
    expect(response.output_text.length).toBeGreaterThan(10);
    expect(response.usage!.output_tokens).toBeGreaterThan(3);
    expect(response.usage!.total_tokens).toBe(response.usage!.input_tokens + response.usage!.output_tokens);
    expect(response.instructions).toBe("Tell a story.");
    const stored = await client.responses.retrieve(response.id);
    expect(stored.output).toEqual(response.output);
    expect(existsSync(join(queen.home, "responses.db"))).toBe(true);
    const items = await client.responses.inputItems.list(response.id);
    expect(items.data).toHaveLength(1);
    expect(items.data[0]).toMatchObject({ type: "message", role: "user" });
  });

  test("max_output_tokens cuts the answer: status incomplete, the reason max_output_tokens", async () => {
    const response = await client.responses.create({ model: STORIES, input: "Once upon a time", max_output_tokens: 5, temperature: 0 });
    expect(response.status).toBe("incomplete");
    expect(response.incomplete_details).toEqual({ reason: "max_output_tokens" });
    expect(response.usage!.output_tokens).toBe(5);
  });

  test("streamed: the stream helper's events and final response match the whole answer", async () => {
    const whole = await client.responses.create({ model: STORIES, input: "Once upon a time", temperature: 0, max_output_tokens: 30 });
    const stream = client.responses.stream({ model: STORIES, input: "Once upon a time", temperature: 0, max_output_tokens: 30 });
    const types: string[] = [];
    let deltas = "";
    stream.on("event", (e) => types.push(e.type));
    stream.on("response.output_text.delta", (e) => (deltas += e.delta));
    const final = await stream.finalResponse();
    expect(final.output_text).toBe(whole.output_text);
    expect(deltas).toBe(whole.output_text);
    expect(types.slice(0, 4)).toEqual(["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]);
    expect(types.slice(-4)).toEqual(["response.output_text.done", "response.content_part.done", "response.output_item.done", "response.incomplete"]);
    // Stored once it ended.
    expect((await client.responses.retrieve(final.id)).output_text ?? (await client.responses.retrieve(final.id)).output).toBeTruthy();
  });

  test("previous_response_id continues the stored conversation: the same as sending it whole", async () => {
    const first = await client.responses.create({ model: CHAT, input: "Say something.", max_output_tokens: 12, temperature: 0 });
    const next = await client.responses.create({ model: CHAT, previous_response_id: first.id, input: "And more.", max_output_tokens: 12, temperature: 0 });
    const whole = await client.responses.create({
      model: CHAT,
      input: [
        { role: "user", content: "Say something." },
        { role: "assistant", content: first.output_text },
        { role: "user", content: "And more." },
      ],
      max_output_tokens: 12,
      temperature: 0,
    });
    expect(next.previous_response_id).toBe(first.id);
    expect(next.usage!.input_tokens).toBe(whole.usage!.input_tokens);
    expect(next.usage!.input_tokens).toBeGreaterThan(first.usage!.input_tokens + first.usage!.output_tokens);
    expect(next.output_text).toBe(whole.output_text);
  });

  test("a function call round trip: the call, then its output as the next input, whole and streamed", async () => {
    // One call: this nonsense model would otherwise go on calling until max_output_tokens cuts a call.
    const called = await client.responses.create({ model: CHAT, input: "What is the weather in Paris?", tools: [weather], tool_choice: "required", parallel_tool_calls: false, max_output_tokens: 60 });
    expect(called.status).toBe("completed");
    expect(called.output).toHaveLength(1);
    const call = called.output[0];
    if (call?.type !== "function_call") throw new Error("no call");
    expect(call.name).toBe("get_weather");
    expect(call.call_id.length).toBeGreaterThan(3);
    expect(["Paris", "Oslo"]).toContain(JSON.parse(call.arguments).city);
    const answered = await client.responses.create({
      model: CHAT,
      previous_response_id: called.id,
      input: [{ type: "function_call_output", call_id: call.call_id, output: "Sunny, 21 degrees" }],
      tools: [weather],
      tool_choice: "none",
      max_output_tokens: 10,
      temperature: 0,
    });
    expect(answered.output[0]!.type).toBe("message");
    expect(answered.usage!.input_tokens).toBeGreaterThan(called.usage!.input_tokens);
    const stream = client.responses.stream({ model: CHAT, input: "What is the weather in Oslo?", tools: [weather], tool_choice: { type: "function", name: "get_weather" }, parallel_tool_calls: false, max_output_tokens: 60 });
    let args = "";
    stream.on("response.function_call_arguments.delta", (e) => (args += e.delta));
    const final = await stream.finalResponse();
    const streamedCall = final.output.find((o) => o.type === "function_call");
    expect(streamedCall?.type === "function_call" && streamedCall.arguments).toBe(args);
    expect(Object.keys(JSON.parse(args))).toEqual(["city"]);
  });

  test("text.format: json_schema and json_object answers parse", async () => {
    const schema = { type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"], additionalProperties: false };
    const shaped = await client.responses.create({ model: CHAT, input: "Answer.", text: { format: { type: "json_schema", name: "answer", schema, strict: true } }, max_output_tokens: 30 });
    // The grammar ends the text once the object is whole: completed, not cut.
    expect(shaped.status).toBe("completed");
    expect(typeof JSON.parse(shaped.output_text).ok).toBe("boolean");
    expect(shaped.text?.format).toMatchObject({ type: "json_schema", name: "answer" });
    // Any JSON (this model's strings may run past the limit, so only the start is certain).
    const json = await client.responses.create({ model: CHAT, input: "Answer.", text: { format: { type: "json_object" } }, max_output_tokens: 8, temperature: 0 });
    expect(json.output_text).toMatch(/^\s*[{[]/);
  });

  test("store: false keeps nothing; delete removes one; both then answer 404 as OpenAI's client reads it", async () => {
    const unstored = await client.responses.create({ model: STORIES, input: "Once", store: false, max_output_tokens: 3 });
    expect((unstored as unknown as { store: boolean }).store).toBe(false);
    const missing = await client.responses.retrieve(unstored.id).catch((e) => e);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    const continued = await client.responses.create({ model: STORIES, input: "x", previous_response_id: unstored.id }).catch((e) => e);
    expect(continued.status).toBe(404);
    expect(continued.message).toContain("previous_response_id");
    const stored = await client.responses.create({ model: STORIES, input: "Once", max_output_tokens: 3 });
    await client.responses.delete(stored.id);
    expect(await client.responses.retrieve(stored.id).catch((e) => e.status)).toBe(404);
    const again = await fetch(`${queen.url}/v1/responses/${stored.id}`, { method: "DELETE" });
    expect(again.status).toBe(404);
    const other = await client.responses.create({ model: STORIES, input: "Once", max_output_tokens: 3 });
    expect(await (await fetch(`${queen.url}/responses/${other.id}`, { method: "DELETE" })).json()).toEqual({ id: other.id, object: "response", deleted: true });
  });

  test(`the store keeps the newest ${STORED}: the oldest are dropped`, async () => {
    const ids: string[] = [];
    for (let i = 0; i <= STORED; i++) ids.push((await client.responses.create({ model: STORIES, input: "Once", max_output_tokens: 2 })).id);
    expect(await client.responses.retrieve(ids[0]!).catch((e) => e.status)).toBe(404);
    for (const id of ids.slice(1)) expect((await client.responses.retrieve(id)).id).toBe(id);
  });

  test("bad input: a 400 in OpenAI's shape that names what is wrong; also at /responses without /v1", async () => {
    const refused = async (body: Record<string, unknown>, expected: RegExp) => {
      const res = await postJson(`${queen.url}/responses`, { model: STORIES, ...body });
      expect(res.status).toBe(400);
      const { error } = await res.json();
      expect(error.type).toBe("invalid_request_error");
      expect(error.message).toMatch(expected);
    };
    await refused({ input: [] }, /at least one item/);
    await refused({ input: [{ type: "reasoning", summary: [] }] }, /type reasoning are not supported/);
    await refused({ input: [{ role: "user", content: [{ type: "input_image", image_url: "data:," }] }] }, /no vision support/);
    await refused({ input: "x", tools: [{ type: "web_search" }] }, /only function tools/);
    await refused({ input: "x", tool_choice: "required" }, /no tools/);
    await refused({ input: "x", max_output_tokens: 0 }, /max_output_tokens/);
    await refused({ input: [{ type: "function_call_output", call_id: "nope", output: "x" }] }, /which no assistant message called/);
    const ok = await postJson(`${queen.url}/responses`, { model: STORIES, input: "Once", max_output_tokens: 2 });
    expect((await ok.json()).status).toBe("incomplete");
  });
});
