// The queen over real hives and workers: spreading over two nodes, the OpenAI client, queue overflow, cancellation,
// and failover when workers are killed.
import { afterAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { LOCAL_NODE } from "../../../src/nodes/registry";
import { killStartedProcesses } from "../../support/processes";
import { removeTempHomes } from "../../support/home";
import { isAlive, waitFor } from "../../support/processes";
import { startNodeHive, startQueen, queenWorkers } from "../../support/queen";
import { collectSse, postJson, readSse, until } from "../../support/sse";

afterAll(async () => {
  await killStartedProcesses();
  removeTempHomes();
});

const task = (queenUrl: string, body: object, init?: RequestInit) => postJson(`${queenUrl}/v2/tasks`, { model: "stories260K", prompt: "Once upon a time", ...body }, init);

describe("queen scheduling", () => {
  test("a queen with two hives spreads concurrent requests over workers on both", async () => {
    const queen = await startQueen(["--worker-slots", "2"]);
    const a = await startNodeHive(queen.url, "hive-a");
    const b = await startNodeHive(queen.url, "hive-b");
    const runs = await Promise.all(Array.from({ length: 8 }, async (_, i) => collectSse(await task(queen.url, { max_tokens: 1000, seed: i, ignore_eos: true }))));
    const nodes = new Set<string>();
    for (const events of runs) {
      expect(events.at(-1)!.event).toBe("end");
      const started = JSON.parse(events.find((e) => e.event === "started")!.data);
      nodes.add(started.node);
      expect(JSON.parse(events.at(-1)!.data).tokens_out).toBe(1000);
    }
    if (nodes.size < 2) console.error(queen.stderr().split("\n").filter((l) => l.includes("queen")).join("\n"));
    expect([...nodes].sort()).toEqual(["hive-a", "hive-b"]);
    const workers = await queenWorkers(queen.url);
    expect(workers.map((w) => w.node).sort()).toEqual(["hive-a", "hive-b"]);
    expect(workers.every((w) => w.inflight === 0)).toBe(true);
    expect(await queen.stop()).toBe(0);
    expect(await a.proc.exited).toBe(0);
    expect(await b.proc.exited).toBe(0);
  });

  test("the official openai client works against the queen, streamed and not", async () => {
    const queen = await startQueen();
    const client = new OpenAI({ baseURL: `${queen.url}/v1`, apiKey: "unused", maxRetries: 0 });
    const res = await client.completions.create({ model: "../shared/models/stories260K.gguf".replace("..", `${process.cwd()}/..`), prompt: "Once upon a time", max_tokens: 30, seed: 5 });
    expect(res.choices[0]!.text).toMatch(/there (was|lived)/);
    expect(res.usage!.completion_tokens).toBe(30);
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual([expect.stringMatching(/^file:.*stories260K\.gguf$/)]);
    // rbee's extras beside OpenAI's fields: where the model is, what it is, and that a worker serves it now.
    expect(models.data[0]).toMatchObject({ object: "model", owned_by: "rbee", name: "stories260K", nodes: [LOCAL_NODE], size_bytes: 1185376, architecture: "llama", context_length: 2048, loaded: true, workers: 1 });
    const stream = await client.chat.completions.create({ model: "stories260K", messages: [{ role: "user", content: "Tell me a story" }], max_tokens: 20, stream: true, stream_options: { include_usage: true } });
    let text = "";
    let usage;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      usage ??= chunk.usage ?? undefined;
    }
    expect(text.length).toBeGreaterThan(0);
    expect(usage!.completion_tokens).toBeGreaterThan(0);
    // The OpenAI request fields that steer generation pass through the queen as they reach a worker.
    const schema = { type: "object", properties: { hero: { type: "string", enum: ["Lily", "Tom"] } }, required: ["hero"], additionalProperties: false };
    const json = await client.chat.completions.create({ model: "stories260K", messages: [{ role: "user", content: "Once" }], max_tokens: 60, seed: 2, n: 2, response_format: { type: "json_schema", json_schema: { name: "s", schema } } });
    expect(json.choices).toHaveLength(2);
    for (const choice of json.choices) expect(["Lily", "Tom"]).toContain(JSON.parse(choice.message.content!).hero);
    const forced = await client.completions.create({ model: "stories260K", prompt: "Once upon a time", max_tokens: 3, temperature: 0, logit_bias: { "400": 100 } });
    expect(forced.choices[0]!.text.trim()).toBe("do do do");
    const tools: OpenAI.ChatCompletionTool[] = [{ type: "function", function: { name: "pick", parameters: { type: "object", properties: { hero: { enum: ["Lily", "Tom"] } }, required: ["hero"] } } }];
    const called = await client.chat.completions.create({ model: "stories260K", messages: [{ role: "user", content: "Once" }], max_tokens: 60, seed: 1, tools, tool_choice: "required" });
    expect(called.choices[0]!.finish_reason).toBe("tool_calls");
    const call = called.choices[0]!.message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(call.function.name).toBe("pick");
    expect(["Lily", "Tom"]).toContain(JSON.parse(call.function.arguments).hero);
    const withLogprobs = await client.chat.completions.create({ model: "stories260K", messages: [{ role: "user", content: "Once" }], max_tokens: 5, logprobs: true, top_logprobs: 2 });
    expect(withLogprobs.choices[0]!.logprobs!.content).toHaveLength(withLogprobs.usage!.completion_tokens);
    const embedded = await client.embeddings.create({ model: "stories260K", input: ["Once upon a time", "The end"] });
    expect(embedded.data.map((d) => d.embedding.length)).toEqual([64, 64]);
    const refused = await client.chat.completions.create({ model: "stories260K", messages: [{ role: "user", content: "Once" }], top_logprobs: 2 }).catch((e) => e);
    expect(refused.status).toBe(400);
    expect(refused.error.message).toContain("top_logprobs needs logprobs: true");
    expect(await queen.stop()).toBe(0);
  });

  test("a full queue answers 429 with Retry-After; queue depth shows in /metrics", async () => {
    const queen = await startQueen(["--worker-slots", "1", "--queue", "1"]);
    await collectSse(await task(queen.url, { max_tokens: 2 })); // brings the worker up
    const running = await task(queen.url, { max_tokens: 2000, ignore_eos: true });
    const runningEvents = readSse(running);
    await until(runningEvents, "started");
    const queuedController = new AbortController();
    const queued = await task(queen.url, { max_tokens: 5 }, { signal: queuedController.signal });
    const queuedEvents = readSse(queued);
    expect(JSON.parse((await queuedEvents.next()).value!.data).position).toBe(0);
    expect(JSON.parse((await queuedEvents.next()).value!.data).position).toBe(1);
    const metrics = await (await fetch(`${queen.url}/metrics`)).text();
    expect(metrics).toMatch(/rbee_queue_depth\{model="file:.*stories260K\.gguf"\} 1/);
    const overflow = await postJson(`${queen.url}/v1/completions`, { model: "stories260K", prompt: "Once", max_tokens: 5 });
    expect(overflow.status).toBe(429);
    expect(overflow.headers.get("retry-after")).toBe("2");
    expect((await overflow.json()).error).toMatchObject({ type: "rate_limit_error", code: "rate_limit_exceeded", rbee_code: "QUEUE_FULL" });
    expect(await queen.stop()).toBe(0);
  });

  test("cancelling a task (DELETE, or the client going away) frees the worker's slot", async () => {
    const queen = await startQueen(["--worker-slots", "1"]);
    const res = await task(queen.url, { max_tokens: 2000, ignore_eos: true });
    const events = readSse(res);
    const first = JSON.parse((await events.next()).value!.data);
    const started = JSON.parse((await until(events, "started")).data);
    await until(events, "token");
    const [worker] = await queenWorkers(queen.url);
    expect(worker!.inflight).toBe(1);
    const slotsIdle = async () => (await (await fetch(`${worker!.url}/v1/ready`)).json()).slots_idle;
    expect(await slotsIdle()).toBe(0);
    const deleted = await fetch(`${queen.url}/v2/tasks/${first.task_id}`, { method: "DELETE" });
    expect(deleted.status).toBe(200);
    await waitFor("slot freed", async () => ((await slotsIdle()) === 1 ? true : undefined), 3000);
    const state = await (await fetch(`${queen.url}/v2/tasks/${first.task_id}`)).json();
    expect(state).toMatchObject({ state: "cancelled", worker: started.worker });
    expect(state.tokens_out).toBeGreaterThan(0);
    await waitFor("queen lease released after DELETE", async () => ((await queenWorkers(queen.url))[0]!.inflight === 0 ? true : undefined), 3000);

    const controller = new AbortController();
    const second = readSse(await task(queen.url, { max_tokens: 2000, ignore_eos: true }, { signal: controller.signal }));
    await until(second, "token");
    expect(await slotsIdle()).toBe(0);
    controller.abort();
    await waitFor("slot freed after disconnect", async () => ((await slotsIdle()) === 1 ? true : undefined), 3000);
    await waitFor("queen lease released", async () => ((await queenWorkers(queen.url))[0]!.inflight === 0 ? true : undefined), 3000);
    expect((await fetch(`${queen.url}/v2/tasks/t-nope`)).status).toBe(404);
    expect(await queen.stop()).toBe(0);
  });

  test("an OpenAI stream relayed as it is: a client that goes frees the worker's slot and the queen's lease", async () => {
    const queen = await startQueen(["--worker-slots", "1"]);
    const controller = new AbortController();
    const res = await fetch(`${queen.url}/v1/completions`, { method: "POST", body: JSON.stringify({ model: "stories260K", prompt: "Once", max_tokens: 1800, ignore_eos: true, stream: true }), signal: controller.signal });
    const reader = res.body!.getReader();
    await reader.read();
    await reader.read();
    const [worker] = await queenWorkers(queen.url);
    const slotsIdle = async () => (await (await fetch(`${worker!.url}/v1/ready`)).json()).slots_idle;
    expect(await slotsIdle()).toBe(0);
    controller.abort();
    await waitFor("slot freed after disconnect", async () => ((await slotsIdle()) === 1 ? true : undefined), 3000);
    await waitFor("queen lease released", async () => ((await queenWorkers(queen.url))[0]!.inflight === 0 ? true : undefined), 3000);
    expect(await queen.stop()).toBe(0);
  });

  test("kill -9 of a worker mid-stream: that stream gets an error event, the next request succeeds", async () => {
    const queen = await startQueen(["--worker-slots", "2"]);
    const stream = readSse(await task(queen.url, { max_tokens: 2000, ignore_eos: true }));
    await until(stream, "token");
    const [worker] = await queenWorkers(queen.url);
    const hiveUrl = (await (await fetch(`${queen.url}/v1/nodes`)).json()).nodes[0].hive_url;
    const hiveWorkers = (await (await fetch(`${hiveUrl}/v1/workers`)).json()).workers;
    expect(hiveWorkers.map((w: { id: string }) => w.id)).toEqual([worker!.id]);
    const workerPid: number = hiveWorkers[0].pid;
    process.kill(workerPid, "SIGKILL");
    const rest: string[] = [];
    for await (const e of stream) rest.push(e.event);
    expect(rest.at(-1)).toBe("error");
    expect(rest).not.toContain("end");
    const next = await collectSse(await task(queen.url, { max_tokens: 10 }));
    expect(next.at(-1)!.event).toBe("end");
    expect(isAlive(workerPid)).toBe(false);
    expect(await queen.stop()).toBe(0);
  });

  test("kill -9 of a worker mid-queue: the queued requests still finish on another", async () => {
    const queen = await startQueen(["--worker-slots", "1"]);
    const a = await startNodeHive(queen.url, "node-a");
    const b = await startNodeHive(queen.url, "node-b");
    // Two requests at once bring up one worker per node; then two long ones (2,000 tokens, as long as the context
    // allows: under a second at today's speed) keep both busy from the start.
    const warm = [0, 1].map(async (seed) => collectSse(await task(queen.url, { max_tokens: 200, ignore_eos: true, seed })));
    await waitFor("a worker on each node", async () => ((await queenWorkers(queen.url)).length === 2 ? true : undefined), 30_000);
    await Promise.all(warm);
    const long = [0, 1].map(async (seed) => collectSse(await task(queen.url, { max_tokens: 2000, ignore_eos: true, seed })));
    await waitFor("two workers busy", async () => {
      const ws = await queenWorkers(queen.url);
      return ws.length === 2 && ws.every((w) => w.inflight === 1) ? true : undefined;
    }, 30_000);
    const queued = Array.from({ length: 4 }, async (_, i) => collectSse(await task(queen.url, { max_tokens: 20, seed: 10 + i })));
    await Bun.sleep(100);
    const victim = (await (await fetch(`${a.url}/v1/workers`)).json()).workers[0];
    process.kill(victim.pid, "SIGKILL");
    // They finish on node-b's worker, or on the worker node-a's hive brings up in place of the dead one.
    for (const events of await Promise.all(queued)) {
      expect(events.at(-1)!.event).toBe("end");
      expect(events.filter((e) => e.event === "token")).toHaveLength(20);
    }
    expect(isAlive(victim.pid)).toBe(false);
    const outcomes = (await Promise.all(long)).map((events) => events.at(-1)!.event).sort();
    expect(outcomes).toEqual(["end", "error"]);
    expect(await queen.stop()).toBe(0);
    await Promise.all([a.proc.exited, b.proc.exited]);
  });
});
