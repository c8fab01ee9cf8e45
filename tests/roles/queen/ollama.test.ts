// Ollama's API on a real queen, through the official `ollama` client: chat and generate (streamed and not) with
// Ollama's counters, options, JSON formats and tools; the model list, loaded models and their keep-alive; names made
// by copy; embeddings; a pull from a local Hub with progress; delete; and bad input in Ollama's error shape.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type ChatResponse, Ollama } from "ollama";
import { qwenChatModel } from "../../support/chat-model";
import { removeTempHomes, tempHome } from "../../support/home";
import { STORIES_HF_REF, startLocalHub } from "../../support/hub";
import { killStartedProcesses, runRbee, startRbee, waitFor } from "../../support/processes";
import { STORIES_MODEL } from "../../support/paths";
import { queenWorkers, startQueen, tokensGenerated } from "../../support/queen";

let queen: Awaited<ReturnType<typeof startQueen>>;
let ollama: Ollama;
beforeAll(async () => {
  queen = await startQueen(["--keep-alive", "1h"]);
  const added = await runRbee(["hive", "models", "download", await qwenChatModel(), "--port", "1"], { env: { RBEE_HOME: queen.home } });
  expect(added.code).toBe(0);
  ollama = new Ollama({ host: queen.url });
});
afterAll(async () => {
  await killStartedProcesses();
  removeTempHomes();
});

