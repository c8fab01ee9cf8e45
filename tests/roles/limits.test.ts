// Trust and limits a LAN needs: a daemon on the network without a token refuses to start (one line naming the fix);
// oversized bodies get 413 before they are read; text too long for a slot is refused before it is tokenized.
import { afterAll, describe, expect, test } from "bun:test";
import { removeTempHomes, tempHome } from "../support/home";
import { STORIES_MODEL } from "../support/paths";
import { killStartedProcesses, runRbee, startRbee } from "../support/processes";
import { postJson } from "../support/sse";
import { startWorker } from "../support/worker";

afterAll(async () => {
  await killStartedProcesses();
  removeTempHomes();
});

const roles: [string, string[]][] = [
  ["queen", ["queen", "--port", "0"]],
  ["hive", ["hive", "--port", "0"]],
  ["worker", ["worker", "--model", STORIES_MODEL, "--port", "0"]],
];

describe("binding", () => {
  for (const [role, args] of roles)
    test(`a ${role} on 0.0.0.0 without a token refuses to start; with one, or --insecure-no-auth, or on loopback, it starts`, async () => {
      const env = { RBEE_HOME: tempHome(), RBEE_API_TOKEN: "" };
      const refused = await runRbee([...args, "--host", "0.0.0.0"], { env });
      expect(refused.code).not.toBe(0);
      const lines = refused.stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toBe(
        `rbee: refusing to start the ${role} on 0.0.0.0 without a token: anyone who reaches it could use it; set --api-token (or RBEE_API_TOKEN)${role === "queen" ? " or make a key (rbee keys create)" : ""}, listen on 127.0.0.1, or pass --insecure-no-auth`,
      );
      for (const extra of [["--host", "0.0.0.0", "--api-token", "t"], ["--host", "0.0.0.0", "--insecure-no-auth"], ["--host", "127.0.0.2"]]) {
        const started = await startRbee([...args, ...extra], { env });
        expect(started.url).toMatch(/^http:\/\//);
        expect(await started.stop()).toBe(0);
      }
    });
});

describe("limits", () => {
  test("a body over the limit is 413 at once; text too long for a slot is refused before tokenizing; stop strings are bounded", async () => {
    const worker = await startWorker(["--ctx", "256"], { env: { RBEE_MAX_BODY_MB: "1" } });
    const big = "Once upon a time ".repeat(70_000); // 1.2 MB
    const tooBig = await postJson(`${worker.url}/v1/completions`, { prompt: big, max_tokens: 1 });
    expect(tooBig.status).toBe(413);
    expect((await tooBig.json()).error).toMatchObject({ code: "PAYLOAD_TOO_LARGE", message: expect.stringContaining("RBEE_MAX_BODY_MB") });
    const long = "Once upon a time ".repeat(20_000); // 340 kB: under the body limit, far over 256 tokens
    for (const [path, body] of [
      ["/v1/completions", { prompt: long }],
      ["/v1/execute", { prompt: long }],
      ["/v1/chat/completions", { messages: [{ role: "user", content: long }] }],
      ["/v1/embeddings", { input: [long] }],
    ] as const) {
      const res = await postJson(`${worker.url}${path}`, body);
      expect({ path, status: res.status }).toEqual({ path, status: 400 });
      expect((await res.json()).error.message).toMatch(/has \d+ characters: more than \d+ tokens can hold/);
    }
    const stops = await postJson(`${worker.url}/v1/completions`, { prompt: "Once", stop: ["x".repeat(300)] });
    expect((await stops.json()).error.message).toContain("at most 256 characters");
    const many = await postJson(`${worker.url}/v1/chat/completions`, { messages: Array.from({ length: 5000 }, () => ({ role: "user", content: "hi" })) });
    expect((await many.json()).error.message).toContain("at most 4096 messages");
    expect((await postJson(`${worker.url}/v1/completions`, { prompt: "Once upon a time", max_tokens: 3 })).status).toBe(200);
    expect(await worker.stop()).toBe(0);
  });
});
