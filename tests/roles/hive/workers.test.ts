// The hive's workers as real processes: spawn and serve, idle timeout, health removal, the shutdown cascade, and no
// orphan left when the hive itself is killed with SIGKILL.
import { afterAll, describe, expect, test } from "bun:test";
import { startHive } from "../../support/hive";
import { killStartedProcesses } from "../../support/processes";
import { removeTempHomes } from "../../support/home";
import { isAlive, waitFor } from "../../support/processes";
import { postJson } from "../../support/sse";

afterAll(async () => {
  await killStartedProcesses();
  removeTempHomes();
});

const spawn = async (hiveUrl: string, body: object = { model: "stories260K", slots: 2 }) => {
  const res = await postJson(`${hiveUrl}/v1/workers/spawn`, body);
  return { status: res.status, body: await res.json() };
};
const workers = async (hiveUrl: string) => (await (await fetch(`${hiveUrl}/v1/workers`)).json()).workers as { id: string; pid: number; url: string; state: string }[];

describe("hive workers", () => {
  test("spawns a worker of the same binary, which calls back ready and serves a story", async () => {
    const hive = await startHive();
    const { status, body } = await spawn(hive.url);
    expect(status).toBe(201);
    expect(body.worker).toMatchObject({ state: "ready", model_ref: expect.stringContaining("stories260K.gguf"), backend: "cpu", device: "cpu", slots_total: 2 });
    expect(body.worker.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await workers(hive.url)).toHaveLength(1);
    const res = await postJson(`${body.worker.url}/v1/completions`, { prompt: "Once upon a time", max_tokens: 20, seed: 2 });
    expect((await res.json()).choices[0].text).toMatch(/there (was|lived)/);
    const models = (await (await fetch(`${hive.url}/v1/models`)).json()).models;
    expect(models[0].last_used_at).not.toBeNull();
    expect(await hive.stop()).toBe(0);
    expect(isAlive(body.worker.pid)).toBe(false);
  });

  test("an idle worker is stopped after the idle timeout", async () => {
    const hive = await startHive(["--idle-timeout", "1", "--health-interval", "0.2"]);
    const { body } = await spawn(hive.url);
    await postJson(`${body.worker.url}/v1/completions`, { prompt: "Once upon a time", max_tokens: 5 });
    const started = Date.now();
    await waitFor("idle stop", async () => ((await workers(hive.url)).length === 0 ? true : undefined), 10_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(800);
    await waitFor("worker exit", () => (isAlive(body.worker.pid) ? undefined : true));
    expect(hive.stderr()).toContain("idle for");
    expect(await hive.stop()).toBe(0);
  });

  test("a worker killed with SIGKILL leaves the registry and is reported", async () => {
    const hive = await startHive(["--health-interval", "0.5"]);
    const { body } = await spawn(hive.url);
    process.kill(body.worker.pid, "SIGKILL");
    await waitFor("removal", async () => ((await workers(hive.url)).length === 0 ? true : undefined), 5000);
    expect(hive.stderr()).toContain(`worker ${body.worker.id} exited`);
    const again = await spawn(hive.url);
    expect(again.status).toBe(201);
    expect(await hive.stop()).toBe(0);
  });

  test("shutdown cascade: SIGTERM and POST /v1/shutdown stop every worker, then the hive exits 0", async () => {
    for (const how of ["SIGTERM", "http"] as const) {
      const hive = await startHive();
      const a = (await spawn(hive.url)).body.worker;
      const b = (await spawn(hive.url, { model: "stories260K", slots: 1 })).body.worker;
      if (how === "http") expect((await postJson(`${hive.url}/v1/shutdown`, {})).status).toBe(200);
      else hive.proc.kill("SIGTERM");
      expect(await hive.proc.exited).toBe(0);
      expect(isAlive(a.pid)).toBe(false);
      expect(isAlive(b.pid)).toBe(false);
    }
  });

  test("when the hive is killed with SIGKILL its workers exit within 10 s", async () => {
    const hive = await startHive();
    const pids = [(await spawn(hive.url)).body.worker.pid, (await spawn(hive.url)).body.worker.pid];
    expect(pids.every(isAlive)).toBe(true);
    hive.proc.kill("SIGKILL");
    await hive.proc.exited;
    const killedAt = Date.now();
    await waitFor("orphans gone", () => (pids.some(isAlive) ? undefined : true), 10_000);
    expect(Date.now() - killedAt).toBeLessThan(10_000);
  });

  test("stop one worker by id; bad spawn requests get clear errors", async () => {
    const hive = await startHive();
    const w = (await spawn(hive.url)).body.worker;
    expect((await postJson(`${hive.url}/v1/workers/${w.id}/stop`, {})).status).toBe(200);
    expect(isAlive(w.pid)).toBe(false);
    expect(await workers(hive.url)).toEqual([]);
    const unknownWorker = await postJson(`${hive.url}/v1/workers/w-nope/stop`, {});
    expect(unknownWorker.status).toBe(404);
    const cases: [object, number, string][] = [
      [{ model: "no-such-model" }, 404, "MODEL_NOT_FOUND"],
      [{}, 400, "BAD_REQUEST"],
      [{ model: "stories260K", slots: 0 }, 400, "BAD_REQUEST"],
      [{ model: "stories260K", gpu: "tpu" }, 400, "BAD_REQUEST"],
      [{ model: "stories260K", bogus: true }, 400, "BAD_REQUEST"],
    ];
    for (const [body, status, code] of cases) {
      const res = await spawn(hive.url, body);
      expect(res.status).toBe(status);
      expect(res.body.error.code).toBe(code);
    }
    const unknownCallback = await postJson(`${hive.url}/v1/workers/ready`, { worker_id: "w-x", url: "http://127.0.0.1:1", model_ref: "m", backend: "cpu", device: "cpu", slots_total: 1 });
    expect(unknownCallback.status).toBe(404);
    expect(await hive.stop()).toBe(0);
  });
});
