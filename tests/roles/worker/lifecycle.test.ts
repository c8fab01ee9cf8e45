// The worker process's life: readiness, the hive callback, bearer auth, and every way of stopping it.
import { describe, expect, test } from "bun:test";
import { ReadyResponse, WorkerReadyCallback } from "../../../src/wire/worker";
import { STORIES_MODEL } from "../../support/paths";
import { startRbee, waitFor } from "../../support/processes";
import { postJson } from "../../support/sse";
import { startWorker } from "../../support/worker";

describe("worker lifecycle", () => {
  test("health answers at once; ready reports the model, backend and slots once loaded", async () => {
    const worker = await startRbee(["worker", "--model", STORIES_MODEL, "--port", "0", "--slots", "3"]);
    expect((await fetch(`${worker.url}/v1/health`)).status).toBe(200);
    const ready = ReadyResponse.parse(await waitFor("ready", async () => {
      const r = await (await fetch(`${worker.url}/v1/ready`)).json();
      expect(["loading", "idle"]).toContain(r.state);
      return r.ready ? r : undefined;
    }));
    expect(ready).toMatchObject({ ready: true, state: "idle", progress: 1, model: "stories260K.gguf", backend: "cpu", device: "cpu", slots_total: 3, slots_idle: 3 });
    // `bun run build` rebuilt the addon with rbee's sample-then-decode step (scripts/build-addon.ts).
    expect(ready.sampling).toBe("batched");
    expect(await worker.stop()).toBe(0);
  });

  test("SIGTERM, SIGINT and POST /v1/shutdown each unload and exit 0", async () => {
    for (const how of ["SIGTERM", "SIGINT", "http"] as const) {
      const worker = await startWorker();
      if (how === "http") expect((await fetch(`${worker.url}/v1/shutdown`, { method: "POST" })).status).toBe(200);
      else worker.proc.kill(how);
      expect(await worker.proc.exited).toBe(0);
      expect(await fetch(`${worker.url}/v1/health`).catch(() => "refused")).toBe("refused");
    }
  });

  test("shutting down mid-generation ends the stream and still exits 0", async () => {
    const worker = await startWorker();
    const res = await postJson(`${worker.url}/v1/execute`, { prompt: "Once upon a time", max_tokens: 2000, ignore_eos: true });
    const reader = res.body!.getReader();
    await reader.read();
    worker.proc.kill("SIGTERM");
    expect(await worker.proc.exited).toBe(0);
    for (;;) if ((await reader.read().catch(() => ({ done: true }))).done) break;
  });

  test("calls its hive back once listening and loaded", async () => {
    const calls: unknown[] = [];
    const hive = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: async (req) => {
        calls.push({ path: new URL(req.url).pathname, auth: req.headers.get("authorization"), body: await req.json() });
        return Response.json({ ok: true });
      },
    });
    const worker = await startRbee(["worker", "--model", STORIES_MODEL, "--port", "0", "--hive-url", `http://127.0.0.1:${hive.port}`, "--worker-id", "w-42", "--model-ref", "hf:ggml-org/models/tinyllamas/stories260K.gguf", "--api-token", "s3cret"]);
    await waitFor("callback", () => (calls.length ? true : undefined));
    const call = calls[0] as { path: string; auth: string; body: unknown };
    expect(call.path).toBe("/v1/workers/ready");
    expect(call.auth).toBe("Bearer s3cret");
    const body = WorkerReadyCallback.parse(call.body);
    expect(body).toEqual({ worker_id: "w-42", url: worker.url, model_ref: "hf:ggml-org/models/tinyllamas/stories260K.gguf", backend: "cpu", device: "cpu", slots_total: 4 });
    // By the time the hive hears of it, the worker serves.
    const res = await postJson(`${body.url}/v1/completions`, { prompt: "Once upon a time", max_tokens: 3 }, { headers: { authorization: "Bearer s3cret", "content-type": "application/json" } });
    expect(res.status).toBe(200);
    expect(await worker.stop()).toBe(0);
    hive.stop(true);
  });

  test("a worker whose hive refuses the callback exits non-zero with the reason", async () => {
    const hive = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => Response.json({ error: { code: "NOT_FOUND", message: "unknown worker" } }, { status: 404 }) });
    const worker = await startRbee(["worker", "--model", STORIES_MODEL, "--port", "0", "--hive-url", `http://127.0.0.1:${hive.port}`, "--worker-id", "w-1"]);
    expect(await worker.proc.exited).not.toBe(0);
    expect(worker.stderr()).toContain("refused the ready callback: HTTP 404");
    hive.stop(true);
  });

  test("a wrong tuning setting in the environment stops the worker before it loads, with the setting named", async () => {
    for (const [name, value, says] of [
      ["RBEE_BATCH_TOKENS", "lots", "RBEE_BATCH_TOKENS=lots: a whole number of tokens from 1 to 65536"],
      ["RBEE_UBATCH_TOKENS", "0", "RBEE_UBATCH_TOKENS=0: a whole number of tokens from 1 to 65536"],
      ["RBEE_BACKEND_SAMPLING", "yes", "RBEE_BACKEND_SAMPLING=yes: 1 (on) or 0 (off, the default)"],
    ] as const) {
      const worker = await startRbee(["worker", "--model", STORIES_MODEL, "--port", "0"], { env: { [name]: value } });
      expect(await worker.proc.exited).toBe(2);
      expect(worker.stderr()).toContain(says);
    }
  });

  test("with --api-token every route but health and ready needs the bearer token", async () => {
    const worker = await startWorker(["--api-token", "tok"]);
    expect((await fetch(`${worker.url}/v1/health`)).status).toBe(200);
    const anonymous = await postJson(`${worker.url}/v1/completions`, { prompt: "Once", max_tokens: 2 });
    expect(anonymous.status).toBe(401);
    expect((await anonymous.json()).error).toMatchObject({ type: "authentication_error", code: "invalid_api_key", rbee_code: "UNAUTHORIZED" });
    const wrong = await fetch(`${worker.url}/v1/models`, { headers: { authorization: "Bearer nope" } });
    expect(wrong.status).toBe(401);
    const right = await fetch(`${worker.url}/v1/models`, { headers: { authorization: "Bearer tok" } });
    expect(right.status).toBe(200);
    expect(await worker.stop()).toBe(0);
  });
});
