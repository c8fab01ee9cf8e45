// The OpenAI request fields that steer generation, on a real worker through the official client: sampling controls,
// several choices (n), JSON output through a grammar, and a clear 400 for what rbee does not serve yet.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { z } from "zod";
import type { RbeeProcess } from "../../support/processes";
import { startWorker, workerWithOpenAiClient } from "../../support/worker";

const served = workerWithOpenAiClient(["--slots", "8"]);

const MODEL = "stories260K.gguf";
const PROMPT = "Once upon a time";
const complete = (extra: Record<string, unknown>) =>
  served.client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 30, seed: 11, ...extra } as OpenAI.CompletionCreateParamsNonStreaming);

describe("sampling controls", () => {
  test("the same seed and request give the same text; another seed another", async () => {
    const [a, b, c] = await Promise.all([complete({}), complete({}), complete({ seed: 12 })]);
    expect(a.choices[0]!.text).toBe(b.choices[0]!.text);
    expect(a.choices[0]!.text).not.toBe(c.choices[0]!.text);
  });

  test("top_k 1 is greedy: any seed and temperature give the greedy text", async () => {
    const greedy = await complete({ temperature: 0 });
    const topK1 = await complete({ top_k: 1, temperature: 1.5, seed: 99 });
    expect(topK1.choices[0]!.text).toBe(greedy.choices[0]!.text);
  });

  test("logit_bias +100 on one token makes every token that one; -100 bans the greedy text's first token", async () => {
    const greedy = await complete({ temperature: 0, max_tokens: 5 });
    // Token 400 of stories260K's vocabulary is "▁do": biased by +100 it is all the model says.
    const forced = await complete({ temperature: 0, max_tokens: 6, logit_bias: { "400": 100 } });
    expect(forced.choices[0]!.text.trim().split(" ")).toEqual(Array(6).fill("do"));
    expect(forced.choices[0]!.text).not.toBe(greedy.choices[0]!.text.slice(0, forced.choices[0]!.text.length));
    expect(forced.usage!.completion_tokens).toBe(6);
    const banned = await complete({ temperature: 0, max_tokens: 5, logit_bias: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [String(i + 300), -100])) });
    expect(banned.choices[0]!.text.length).toBeGreaterThan(0);
  });

  test("frequency and presence penalties change greedy text that repeats itself; repeat_penalty too", async () => {
    const base = { temperature: 0, max_tokens: 80 };
    const plain = (await complete(base)).choices[0]!.text;
    for (const extra of [{ frequency_penalty: 2 }, { presence_penalty: 2 }, { repeat_penalty: 1.8 }]) {
      const penalized = (await complete({ ...base, ...extra })).choices[0]!.text;
      expect(penalized).not.toBe(plain);
    }
  });

  test("min_p 1 keeps only the most likely token: the greedy text at any temperature", async () => {
    const greedy = await complete({ temperature: 0 });
    expect((await complete({ min_p: 1, temperature: 1.5, seed: 5 })).choices[0]!.text).toBe(greedy.choices[0]!.text);
  });

  test("stop strings end the text before them", async () => {
    const full = (await complete({ temperature: 0, max_tokens: 60 })).choices[0]!.text;
    const word = full.trim().split(/\s+/)[3]!;
    const stopped = await complete({ temperature: 0, max_tokens: 60, stop: [word] });
    expect(stopped.choices[0]!.text).toBe(full.slice(0, full.indexOf(word)));
    expect(stopped.choices[0]!.finish_reason).toBe("stop");
  });
});

describe("several choices (n)", () => {
  test("n=3: three choices with their own seeds, usage summed; the same request gives the same three", async () => {
    const a = await complete({ n: 3 });
    expect(a.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(new Set(a.choices.map((c) => c.text)).size).toBe(3);
    expect(a.usage!.completion_tokens).toBe(90);
    expect(a.usage!.prompt_tokens).toBe(5);
    const b = await complete({ n: 3 });
    expect(b.choices.map((c) => c.text)).toEqual(a.choices.map((c) => c.text));
    // Choice i is the single request with seed + i.
    expect((await complete({ seed: 13 })).choices[0]!.text).toBe(a.choices[2]!.text);
  });

  test("n=2 streamed: chunks carry each choice's index, and each choice's text matches the non-streamed one", async () => {
    const plain = await served.client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: PROMPT }], max_tokens: 20, seed: 4, n: 2 });
    const stream = await served.client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: PROMPT }], max_tokens: 20, seed: 4, n: 2, stream: true });
    const texts = ["", ""];
    const finished: (string | null)[] = [null, null];
    for await (const chunk of stream)
      for (const choice of chunk.choices) {
        texts[choice.index] += choice.delta.content ?? "";
        if (choice.finish_reason) finished[choice.index] = choice.finish_reason;
      }
    expect(texts).toEqual(plain.choices.map((c) => c.message.content ?? ""));
    expect(finished).toEqual(plain.choices.map((c) => c.finish_reason));
  });
});

