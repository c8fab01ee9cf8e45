// POST /v1/embeddings and /v1/rerank on a real worker, through the official openai client: several inputs in one
// request (embedded a decode of several at a time, each as it would be alone), token arrays, base64, and bad input.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import type { RbeeProcess } from "../../support/processes";
import { postJson } from "../../support/sse";
import { startWorker, workerWithOpenAiClient } from "../../support/worker";

const served = workerWithOpenAiClient();

const MODEL = "stories260K.gguf";
const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const TEXTS = ["Once upon a time", "there was a little girl named Lily", "She loved to play in the park", "The sun was hot", "A big dog barked", "Tom had a red ball", "They ate cake", "The bird sang", "It was a happy day", "The end"];

describe("embeddings", () => {
  test("one text: one unit vector of the model's size, with usage", async () => {
    const res = await served.client.embeddings.create({ model: MODEL, input: "Once upon a time" });
    expect(res.object).toBe("list");
    expect(res.data).toHaveLength(1);
    expect(res.data[0]!.embedding).toHaveLength(64); // stories260K's embedding width
    expect(norm(res.data[0]!.embedding)).toBeCloseTo(1, 5);
    expect(res.usage).toEqual({ prompt_tokens: 5, total_tokens: 5 });
  });

  test("ten texts in one request: in order, each the same vector as when it is embedded alone", async () => {
    const together = await served.client.embeddings.create({ model: MODEL, input: TEXTS });
    expect(together.data.map((d) => d.index)).toEqual(TEXTS.map((_, i) => i));
    const alone = await Promise.all(TEXTS.map((t) => served.client.embeddings.create({ model: MODEL, input: t })));
    for (const [i, d] of together.data.entries()) {
      const single = alone[i]!.data[0]!.embedding;
      expect(Math.max(...d.embedding.map((x, j) => Math.abs(x - single[j]!)))).toBeLessThan(1e-4);
    }
    expect(together.usage.prompt_tokens).toBe(alone.reduce((s, r) => s + r.usage.prompt_tokens, 0));
    // Different texts, different vectors.
    expect(together.data[0]!.embedding).not.toEqual(together.data[1]!.embedding);
  });

  test("token arrays are embedded as given; base64 carries the same float32 values", async () => {
    const tokens = await served.client.embeddings.create({ model: MODEL, input: [[1, 400, 401], [1, 300]] });
    expect(tokens.data).toHaveLength(2);
    expect(tokens.usage.prompt_tokens).toBe(5);
    const floats = await served.client.embeddings.create({ model: MODEL, input: "The sun was hot", encoding_format: "float" });
    const raw = await (await postJson(`${served.worker.url}/v1/embeddings`, { input: "The sun was hot", encoding_format: "base64" })).json();
    const decoded = new Float32Array(new Uint8Array(Buffer.from(raw.data[0].embedding, "base64")).buffer);
    expect(Array.from(decoded)).toEqual(floats.data[0]!.embedding.map((x) => Math.fround(x)));
  });

  test("bad input is refused with a message that says why", async () => {
    const cases: [unknown, string][] = [
      [{ input: "" }, "input"],
      [{ input: [] }, "input"],
      [{ input: [[1, 99999]] }, "token 99999 is not in the model's vocabulary"],
      [{ input: "Once", dimensions: 32 }, "cannot give 32"],
      [{ input: "Once", encoding_format: "int8" }, "encoding_format"],
      [{ input: "Once upon a time ".repeat(400) }, "at most 1024"],
      [{ input: 42 }, "input"],
    ];
    for (const [body, message] of cases) {
      const res = await postJson(`${served.worker.url}/v1/embeddings`, body);
      const json = await res.json();
      expect({ status: res.status, message: json.error?.message }).toMatchObject({ status: 400, message: expect.stringContaining(message) });
    }
    expect((await served.client.embeddings.create({ model: MODEL, input: "still serving" })).data).toHaveLength(1);
  });
});

describe("rerank", () => {
  test("a model that is not a reranker says so; a bad body is a 400", async () => {
    const res = await postJson(`${served.worker.url}/v1/rerank`, { query: "cat", documents: ["a cat", "a dog"] });
    expect(res.status).toBe(400);
    expect((await res.json()).error.message).toContain("this model cannot rank documents (it is not a reranker)");
    const bad = await postJson(`${served.worker.url}/v1/rerank`, { query: "cat", documents: [] });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.message).toContain("documents");
  });
});
