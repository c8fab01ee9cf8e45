// What the dashboard reads and does, over HTTP on a real queen: the page for browsers and the probe's text for API
// clients at /, the bundled files, the cluster snapshot and its event stream (history, then samples with tokens/s),
// starting and stopping a worker, unloading a model, following a hive's and a worker's log; bad input gets 4xx.
import { afterAll, describe, expect, test } from "bun:test";
import { removeTempHomes } from "../../support/home";
import { killStartedProcesses, runRbee, waitFor } from "../../support/processes";
import { startQueen } from "../../support/queen";
import { readSse } from "../../support/sse";

afterAll(async () => {
  await killStartedProcesses();
  removeTempHomes();
});

/** The first `count` events of a server-sent event stream, then it is closed. */
async function firstEvents(url: string, count: number, headers: Record<string, string> = {}): Promise<{ event: string; data: string }[]> {
  const aborter = new AbortController();
  const res = await fetch(url, { signal: aborter.signal, headers });
  expect(res.headers.get("content-type")).toContain("text/event-stream");
  const events: { event: string; data: string }[] = [];
  try {
    for await (const e of readSse(res)) {
      events.push(e);
      if (events.length >= count) break;
    }
  } finally {
    aborter.abort();
  }
  return events;
}

/** Every event a stream sends within `ms` (a log's backlog comes at once, then it waits for more). */
async function eventsWithin(url: string, ms: number): Promise<{ event: string; data: string }[]> {
  const aborter = new AbortController();
  const res = await fetch(url, { signal: aborter.signal });
  expect(res.status).toBe(200);
  const events: { event: string; data: string }[] = [];
  const timer = setTimeout(() => aborter.abort(), ms);
  try {
    for await (const e of readSse(res)) events.push(e);
  } catch {
    // aborted
  } finally {
    clearTimeout(timer);
  }
  return events;
}