describe("structured output", () => {
  // stories260K writes dialogue: in a JSON object it goes on adding "line": "line" pairs for as long as it may. A bias
  // towards "}" (its byte token, 128) lets the object close; the grammar still decides what may follow what.
  const CLOSE_SOONER = { "128": 12 };

  test("response_format json_object: the content always parses", async () => {
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const res = await served.client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "A story as JSON" }], max_tokens: 400, seed, logit_bias: CLOSE_SOONER, response_format: { type: "json_object" } });
      expect(res.choices[0]!.finish_reason).toBe("stop");
      expect(() => JSON.parse(res.choices[0]!.message.content!)).not.toThrow();
    }
  });

  test("response_format json_schema: the content parses and fits the schema, streamed too", async () => {
    const schema = {
      type: "object",
      properties: { hero: { type: "string", enum: ["Lily", "Tom", "Sue"] }, mood: { type: "string", enum: ["happy", "sad"] }, friends: { type: "array", items: { type: "string", enum: ["cat", "dog"] }, maxItems: 3 } },
      required: ["hero", "mood", "friends"],
      additionalProperties: false,
    };
    const Story = z.strictObject({ hero: z.enum(["Lily", "Tom", "Sue"]), mood: z.enum(["happy", "sad"]), friends: z.array(z.enum(["cat", "dog"])).max(3) });
    const format = { type: "json_schema" as const, json_schema: { name: "story", schema, strict: true } };
    const seen = new Set<string>();
    for (const seed of [1, 2, 3, 4]) {
      const res = await served.client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "Once upon a time" }], max_tokens: 200, seed, temperature: 1, response_format: format });
      expect(res.choices[0]!.finish_reason).toBe("stop");
      seen.add(JSON.stringify(Story.parse(JSON.parse(res.choices[0]!.message.content!))));
    }
    expect(seen.size).toBeGreaterThan(1); // sampled, not one canned answer
    const stream = await served.client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "Once" }], max_tokens: 200, seed: 9, response_format: format, stream: true });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    expect(Story.parse(JSON.parse(text))).toBeTruthy();
  });

  test("a constrained request and plain ones share the worker at once, each as asked", async () => {
    const schemaReq = served.client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 400, seed: 3, logit_bias: CLOSE_SOONER, response_format: { type: "json_object" } } as OpenAI.CompletionCreateParamsNonStreaming);
    const plain = Array.from({ length: 4 }, (_, i) => complete({ seed: 20 + i, max_tokens: 40 }));
    const [json, ...texts] = await Promise.all([schemaReq, ...plain]);
    expect(json!.choices[0]!.finish_reason).toBe("stop");
    expect(() => JSON.parse(json!.choices[0]!.text)).not.toThrow();
    for (const t of texts) expect(t!.choices[0]!.text).toMatch(/[a-z]+ [a-z]+/);
    for (const [i, t] of texts.entries()) expect(t!.choices[0]!.text).toBe((await complete({ seed: 20 + i, max_tokens: 40 })).choices[0]!.text);
  });
});

