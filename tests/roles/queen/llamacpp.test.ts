// llama-server's own API through a real queen: the model chosen by `model` (or `?model=`), or the only one loaded;
// answers relayed as the worker wrote them (whole and streamed, ending whole); /props and /slots of the model's workers;
// the OpenAI paths without /v1 through the official client; errors in llama-server's shape.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import OpenAI from "openai";
import { qwenChatModel } from "../../support/chat-model";
import { removeTempHomes, tempHome } from "../../support/home";
import { STORIES_MODEL } from "../../support/paths";
import { killStartedProcesses } from "../../support/processes";
import { queenWorkers, startQueen, tokensGenerated } from "../../support/queen";
import { collectSse, postJson } from "../../support/sse";

let queen: Awaited<ReturnType<typeof startQueen>>;
beforeAll(async () => {
  const home = tempHome("rbee-queen-");
  writeFileSync(join(home, "config.toml"), `[models.tales]\nmodel = "${STORIES_MODEL}"\nctx = 256\n[models.chatty]\nmodel = "${await qwenChatModel()}"\nctx = 128\nslots = 1\n`);
  queen = await startQueen([], home);
});
afterAll(async () => {
  await killStartedProcesses();
  removeTempHomes();
});

const GREEDY = { temperature: 0 };
const post = (path: string, body: unknown) => postJson(`${queen.url}${path}`, body);

describe("llama-server's API on the queen", () => {
  test("without a model and none loaded: a 400 that says to name one", async () => {
    const res = await post("/completion", { prompt: "Once", n_predict: 2 });
    expect(res.status).toBe(400);
    const { error } = await res.json();
    expect(error).toMatchObject({ code: 400, type: "invalid_request_error" });
    expect(error.message).toContain("no model is loaded");
  });

  test("/completion by model name, whole and streamed; then without a name, the only model loaded", async () => {
    const counted = await tokensGenerated(queen.url);
    const whole = await (await post("/completion", { model: "tales", prompt: "Once upon a time", n_predict: 10, ...GREEDY })).json();
    expect(whole).toMatchObject({ stop: true, stop_type: "limit", tokens_predicted: 10, model: "tales" });
    expect(await tokensGenerated(queen.url)).toBe(counted + 10);
    const res = await post("/completion", { model: "tales", prompt: "Once upon a time", n_predict: 10, stream: true, ...GREEDY });
    const records = (await collectSse(res)).map((e) => JSON.parse(e.data));
    expect(records.slice(0, -1).map((r) => r.content).join("")).toBe(whole.content);
    expect(records.at(-1)).toMatchObject({ stop: true, tokens_predicted: 10 });
    const unnamed = await (await post("/completion", { prompt: "Once upon a time", n_predict: 10, ...GREEDY })).json();
    expect(unnamed.content).toBe(whole.content);
  });

  test("/tokenize, /detokenize and /apply-template relayed to the model's worker", async () => {
    const { tokens } = await (await post("/tokenize", { model: "tales", content: "Once upon a time" })).json();
    expect(tokens.length).toBe(4);
    expect((await (await post("/detokenize", { tokens })).json()).content.trim()).toBe("Once upon a time");
    const { prompt } = await (await post("/apply-template", { model: "tales", messages: [{ role: "user", content: "hi" }] })).json();
    expect(prompt).toContain("hi");
  });

  test("/props?model= and /slots?model=: the model's worker's, each slot with its worker", async () => {
    const props = await (await fetch(`${queen.url}/props?model=tales`)).json();
    expect(props.default_generation_settings.n_ctx).toBe(256);
    const slots = await (await fetch(`${queen.url}/slots?model=tales`)).json();
    const [worker] = (await queenWorkers(queen.url)).filter((w) => slots.some((s: { worker: string }) => s.worker === w.id));
    expect(worker).toBeDefined();
    expect(slots.length).toBe(worker!.slots_total);
    expect(await (await fetch(`${queen.url}/health`)).json()).toEqual({ status: "ok" });
  });

  test("/props of a model not loaded starts it; with two loaded, a request without a model is refused by name", async () => {
    const props = await (await fetch(`${queen.url}/props?model=chatty`)).json();
    expect(props).toMatchObject({ total_slots: 1, default_generation_settings: { n_ctx: 128 } });
    expect(props.chat_template).toContain("im_start");
    const res = await post("/completion", { prompt: "Once", n_predict: 2 });
    expect(res.status).toBe(400);
    expect((await res.json()).error.message).toMatch(/2 models are loaded/);
    const unknown = await fetch(`${queen.url}/slots?model=nope`);
    expect(unknown.status).toBe(404);
    expect((await unknown.json()).error.code).toBe(404);
  });

  test("bad input gets llama-server's error shape from the queen too", async () => {
    for (const body of [{ model: "tales", prompt: "x", grammar: "root ::= nope" }, { model: "tales", prompt: 7 }, { model: "tales", prompt: "x", n_probs: -1 }]) {
      const res = await post("/completion", body);
      expect(res.status).toBe(400);
      const { error } = await res.json();
      expect(error.code).toBe(400);
      expect(error.message.length).toBeGreaterThan(5);
    }
  });

  test("the OpenAI routes without /v1, through the official client", async () => {
    const client = new OpenAI({ baseURL: queen.url, apiKey: "unused", maxRetries: 0 });
    const completion = await client.completions.create({ model: "tales", prompt: "Once upon a time", max_tokens: 5, temperature: 0 });
    expect(completion.choices[0]!.text.length).toBeGreaterThan(0);
    const stream = await client.chat.completions.create({ model: "tales", messages: [{ role: "user", content: "hi" }], max_tokens: 4, stream: true });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    expect(text.length).toBeGreaterThan(0);
    expect((await client.models.list()).data.map((m) => m.id)).toContain("tales:latest");
    const unknown = await client.completions.create({ model: "nope", prompt: "x" }).catch((e) => e);
    expect(unknown).toMatchObject({ status: 404, code: "model_not_found" });
  });
});