describe("Ollama API on the queen", () => {
  test("the probes clients use: GET / and HEAD /, /api/version", async () => {
    expect((await fetch(queen.url)).status).toBe(200);
    expect((await fetch(queen.url, { method: "HEAD" })).status).toBe(200);
    expect((await ollama.version()).version).toMatch(/^\d+\.\d+\.\d+/);
  });

  test("generate, not streamed: the text, done_reason and Ollama's counters and durations", async () => {
    const res = await ollama.generate({ model: "stories260K", prompt: "Once upon a time", raw: true, options: { num_predict: 20, seed: 3, temperature: 0 } });
    expect(res.response).toMatch(/there (was|lived)/);
    expect(res.done).toBe(true);
    expect(res.done_reason).toBe("length");
    expect(res.eval_count).toBe(20);
    expect(res.prompt_eval_count).toBe(5);
    expect(res.total_duration).toBeGreaterThan(0);
    expect(res.eval_duration).toBeGreaterThan(0);
    expect(res.total_duration).toBeGreaterThanOrEqual(res.eval_duration + res.prompt_eval_duration);
  });

  test("chat, streamed: pieces, then a closing record with the counters; the same text as not streamed", async () => {
    const messages = [{ role: "user", content: "Tell me a story" }];
    const countedBefore = await tokensGenerated(queen.url);
    const whole = await ollama.chat({ model: "stories260K:latest", messages, options: { num_predict: 25, seed: 7 } });
    const parts = await ollama.chat({ model: "stories260K", messages, options: { num_predict: 25, seed: 7 }, stream: true });
    let text = "";
    let last;
    let pieces = 0;
    for await (const part of parts) {
      text += part.message.content;
      pieces++;
      last = part;
    }
    expect(pieces).toBeGreaterThan(2);
    expect(text).toBe(whole.message.content);
    expect(last!.done).toBe(true);
    expect(last!.eval_count).toBe(whole.eval_count);
    // Both answers' tokens count in the queen's metrics, as OpenAI's do.
    expect(await tokensGenerated(queen.url)).toBe(countedBefore + whole.eval_count + last!.eval_count);
  });

  test("num_ctx bounds a request's context: without num_predict it generates up to it", async () => {
    const res = await ollama.generate({ model: "stories260K", prompt: "Once upon a time", raw: true, stream: false, options: { num_ctx: 12, temperature: 0 } });
    expect(res.prompt_eval_count + res.eval_count).toBeLessThanOrEqual(12);
    expect(res.eval_count).toBeGreaterThan(0);
  });

  test("options: seed repeats, stop ends early, format json parses, a schema fits", async () => {
    const opts = { num_predict: 30, seed: 11, temperature: 1 };
    const generate = (options: typeof opts & { stop?: string[] }) => ollama.generate({ model: "stories260K", prompt: "Once upon a time", raw: true, stream: false, options });
    const [a, b] = (await Promise.all([generate(opts), generate(opts)])).map((r) => r.response as string);
    expect(a).toBe(b!);
    const word = a!.trim().split(/\s+/)[2]!;
    expect(word.length).toBeGreaterThan(0);
    const stopped = await generate({ ...opts, stop: [word] });
    expect(stopped.response).toBe(a!.slice(0, a!.indexOf(word)));
    const schema = { type: "object", properties: { hero: { type: "string", enum: ["Lily", "Tom"] }, happy: { type: "boolean" } }, required: ["hero", "happy"] };
    const structured = await ollama.chat({ model: "stories260K", messages: [{ role: "user", content: "Once" }], format: schema, options: { num_predict: 60, seed: 2 } });
    const parsed = JSON.parse(structured.message.content);
    expect(["Lily", "Tom"]).toContain(parsed.hero);
    expect(typeof parsed.happy).toBe("boolean");
  });

  test("format json, system through the template, and a template of Ollama's own", async () => {
    const json = await ollama.generate({ model: "qwen-chat", prompt: "A story as JSON", format: "json", stream: false, options: { num_predict: 300, seed: 4 } });
    // The random model writes endless JSON strings; the grammar still makes it an object from the first character
    // (that it parses whole when it ends is the OpenAI tests' json_object, the same translation).
    expect(String(json.response).trimStart()[0]).toBe("{");
    const plain = await ollama.generate({ model: "qwen-chat", prompt: "Hi", stream: false, options: { num_predict: 1 } });
    // Qwen's template puts a default system prompt where none is given; a longer one shows in the count.
    const system = "You are a pirate who answers every question in rhymes of four lines, with a parrot's remarks in between, and never speaks of the sea.";
    const withSystem = await ollama.generate({ model: "qwen-chat", prompt: "Hi", system, stream: false, options: { num_predict: 1 } });
    expect(withSystem.prompt_eval_count).toBeGreaterThan(plain.prompt_eval_count);
    const templated = await ollama.generate({ model: "stories260K", prompt: "a cat", system: "Once upon a time,", template: "{{ .System }} there was {{ .Prompt }}", stream: false, options: { num_predict: 4 } });
    // The template's text, sent raw: the same prompt as asking for that text raw.
    const raw = await ollama.generate({ model: "stories260K", prompt: "Once upon a time, there was a cat", raw: true, stream: false, options: { num_predict: 4 } });
    expect(templated.prompt_eval_count).toBe(raw.prompt_eval_count);
  });

  test("tools: a forced call comes back as message.tool_calls with arguments as an object; the result goes back", async () => {
    const tools = [{ type: "function", function: { name: "get_weather", description: "Weather", parameters: { type: "object", properties: { city: { type: "string", enum: ["Paris", "Oslo"] } }, required: ["city"] } } }];
    // Ollama lets the model choose (the synthetic model writes text); rbee's tool_choice extension forces a call.
    const chosen = await ollama.chat({ model: "qwen-chat", messages: [{ role: "user", content: "Weather in Paris?" }], tools, options: { num_predict: 20, seed: 1 } });
    expect(chosen.message.tool_calls ?? []).toHaveLength(0);
    const called = (await ollama.chat({ model: "qwen-chat", messages: [{ role: "user", content: "Weather in Paris?" }], tools, tool_choice: "required", options: { num_predict: 1000, seed: 1 } } as never)) as unknown as ChatResponse;
    const calls = called.message.tool_calls!;
    expect(calls.length).toBeGreaterThanOrEqual(1);
    expect(calls[0]!.function.name).toBe("get_weather");
    expect(["Paris", "Oslo"]).toContain((calls[0]!.function.arguments as { city: string }).city);
    expect(called.done_reason).toBe("stop");
    const followUp = await ollama.chat({
      model: "qwen-chat",
      messages: [
        { role: "user", content: "Weather in Paris?" },
        { role: "assistant", content: "", tool_calls: [{ function: { name: "get_weather", arguments: { city: "Paris" } } }] },
        { role: "tool", content: "Sunny", tool_name: "get_weather" } as never,
      ],
      tools,
      options: { num_predict: 5, seed: 1 },
    });
    expect(followUp.done).toBe(true);
    expect(followUp.prompt_eval_count).toBeGreaterThan(called.prompt_eval_count);
  });

  test("tags, show and ps: models by name, their details, and what is loaded with its expiry", async () => {
    const tags = await ollama.list();
    const stories = tags.models.find((m) => m.name === "stories260K:latest")!;
    expect(stories).toMatchObject({ size: 1185376, details: { format: "gguf", family: "llama", quantization_level: expect.any(String) } });
    expect(stories.digest).toMatch(/^[0-9a-f]{64}$/);
    const shown = await ollama.show({ model: "stories260K" });
    const info = shown.model_info as unknown as Record<string, unknown>;
    expect(info["llama.context_length"]).toBe(2048);
    expect(info["llama.embedding_length"]).toBe(64);
    expect((await ollama.show({ model: "qwen-chat" })).template).toContain("<tool_call>");
    const ps = await ollama.ps();
    const loaded = ps.models.find((m) => m.name === "stories260K:latest")!;
    const expires = new Date(loaded.expires_at).getTime();
    // The queen runs with --keep-alive 1h.
    expect(expires - Date.now()).toBeGreaterThan(55 * 60_000);
    expect(expires - Date.now()).toBeLessThanOrEqual(60 * 60_000);
  });

  test("keep_alive: a duration sets the expiry; 0 unloads the model right after the request", async () => {
    await ollama.generate({ model: "stories260K", prompt: "Once", raw: true, options: { num_predict: 2 }, keep_alive: "10m" });
    const tenMinutes = new Date((await ollama.ps()).models.find((m) => m.name === "stories260K:latest")!.expires_at).getTime() - Date.now();
    expect(tenMinutes).toBeGreaterThan(9 * 60_000);
    expect(tenMinutes).toBeLessThanOrEqual(10 * 60_000);
    await ollama.generate({ model: "stories260K", prompt: "Once", raw: true, options: { num_predict: 2 }, keep_alive: 0 });
    await waitFor("the stories worker stopped", async () => ((await queenWorkers(queen.url)).some((w) => w.id && (w as { model_ref?: string }).model_ref?.includes("stories260K")) ? undefined : true));
    expect((await ollama.ps()).models.map((m) => m.name)).not.toContain("stories260K:latest");
    // A short keep_alive: the queen stops the worker when it runs out.
    await ollama.generate({ model: "stories260K", prompt: "Once", raw: true, options: { num_predict: 2 }, keep_alive: "1s" });
    expect((await ollama.ps()).models.map((m) => m.name)).toContain("stories260K:latest");
    await waitFor("the worker stopped at its expiry", async () => ((await ollama.ps()).models.some((m) => m.name === "stories260K:latest") ? undefined : true), 10_000);
    await ollama.generate({ model: "stories260K", prompt: "", keep_alive: "10m" });
    // A negative keep_alive keeps it loaded.
    await ollama.generate({ model: "stories260K", prompt: "Once", raw: true, options: { num_predict: 2 }, keep_alive: -1 });
    expect(String((await ollama.ps()).models.find((m) => m.name === "stories260K:latest")!.expires_at)).toBe("0001-01-01T00:00:00Z");
    await ollama.generate({ model: "stories260K", prompt: "Once", raw: true, options: { num_predict: 2 }, keep_alive: 0 });
    await waitFor("unloaded again", async () => ((await ollama.ps()).models.some((m) => m.name === "stories260K:latest") ? undefined : true));
    // An empty prompt loads it again.
    const load = await ollama.generate({ model: "stories260K", prompt: "" });
    expect(load.done_reason).toBe("load");
    expect((await ollama.ps()).models.map((m) => m.name)).toContain("stories260K:latest");
  });

  test("copy makes a name that works everywhere; delete removes the name", async () => {
    await ollama.copy({ source: "stories260K", destination: "tiny-stories:v1" });
    expect((await ollama.list()).models.map((m) => m.name)).toContain("tiny-stories:v1");
    const res = await ollama.generate({ model: "tiny-stories:v1", prompt: "Once upon a time", raw: true, options: { num_predict: 5, seed: 1 } });
    expect(res.eval_count).toBe(5);
    const openai = await fetch(`${queen.url}/v1/completions`, { method: "POST", body: JSON.stringify({ model: "tiny-stories:v1", prompt: "Once", max_tokens: 3 }) });
    expect(openai.status).toBe(200);
    await ollama.delete({ model: "tiny-stories:v1" });
    expect((await ollama.list()).models.map((m) => m.name)).not.toContain("tiny-stories:v1");
    // Deleting a model itself takes it out of its hive's catalog (a model in use is refused).
    const busy = await fetch(`${queen.url}/api/delete`, { method: "DELETE", body: JSON.stringify({ model: "stories260K" }) });
    expect(busy.status).toBe(409);
    expect((await busy.json()).error).toContain("in use");
  });

  test("embed and the legacy embeddings", async () => {
    const res = await ollama.embed({ model: "stories260K", input: ["Once upon a time", "The end"] });
    expect(res.embeddings.map((e) => e.length)).toEqual([64, 64]);
    expect(res.prompt_eval_count).toBeGreaterThan(0);
    const legacy = await ollama.embeddings({ model: "stories260K", prompt: "Once upon a time" });
    expect(Math.max(...legacy.embedding.map((x, i) => Math.abs(x - res.embeddings[0]![i]!)))).toBeLessThan(1e-4);
  });

  test("pull from a (local) Hub with progress, then serve it", async () => {
    const hub = await startLocalHub({ extraFiles: [`acme/tiny-GGUF/main/model-Q8_0.gguf=${STORIES_MODEL}`] });
    const home = tempHome("rbee-pull-");
    const puller = await startRbee(["queen", "--port", "0", "--home", home], { env: { RBEE_HF_ENDPOINT: hub.url } });
    try {
      const client = new Ollama({ host: puller.url });
      const statuses: string[] = [];
      let progress = 0;
      for await (const part of await client.pull({ model: STORIES_HF_REF, stream: true })) {
        statuses.push(part.status);
        if (part.total && part.completed !== undefined) {
          expect(part.completed).toBeLessThanOrEqual(part.total);
          progress++;
        }
      }
      expect(statuses[0]).toBe("pulling manifest");
      expect(statuses.at(-1)).toBe("success");
      expect(progress).toBeGreaterThan(0);
      expect((await client.list()).models.map((m) => m.name)).toContain("stories260K:latest");
      const res = await client.generate({ model: "stories260K", prompt: "Once upon a time", raw: true, options: { num_predict: 5 } });
      expect(res.eval_count).toBe(5);
      // The Hub's shorthand: the quantization picked from the repository's listing, and the name works after.
      const last = (await Array.fromAsync(await client.pull({ model: "hf.co/acme/tiny-GGUF:Q8_0", stream: true }))).at(-1)!;
      expect(last.status).toBe("success");
      const byName = await client.generate({ model: "hf.co/acme/tiny-GGUF:Q8_0", prompt: "Once upon a time", raw: true, options: { num_predict: 3 } });
      expect(byName.eval_count).toBe(3);
    } finally {
      expect(await puller.stop()).toBe(0);
      await hub.kill();
    }
  });

  test("bad input: Ollama's error shape, a clear message", async () => {
    const cases: [string, unknown, string][] = [
      ["/api/chat", { messages: [] }, "model"],
      ["/api/chat", { model: "nope", messages: [{ role: "user", content: "hi" }] }, "no hive has a model called"],
      ["/api/generate", { model: "stories260K", prompt: "hi", images: ["AAAA"] }, "images (1), but this model has no vision support: rbee serves text-only models"],
      ["/api/generate", { model: "stories260K", prompt: "hi", keep_alive: "soon" }, "keep_alive"],
      ["/api/generate", { model: "stories260K", prompt: "hi", template: "{{ .Messages }}" }, "template"],
      ["/api/copy", { source: "stories260K", destination: "bad name!" }, "invalid model name"],
      ["/api/pull", { model: "hf:org" }, "invalid model reference"],
      ["/api/show", {}, "must name a model"],
      ["/api/generate", { model: "stories260K", prompt: "Once upon a time", raw: true, options: { num_ctx: 8, num_predict: 10 } }, "exceeds the context of 8 tokens"],
    ];
    for (const [path, body, message] of cases) {
      const res = await fetch(`${queen.url}${path}`, { method: "POST", body: JSON.stringify(body) });
      const json = await res.json();
      expect({ path, status: res.status >= 400 && res.status < 500, error: typeof json.error === "string" ? json.error : json.error }).toMatchObject({ path, status: true, error: expect.stringContaining(message) });
    }
    const err = await ollama.chat({ model: "nope", messages: [{ role: "user", content: "hi" }] }).catch((e) => e);
    expect(err.message).toContain("no hive has a model called");
  });
});