describe("log probabilities", () => {
  test("chat: one entry per token, from the model's own distribution, with the most likely alternatives", async () => {
    const res = await served.client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: PROMPT }], max_tokens: 20, temperature: 0, logprobs: true, top_logprobs: 3 });
    const content = res.choices[0]!.logprobs!.content!;
    expect(content).toHaveLength(res.usage!.completion_tokens);
    expect(content.map((t) => t.token).join("")).toBe(res.choices[0]!.message.content!);
    for (const t of content) {
      expect(t.logprob).toBeLessThanOrEqual(0);
      expect(t.top_logprobs).toHaveLength(3);
      expect(t.top_logprobs.map((x) => x.logprob)).toEqual(t.top_logprobs.map((x) => x.logprob).sort((a, b) => b - a));
      expect(t.top_logprobs.reduce((sum, x) => sum + Math.exp(x.logprob), 0)).toBeLessThanOrEqual(1.000001);
      // Greedy: the chosen token is the most likely one.
      expect(t.top_logprobs[0]!.token).toBe(t.token);
      expect(t.top_logprobs[0]!.logprob).toBeCloseTo(t.logprob, 6);
      expect(t.bytes).toEqual([...Buffer.from(t.token)]);
    }
  });

  test("they are the raw distribution's: a token forced by logit_bias keeps its own (low) log probability", async () => {
    const res = await served.client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: PROMPT }], max_tokens: 4, temperature: 0, logit_bias: { "400": 100 }, logprobs: true, top_logprobs: 1 });
    for (const t of res.choices[0]!.logprobs!.content!) {
      expect(t.token.trim()).toBe("do");
      expect(t.logprob).toBeLessThan(t.top_logprobs[0]!.logprob);
    }
  });

  test("completions: tokens, token_logprobs, top_logprobs and text offsets, streamed and not", async () => {
    const res = await complete({ max_tokens: 12, logprobs: 2 });
    const lp = res.choices[0]!.logprobs!;
    expect(lp.tokens!.join("")).toBe(res.choices[0]!.text);
    expect(lp.token_logprobs).toHaveLength(12);
    expect(lp.top_logprobs!.every((alternatives) => Object.keys(alternatives).length <= 2)).toBe(true);
    expect(lp.text_offset).toEqual(lp.tokens!.map((_, i) => lp.tokens!.slice(0, i).join("").length));
    const stream = await served.client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: 12, seed: 11, logprobs: 2, stream: true });
    const streamed: string[] = [];
    const values: number[] = [];
    for await (const chunk of stream) {
      streamed.push(...(chunk.choices[0]?.logprobs?.tokens ?? []));
      values.push(...(chunk.choices[0]?.logprobs?.token_logprobs ?? []));
    }
    expect(streamed).toEqual(lp.tokens!);
    expect(values).toEqual(lp.token_logprobs!);
  });

  test("a request without logprobs gets null, as OpenAI answers", async () => {
    expect((await complete({ max_tokens: 3 })).choices[0]!.logprobs).toBeNull();
  });
});

describe("refused, with a message that says so", () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ["n over the limit", { n: 9 }, "n may be at most 8"],
    ["top_logprobs over 20", { logprobs: true, top_logprobs: 21 }, "top_logprobs"],
    ["top_logprobs without logprobs", { top_logprobs: 3 }, "top_logprobs needs logprobs: true"],
    ["the deprecated functions", { functions: [{ name: "f" }] }, "use tools"],
    ["an image part", { messages: [{ role: "user", content: [{ type: "text", text: "What is this?" }, { type: "image_url", image_url: { url: "data:image/png;base64,AA" } }] }] }, "messages.0.content.1: an image_url part, but this model has no vision support: rbee serves text-only models (send the text alone)"],
    ["an audio part", { messages: [{ role: "user", content: [{ type: "input_audio", input_audio: { data: "AA", format: "wav" } }] }] }, "messages.0.content.0: an input_audio part, but this model has no vision support"],
    ["a text part without its text", { messages: [{ role: "user", content: [{ type: "text" }] }] }, "messages.0.content.0.text: a text part needs its text"],
    ["a logit_bias token outside the vocabulary", { logit_bias: { "600": 5 } }, "token 600 is not in the model's vocabulary of 512 tokens"],
    ["a logit_bias key that is no token id", { logit_bias: { hello: 5 } }, "logit_bias"],
    ["a logit_bias over 100", { logit_bias: { "5": 101 } }, "logit_bias"],
    ["frequency_penalty out of range", { frequency_penalty: 3 }, "frequency_penalty"],
    ["an unknown response_format type", { response_format: { type: "yaml" } }, "response_format"],
  ];
  for (const [name, extra, message] of cases)
    test(name, async () => {
      const res = await fetch(`${served.worker.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: PROMPT }], max_tokens: 5, ...extra }),
      });
      expect(res.status).toBe(400);
      const body = await res.json();
      expect(body.error.code).toBe("BAD_REQUEST");
      expect(body.error.message).toContain(message);
    });

  test("unknown fields stay ignored", async () => {
    const res = await served.client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: PROMPT }], max_tokens: 5, user: "someone", metadata: { a: "b" } } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect(res.choices[0]!.message.content!.length).toBeGreaterThan(0);
  });
});
