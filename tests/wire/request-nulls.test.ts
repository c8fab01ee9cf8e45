// null is "not given" for every optional field of every dialect's request schema (src/wire/request.ts): each field that
// may be left out is sent as null, and the body parses as if it were left out; a required field as null is still refused.
import { describe, expect, test } from "bun:test";
import type { z } from "zod";
import { MessagesRequest } from "../../src/wire/anthropic";
import { OllamaChatRequest, OllamaCopyRequest, OllamaEmbedRequest, OllamaGenerateRequest, OllamaLegacyEmbeddingsRequest, OllamaModelRequest, OllamaOptions, OllamaPullRequest } from "../../src/wire/ollama";
import { ChatRequest, CompletionRequest, EmbeddingsRequest, RerankRequest } from "../../src/wire/openai";
import { ApplyTemplateRequest, DetokenizeRequest, LlamaCompletionRequest, TokenizeRequest } from "../../src/wire/llamacpp";
import { ResponsesRequest } from "../../src/wire/responses";
import { ExecuteRequest, TaskRequest } from "../../src/wire/worker";
import { workerWithOpenAiClient } from "../support/worker";

const schemas: [string, z.ZodObject, Record<string, unknown>][] = [
  ["OpenAI completions", CompletionRequest, { prompt: "Once" }],
  ["OpenAI chat", ChatRequest, { messages: [{ role: "user", content: "Hi" }] }],
  ["OpenAI embeddings", EmbeddingsRequest, { input: "Hi" }],
  ["rerank", RerankRequest, { query: "q", documents: ["d"] }],
  ["Anthropic messages", MessagesRequest, { model: "m", max_tokens: 8, messages: [{ role: "user", content: "Hi" }] }],
  ["Ollama chat", OllamaChatRequest, { model: "m" }],
  ["Ollama generate", OllamaGenerateRequest, { model: "m" }],
  ["Ollama options", OllamaOptions.unwrap() as unknown as z.ZodObject, {}],
  ["Ollama embed", OllamaEmbedRequest, { model: "m", input: "Hi" }],
  ["Ollama legacy embeddings", OllamaLegacyEmbeddingsRequest, { model: "m", prompt: "Hi" }],
  ["Ollama show", OllamaModelRequest, { model: "m" }],
  ["Ollama pull", OllamaPullRequest, { model: "m" }],
  ["Ollama copy", OllamaCopyRequest, { source: "a", destination: "b" }],
  ["OpenAI responses", ResponsesRequest, { model: "m", input: "Hi" }],
  ["llama-server completion", LlamaCompletionRequest, { prompt: "Once" }],
  ["llama-server tokenize", TokenizeRequest, { content: "Once" }],
  ["llama-server detokenize", DetokenizeRequest, {}],
  ["llama-server apply-template", ApplyTemplateRequest, { messages: [{ role: "user", content: "Hi" }] }],
  ["rbee execute", ExecuteRequest, { prompt: "Once" }],
  ["rbee task", TaskRequest, { prompt: "Once", model: "m" }],
];

describe("null means not given", () => {
  for (const [name, schema, minimal] of schemas) {
    test(`${name}: every optional field as null parses as left out; a required one as null is refused`, () => {
      const plain = schema.parse(minimal);
      const fields = Object.keys(schema.shape);
      const optional = fields.filter((key) => !(key in minimal) && schema.safeParse({ ...minimal, [key]: undefined }).success);
      // Every schema here has some, but Ollama's copy (two required names).
      expect(optional.length > 0 || name === "Ollama copy").toBe(true);
      for (const key of optional) expect({ key, parsed: schema.parse({ ...minimal, [key]: null }) }).toEqual({ key, parsed: plain });
      expect(schema.parse({ ...minimal, ...Object.fromEntries(optional.map((k) => [k, null])) })).toEqual(plain);
      for (const key of Object.keys(minimal)) expect(schema.safeParse({ ...minimal, [key]: null }).success).toBe(false);
    });
  }
});

describe("through a worker, with the official openai client", () => {
  const served = workerWithOpenAiClient();
  test("temperature, top_p, n, seed, max_tokens, max_completion_tokens and stream as null: served with the defaults", async () => {
    const nulls = { temperature: null, top_p: null, n: null, seed: null, max_tokens: null, max_completion_tokens: null, stream: null } as Record<string, null>;
    const chat = await served.client.chat.completions.create({ model: "stories260K.gguf", messages: [{ role: "user", content: "Once upon a time" }], ...nulls } as never);
    expect((chat as { choices: unknown[] }).choices).toHaveLength(1);
    const { stream: _, max_completion_tokens: __, ...completionNulls } = nulls;
    const completion = await served.client.completions.create({ model: "stories260K.gguf", prompt: "Once upon a time", ...completionNulls, stream: null } as never);
    // OpenAI's default of 16 tokens for completions.
    expect((completion as { usage: { completion_tokens: number } }).usage.completion_tokens).toBeLessThanOrEqual(16);
  });
});
