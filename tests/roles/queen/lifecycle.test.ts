// The queen's life: its nodes survive a restart, its shutdown cascade leaves no process, --ephemeral leaves by itself,
// and bad requests get clear 4xx answers.
import { ERROR_DIALECTS } from "../../../src/wire/errors";
import type { ErrorCode } from "../../../src/errors";
import { afterAll, describe, expect, test } from "bun:test";
import { killStartedProcesses } from "../../support/processes";
import { removeTempHomes } from "../../support/home";
import { isAlive, waitFor } from "../../support/processes";
import { queenWorkers, startNodeHive, startQueen } from "../../support/queen";
import { collectSse, postJson } from "../../support/sse";

afterAll(async () => {
  await killStartedProcesses();
  removeTempHomes();
});

async function workerPids(hiveUrl: string): Promise<number[]> {
  return (await (await fetch(`${hiveUrl}/v1/workers`)).json()).workers.map((w: { pid: number }) => w.pid);
}

describe("queen lifecycle", () => {
  test("a restarted queen keeps its nodes and finds their hives and workers again", async () => {
    const first = await startQueen();
    const hive = await startNodeHive(first.url, "node-r");
    const run = await collectSse(await postJson(`${first.url}/v2/tasks`, { model: "stories260K", prompt: "Once upon a time", max_tokens: 5, node: "node-r" }));
    expect(run.at(-1)!.event).toBe("end");
    // Stop only the queen (SIGKILL: no cascade), then start another on the same home.
    first.proc.kill("SIGKILL");
    await first.proc.exited;
    const second = await startQueen([], first.home);
    const { nodes } = await (await fetch(`${second.url}/v1/nodes`)).json();
    expect(nodes.map((n: { name: string }) => n.name)).toContain("node-r");
    await waitFor("node-r up", async () => ((await (await fetch(`${second.url}/v1/nodes`)).json()).nodes.find((n: { name: string }) => n.name === "node-r")?.hive_state === "up" ? true : undefined));
    expect((await queenWorkers(second.url)).map((w) => w.node)).toEqual(["node-r"]);
    const again = await collectSse(await postJson(`${second.url}/v2/tasks`, { model: "stories260K", prompt: "Once upon a time", max_tokens: 5, node: "node-r" }));
    expect(again.at(-1)!.event).toBe("end");
    expect(await second.stop()).toBe(0);
    expect(await hive.proc.exited).toBe(0);
  });

  test("the shutdown cascade (SIGTERM, SIGINT, POST /v1/shutdown) leaves no rbee process", async () => {
    for (const how of ["SIGTERM", "SIGINT", "http"] as const) {
      const queen = await startQueen();
      const remote = await startNodeHive(queen.url, "node-s");
      await collectSse(await postJson(`${queen.url}/v2/tasks`, { model: "stories260K", prompt: "Once", max_tokens: 3, node: "node-s" }));
      await collectSse(await postJson(`${queen.url}/v2/tasks`, { model: "stories260K", prompt: "Once", max_tokens: 3, node: "localhost" }));
      const localHive = (await (await fetch(`${queen.url}/v1/nodes`)).json()).nodes.find((n: { name: string }) => n.name === "localhost");
      const pids = [...(await workerPids(remote.url)), ...(await workerPids(localHive.hive_url)), remote.proc.pid];
      expect(pids).toHaveLength(3);
      if (how === "http") expect((await postJson(`${queen.url}/v1/shutdown`, {})).status).toBe(200);
      else queen.proc.kill(how);
      expect(await queen.proc.exited).toBe(0);
      expect(await remote.proc.exited).toBe(0);
      await waitFor("every process gone", () => (pids.some(isAlive) ? undefined : true), 10_000);
      expect(await fetch(`${localHive.hive_url}/v1/health`).catch(() => "refused")).toBe("refused");
    }
  });

  test("--ephemeral: the queen exits by itself once idle, taking its hive and workers", async () => {
    const queen = await startQueen(["--ephemeral", "--ephemeral-idle", "1"]);
    const run = await collectSse(await postJson(`${queen.url}/v2/tasks`, { model: "stories260K", prompt: "Once upon a time", max_tokens: 5 }));
    expect(run.at(-1)!.event).toBe("end");
    const local = (await (await fetch(`${queen.url}/v1/nodes`)).json()).nodes[0];
    const pids = await workerPids(local.hive_url);
    expect(await queen.proc.exited).toBe(0);
    await waitFor("workers gone", () => (pids.some(isAlive) ? undefined : true), 10_000);
    expect(queen.stderr()).toContain("ephemeral: idle for");
  });

  test("bad requests: unknown model, malformed JSON, unknown node, max_tokens over the context", async () => {
    const queen = await startQueen();
    const cases: [string, string, string, number, string, RegExp][] = [
      ["/v1/completions", "unknown model", `{"model":"no-such-model","prompt":"a"}`, 404, "MODEL_NOT_FOUND", /no hive has a model called "no-such-model"/],
      ["/v2/tasks", "unknown model", `{"model":"no-such-model","prompt":"a"}`, 404, "MODEL_NOT_FOUND", /no-such-model/],
      ["/v1/completions", "malformed JSON", `{"model":`, 400, "BAD_REQUEST", /not valid JSON/],
      ["/v2/tasks", "malformed JSON", `nope`, 400, "BAD_REQUEST", /not valid JSON/],
      ["/v1/chat/completions", "no model", `{"messages":[{"role":"user","content":"hi"}]}`, 400, "BAD_REQUEST", /model/],
      ["/v2/tasks", "unknown node", `{"model":"stories260K","prompt":"a","node":"mars"}`, 404, "NOT_FOUND", /unknown node "mars"/],
      ["/v1/completions", "unknown node", `{"model":"stories260K","prompt":"a","node":"mars"}`, 404, "NOT_FOUND", /unknown node "mars"/],
      ["/v1/completions", "max_tokens over the context", `{"model":"stories260K","prompt":"a","max_tokens":100000}`, 400, "CONTEXT_OVERFLOW", /exceeds the context/],
      ["/v2/tasks", "unknown field", `{"model":"stories260K","prompt":"a","bogus":1}`, 400, "BAD_REQUEST", /bogus/],
      ["/v1/completions", "a bad model reference", `{"model":"hf:a/../b.gguf","prompt":"a"}`, 400, "BAD_REQUEST", /invalid model reference/],
    ];
    for (const [path, , body, status, code, message] of cases) {
      const res = await fetch(`${queen.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body });
      expect(res.status).toBe(status);
      const json = await res.json();
      // OpenAI's routes answer in OpenAI's shape with rbee's code beside OpenAI's (wire/errors.ts); rbee's own in rbee's.
      if (path.startsWith("/v1/")) expect(json.error).toMatchObject({ rbee_code: code, type: ERROR_DIALECTS[code as ErrorCode].openaiType, code: ERROR_DIALECTS[code as ErrorCode].openaiCode ?? code });
      else expect(json.error.code).toBe(code);
      expect(json.error.message).toMatch(message);
    }
    // The context error came from a worker; its slot is free again.
    expect((await queenWorkers(queen.url)).every((w) => w.inflight === 0)).toBe(true);
    expect(await queen.stop()).toBe(0);
  });
});
