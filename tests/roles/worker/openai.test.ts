// The worker's OpenAI-compatible routes, driven by the official openai served.client.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import type { RbeeProcess } from "../../support/processes";
import { startWorker, workerWithOpenAiClient } from "../../support/worker";

const served = workerWithOpenAiClient();

describe("OpenAI-compatible API", () => {
  test("lists the served model", async () => {
    const models = await served.client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(["stories260K.gguf"]);
  });

  test("completions, not streamed, with usage", async () => {
    const res = await served.client.completions.create({ model: "stories260K.gguf", prompt: "Once upon a time", max_tokens: 40, seed: 3 });
    expect(res.object).toBe("text_completion");
    expect(res.choices).toHaveLength(1);
    expect(res.choices[0]!.text).toMatch(/there (was|lived)/);
    expect(res.choices[0]!.finish_reason).toBe("length");
    expect(res.usage).toEqual({ prompt_tokens: 5, completion_tokens: 40, total_tokens: 45, prompt_tokens_details: { cached_tokens: 0 } });
  });

  test("completions, streamed, with usage at the end", async () => {
    const stream = await served.client.completions.create({ model: "stories260K.gguf", prompt: "Once upon a time", max_tokens: 30, stream: true, stream_options: { include_usage: true }, seed: 3 });
    let text = "";
    let finish: string | null | undefined;
    let usage;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      if (chunk.choices[0]) {
        text += chunk.choices[0].text;
        finish ??= chunk.choices[0].finish_reason;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(chunks).toBeGreaterThan(10);
    expect(text).toMatch(/there (was|lived)/);
    expect(finish).toBe("length");
    // The slot still holds the same prompt from the test before: all of it but the last token is reused.
    expect(usage).toEqual({ prompt_tokens: 5, completion_tokens: 30, total_tokens: 35, prompt_tokens_details: { cached_tokens: 4 } });
    const whole = await served.client.completions.create({ model: "stories260K.gguf", prompt: "Once upon a time", max_tokens: 30, seed: 3 });
    expect(whole.choices[0]!.text).toBe(text);
    const uncached = await served.client.completions.create({ model: "stories260K.gguf", prompt: "Once upon a time", max_tokens: 30, seed: 3, cache_prompt: false } as OpenAI.CompletionCreateParamsNonStreaming);
    expect(uncached.usage!.prompt_tokens_details).toEqual({ cached_tokens: 0 });
    expect(uncached.choices[0]!.text).toBe(text);
  });

  test("chat completions through the model's template, streamed and not", async () => {
    const messages = [
      { role: "system" as const, content: "You tell stories." },
      { role: "user" as const, content: "Tell me about a cat." },
    ];
    const res = await served.client.chat.completions.create({ model: "stories260K.gguf", messages, max_tokens: 20, seed: 1 });
    expect(res.object).toBe("chat.completion");
    expect(res.choices[0]!.message.role).toBe("assistant");
    expect(res.choices[0]!.message.content!.length).toBeGreaterThan(0);
    expect(res.usage!.completion_tokens).toBeGreaterThan(0);
    expect(res.usage!.completion_tokens).toBeLessThanOrEqual(20);
    expect(res.usage!.prompt_tokens).toBeGreaterThan(10);

    const stream = await served.client.chat.completions.create({ model: "stories260K.gguf", messages, max_tokens: 20, seed: 1, stream: true, stream_options: { include_usage: true } });
    let content = "";
    let role: string | undefined;
    let usage;
    for await (const chunk of stream) {
      role ??= chunk.choices[0]?.delta.role;
      content += chunk.choices[0]?.delta.content ?? "";
      usage ??= chunk.usage ?? undefined;
    }
    expect(role).toBe("assistant");
    expect(content).toBe(res.choices[0]!.message.content!);
    // The same messages again: the slot holds their prompt, and only its last token is evaluated again.
    expect(usage).toEqual({ ...res.usage!, prompt_tokens_details: { cached_tokens: res.usage!.prompt_tokens - 1 } });
  });

  test("a chat's next turn reuses the cells of the turn before: only the new messages are evaluated", async () => {
    const first = [
      { role: "system" as const, content: "You tell stories about animals." },
      { role: "user" as const, content: "Tell me about a dog." },
    ];
    const turn1 = await served.client.chat.completions.create({ model: "stories260K.gguf", messages: first, max_tokens: 15, seed: 2 });
    const reply = turn1.choices[0]!.message.content!;
    const next = [...first, { role: "assistant" as const, content: reply }, { role: "user" as const, content: "And then?" }];
    const turn2 = await served.client.chat.completions.create({ model: "stories260K.gguf", messages: next, max_tokens: 15, seed: 2 });
    const { prompt_tokens, prompt_tokens_details } = turn2.usage!;
    expect(prompt_tokens).toBeGreaterThan(turn1.usage!.prompt_tokens);
    // The first turn's prompt is kept whole (the template renders the history the same way each turn); its reply
    // and the new message are evaluated.
    expect(prompt_tokens_details!.cached_tokens).toBe(turn1.usage!.prompt_tokens);
  });

  test("bad requests come back as OpenAI client errors in OpenAI's error shape, rbee's code beside", async () => {
    const err = await served.client.completions.create({ model: "m", prompt: "", max_tokens: 5 }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.error).toEqual({ message: "prompt: must not be empty", type: "invalid_request_error", param: null, code: "BAD_REQUEST", rbee_code: "BAD_REQUEST" });
    const missing = await fetch(`${served.worker.url}/v1/models/nope`);
    expect((await missing.json()).error).toEqual({ message: "no route GET /v1/models/nope", code: "NOT_FOUND" });
    const tooLong = await served.client.completions.create({ model: "m", prompt: "Once", max_tokens: 100_000 }).catch((e) => e);
    expect(tooLong.status).toBe(400);
    // What LiteLLM and LangChain look for to trim a conversation: OpenAI's type, param and code, rbee's code beside.
    expect(tooLong.error).toMatchObject({ type: "invalid_request_error", param: "messages", code: "context_length_exceeded", rbee_code: "CONTEXT_OVERFLOW" });
    const tooManyChoices = await served.client.completions.create({ model: "m", prompt: "Once", n: 9 }).catch((e) => e);
    expect(tooManyChoices.status).toBe(400);
    expect(tooManyChoices.error.message).toContain("n may be at most 8");
    const noMessages = await served.client.chat.completions.create({ model: "m", messages: [] }).catch((e) => e);
    expect(noMessages.status).toBe(400);
    expect(noMessages.error.message).toContain("messages");
  });
});
