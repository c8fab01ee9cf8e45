// Every bad input gets a clear error: HTTP 4xx with {error:{code,message}}, or one stderr line and a non-zero exit.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { STORIES_MODEL } from "../../support/paths";
import { type RbeeProcess, runRbee } from "../../support/processes";
import { startWorker } from "../../support/worker";

let worker: RbeeProcess;
beforeAll(async () => {
  worker = await startWorker(["--ctx", "256"]);
});
afterAll(async () => {
  expect(await worker.stop()).toBe(0);
});

async function expectError(path: string, body: string, status: number, code: string, messagePart?: string) {
  const res = await fetch(`${worker.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body });
  expect(res.status).toBe(status);
  const json = await res.json();
  // OpenAI's routes put OpenAI's code in `code` where it has one, and rbee's beside it.
  expect(json.error.rbee_code ?? json.error.code).toBe(code);
  expect(typeof json.error.message).toBe("string");
  if (messagePart) expect(json.error.message).toContain(messagePart);
}

describe("bad HTTP requests", () => {
  const cases: [string, string, string, number, string, string?][] = [
    ["missing prompt", "/v1/execute", `{"max_tokens":5}`, 400, "BAD_REQUEST", "prompt"],
    ["empty prompt", "/v1/execute", `{"prompt":""}`, 400, "BAD_REQUEST", "prompt"],
    ["prompt of the wrong type", "/v1/execute", `{"prompt":42}`, 400, "BAD_REQUEST", "prompt"],
    ["max_tokens a string", "/v1/execute", `{"prompt":"a","max_tokens":"5"}`, 400, "BAD_REQUEST", "max_tokens"],
    ["max_tokens zero", "/v1/execute", `{"prompt":"a","max_tokens":0}`, 400, "BAD_REQUEST", "max_tokens"],
    ["max_tokens negative", "/v1/execute", `{"prompt":"a","max_tokens":-3}`, 400, "BAD_REQUEST", "max_tokens"],
    ["max_tokens fractional", "/v1/execute", `{"prompt":"a","max_tokens":2.5}`, 400, "BAD_REQUEST", "max_tokens"],
    ["max_tokens over the context", "/v1/execute", `{"prompt":"a","max_tokens":300}`, 400, "CONTEXT_OVERFLOW", "256"],
    ["temperature out of range", "/v1/execute", `{"prompt":"a","temperature":9}`, 400, "BAD_REQUEST", "temperature"],
    ["stop of the wrong type", "/v1/execute", `{"prompt":"a","stop":5}`, 400, "BAD_REQUEST", "stop"],
    ["cache_prompt not a boolean", "/v1/execute", `{"prompt":"a","cache_prompt":"no"}`, 400, "BAD_REQUEST", "cache_prompt"],
    ["completions cache_prompt not a boolean", "/v1/completions", `{"prompt":"a","cache_prompt":0}`, 400, "BAD_REQUEST", "cache_prompt"],
    ["unknown field on a strict route", "/v1/execute", `{"prompt":"a","bogus":1}`, 400, "BAD_REQUEST", "bogus"],
    ["invalid JSON", "/v1/execute", `{"prompt":`, 400, "BAD_REQUEST", "JSON"],
    ["a JSON array", "/v1/execute", `[1,2]`, 400, "BAD_REQUEST"],
    ["empty body", "/v1/execute", ``, 400, "BAD_REQUEST", "JSON"],
    ["completions without prompt", "/v1/completions", `{"model":"x"}`, 400, "BAD_REQUEST", "prompt"],
    ["completions max_tokens over the context", "/v1/completions", `{"prompt":"a","max_tokens":1000}`, 400, "CONTEXT_OVERFLOW"],
    ["chat with a bad role", "/v1/chat/completions", `{"messages":[{"role":"robot","content":"hi"}]}`, 400, "BAD_REQUEST", "role"],
    ["chat with image content", "/v1/chat/completions", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, 400, "BAD_REQUEST"],
    ["unknown route", "/v1/nothing", `{}`, 404, "NOT_FOUND"],
  ];
  for (const [name, path, body, status, code, part] of cases) test(name, () => expectError(path, body, status, code, part));

  test("a prompt longer than the context is refused before generating", async () => {
    await expectError("/v1/execute", JSON.stringify({ prompt: "Once upon a time ".repeat(200), max_tokens: 1 }), 400, "CONTEXT_OVERFLOW");
  });

  test("the worker still serves after all of that", async () => {
    const res = await fetch(`${worker.url}/v1/completions`, { method: "POST", body: JSON.stringify({ prompt: "Once upon a time", max_tokens: 5 }) });
    expect(res.status).toBe(200);
    expect(worker.proc.exitCode).toBeNull();
  });
});

describe("bad command lines", () => {
  const dir = mkdtempSync(join(tmpdir(), "rbee-bad-"));
  const notGguf = join(dir, "notes.gguf");
  writeFileSync(notGguf, "this is not a model\n".repeat(10));
  const truncatedHeader = join(dir, "truncated-header.gguf");
  const model = readFileSync(STORIES_MODEL);
  writeFileSync(truncatedHeader, model.subarray(0, 2000));
  const truncatedData = join(dir, "truncated-data.gguf");
  writeFileSync(truncatedData, model.subarray(0, 900_000));
  const truncatedLastTensor = join(dir, "truncated-last-tensor.gguf");
  writeFileSync(truncatedLastTensor, model.subarray(0, model.length - 100));
  const empty = join(dir, "empty.gguf");
  writeFileSync(empty, "");

  const cases: [string, string[], RegExp][] = [
    ["a model path that does not exist", ["--model", join(dir, "missing.gguf")], /model file not found/],
    ["a directory as the model", ["--model", dir], /not a file/],
    ["a file that is not GGUF", ["--model", notGguf], /not a GGUF file/],
    ["an empty file", ["--model", empty], /not a GGUF file/],
    ["a GGUF cut inside its header", ["--model", truncatedHeader], /header is incomplete/],
    ["a GGUF cut inside its tensor data", ["--model", truncatedData], /is truncated/],
    ["a port that is not a number", ["--model", STORIES_MODEL, "--port", "http"], /--port/],
    ["zero slots", ["--model", STORIES_MODEL, "--slots", "0"], /--slots/],
    ["an unknown backend", ["--model", STORIES_MODEL, "--gpu", "tpu"], /--gpu/],
    ["a hive URL without a worker id", ["--model", STORIES_MODEL, "--hive-url", "http://127.0.0.1:1"], /--worker-id/],
    ["no model at all", [], /model/],
  ];
  for (const [name, args, message] of cases)
    test(name, async () => {
      const { code, stderr, stdout } = await runRbee(["worker", "--port", "0", ...args]);
      expect(code).not.toBe(0);
      const lines = stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^rbee: /);
      expect(lines[0]).toMatch(message);
      expect(stdout).toBe("");
    });

  test("a GGUF cut inside its last tensor fails at load time, with the reason as the last line", async () => {
    const { code, stderr } = await runRbee(["worker", "--port", "0", "--model", truncatedLastTensor]);
    expect(code).not.toBe(0);
    const lines = stderr.trim().split("\n");
    expect(lines.filter((l) => l.startsWith("rbee: "))).toHaveLength(1);
    expect(lines.at(-1)).toMatch(/^rbee: cannot load .*truncated-last-tensor\.gguf/);
  });

  test("a backend that does not work here: one line saying why, exit non-zero", async () => {
    const { code, stderr } = await runRbee(["worker", "--port", "0", "--model", STORIES_MODEL, "--gpu", "vulkan"]);
    expect(code).not.toBe(0);
    expect(stderr.trim().split("\n").at(-1)).toMatch(/^rbee: --gpu vulkan does not work here: /);
  });

  test("an unknown command", async () => {
    const { code, stderr } = await runRbee(["fly"]);
    expect(code).not.toBe(0);
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr).toContain("Unknown command fly");
  });
});