describe("dashboard API", () => {
  test("page, files, snapshot, events; start, stop, unload, logs; bad input", async () => {
    const queen = await startQueen();
    const url = queen.url;

    // The page for a browser; the probe's text for anyone else; HEAD still answers.
    const page = await fetch(url, { headers: { accept: "text/html,application/xhtml+xml" } });
    expect(page.headers.get("content-type")).toContain("text/html");
    const html = await page.text();
    const script = /src="(\/dashboard\/app\.js\?v=\w+)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    expect(await (await fetch(url)).text()).toContain("rbee is running");
    expect((await fetch(url, { method: "HEAD" })).status).toBe(200);
    const js = await fetch(`${url}${script}`);
    expect(js.headers.get("content-type")).toContain("javascript");
    expect((await js.text()).length).toBeGreaterThan(20_000); // uPlot is in it
    const css = await fetch(`${url}/dashboard/app.css`);
    expect(await css.text()).toContain(".uplot");
    expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org)/); // nothing from elsewhere
    expect((await fetch(`${url}/dashboard/other.js`)).status).toBe(404);

    // Start a worker for a model by its name; it shows in the snapshot, on the local node.
    const started = await fetch(`${url}/v1/workers`, { method: "POST", body: JSON.stringify({ model: "stories260K" }) });
    expect(started.status).toBe(201);
    const { worker } = await started.json();
    expect(worker.node).toBe("localhost");
    let snapshot = await (await fetch(`${url}/v1/cluster`)).json();
    expect(snapshot.nodes.find((n: { name: string }) => n.name === "localhost")).toMatchObject({ state: "up", devices: { cpu_cores: expect.any(Number) } });
    expect(snapshot.nodes[0].models.map((m: { name: string }) => m.name)).toContain("stories260K");
    expect(snapshot.workers).toEqual([expect.objectContaining({ id: worker.id, state: "idle", slots_busy: 0, slots_total: expect.any(Number), keep_alive_until: expect.any(String) })]);

    // Tokens streamed through the queen show as tokens/s in the next sample, for the worker and in total.
    const answer = await fetch(`${url}/v1/completions`, { method: "POST", body: JSON.stringify({ model: "stories260K", prompt: "Once upon a time", max_tokens: 40, stream: true }) });
    await answer.text();
    const sampled = await waitFor("a sample with tokens", async () => {
      const events = await firstEvents(`${url}/v1/cluster/events`, 3);
      expect(events.map((e) => e.event)).toEqual(["history", "snapshot", "sample"]);
      const history = JSON.parse(events[0]!.data) as { tokens_per_s: number; workers: Record<string, { tokens_per_s: number }> }[];
      return history.find((s) => s.tokens_per_s > 0);
    });
    expect(sampled.tokens_per_s).toBeGreaterThanOrEqual(30); // 40 tokens within about a second
    expect(sampled.workers[worker.id]!.tokens_per_s).toBe(sampled.tokens_per_s);

    // The hive's own log and the worker's: their backlogs, as events.
    const hiveLog = (await eventsWithin(`${url}/v1/nodes/localhost/logs`, 500)).map((e) => JSON.parse(e.data).line as string);
    expect(hiveLog.some((l) => l.includes(`worker ${worker.id} ready`))).toBe(true);
    const workerLog = (await eventsWithin(`${url}/v1/workers/${worker.id}/logs`, 500)).map((e) => JSON.parse(e.data));
    expect(workerLog.length).toBeGreaterThan(0);
    expect(workerLog.some((l) => l.line.includes("listening on"))).toBe(true);

    // Bad input: 4xx with the error shape.
    const bad = async (res: Response, status: number, text: string) => {
      expect(res.status).toBe(status);
      expect((await res.json()).error.message).toContain(text);
    };
    await bad(await fetch(`${url}/v1/workers`, { method: "POST", body: JSON.stringify({}) }), 400, "model");
    await bad(await fetch(`${url}/v1/workers`, { method: "POST", body: "{not json" }), 400, "JSON");
    await bad(await fetch(`${url}/v1/workers`, { method: "POST", body: JSON.stringify({ model: "no-such-model" }) }), 404, "no-such-model");
    await bad(await fetch(`${url}/v1/workers`, { method: "POST", body: JSON.stringify({ model: "stories260K", node: "nowhere" }) }), 404, "nowhere");
    // The one CPU-only node already serves it: no second replica there.
    await bad(await fetch(`${url}/v1/workers`, { method: "POST", body: JSON.stringify({ model: "stories260K" }) }), 400, "already");
    await bad(await fetch(`${url}/v1/models/unload`, { method: "POST", body: JSON.stringify({ model: "other" }) }), 404, "no worker serves");
    await bad(await fetch(`${url}/v1/workers/w-none/logs`), 404, "w-none");
    await bad(await fetch(`${url}/v1/nodes/nowhere/logs`), 404, "nowhere");
    await bad(await fetch(`${url}/v1/workers/w-none/stop`, { method: "POST" }), 404, "w-none");

    // Unload, by a name given to the model: its workers stop (none has a request in flight), and the snapshot shows it.
    expect((await runRbee(["models", "alias", "tale", "stories260K"], { env: { RBEE_HOME: queen.home } })).code).toBe(0);
    const unloading = await fetch(`${url}/v1/models/unload`, { method: "POST", body: JSON.stringify({ model: "tale" }) });
    expect((await unloading.json()).unloading).toEqual([worker.id]);
    snapshot = await waitFor("the worker gone", async () => {
      const s = await (await fetch(`${url}/v1/cluster`)).json();
      return s.workers.length === 0 ? s : undefined;
    });
    expect(snapshot.workers).toEqual([]);

    // Start again, then stop it by id.
    const again = (await (await fetch(`${url}/v1/workers`, { method: "POST", body: JSON.stringify({ model: "stories260K", node: "localhost" }) })).json()).worker;
    expect((await (await fetch(`${url}/v1/workers/${again.id}/stop`, { method: "POST" })).json()).stopped).toBe(again.id);
    expect((await (await fetch(`${url}/v1/cluster`)).json()).workers).toEqual([]);
  });

  test("with API keys: the page and its files stay open, what it reads needs an operator key", async () => {
    const queen = await startQueen(["--api-token", "cluster-secret"]);
    const created = await runRbee(["keys", "create", "reader", "--scopes", "inference", "--json"], { env: { RBEE_HOME: queen.home } });
    const reader = JSON.parse(created.stdout).key as string;
    expect((await fetch(queen.url, { headers: { accept: "text/html" } })).status).toBe(200);
    expect((await fetch(`${queen.url}/dashboard/app.js`)).status).toBe(200);
    expect((await fetch(`${queen.url}/v1/cluster`)).status).toBe(401);
    expect((await fetch(`${queen.url}/v1/cluster/events`, { headers: { authorization: `Bearer ${reader}` } })).status).toBe(403);
    expect((await fetch(`${queen.url}/v1/workers`, { method: "POST", headers: { authorization: `Bearer ${reader}` }, body: JSON.stringify({ model: "stories260K" }) })).status).toBe(403);
    const events = await firstEvents(`${queen.url}/v1/cluster/events`, 2, { authorization: "Bearer cluster-secret" });
    expect(events.map((e) => e.event)).toEqual(["history", "snapshot"]);
  });
});
