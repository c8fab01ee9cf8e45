// Slots, the bounded queue (503 + Retry-After past it), and cancellation when a client goes away.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { RbeeProcess } from "../../support/processes";
import { waitFor } from "../../support/processes";
import { collectSse, postJson, readSse } from "../../support/sse";
import { startWorker } from "../../support/worker";

let worker: RbeeProcess;
beforeAll(async () => {
  worker = await startWorker(["--slots", "2", "--queue", "1", "--ctx", "2048"]);
});
afterAll(async () => {
  expect(await worker.stop()).toBe(0);
});

const ready = async () => (await fetch(`${worker.url}/v1/ready`)).json();
/** Keeps a slot busy for a second or so while the test looks at it. */
const LONG = { prompt: "Once upon a time", max_tokens: 2000, ignore_eos: true };

async function openStream(body: object = LONG) {
  const controller = new AbortController();
  const res = await postJson(`${worker.url}/v1/execute`, body, { signal: controller.signal });
  const events = readSse(res);
  return { res, events, controller };
}

describe("slots and queue", () => {
  test("several requests run at once, each in its own slot, and all finish", async () => {
    const results = await Promise.all(
      [1, 2, 3].map(async (seed) => collectSse(await postJson(`${worker.url}/v1/execute`, { prompt: "Once upon a time", max_tokens: 30, seed }))),
    );
    for (const events of results) {
      expect(events[0]!.event).toBe("started");
      expect(events.at(-1)!.event).toBe("end");
    }
    const slots = results.map((events) => JSON.parse(events[0]!.data).slot);
    expect(new Set(slots.slice(0, 2)).size).toBe(2);
    expect((await ready()).slots_idle).toBe(2);
  });

  test("each sequence samples with its own sampler: one seed gives one text, alone or side by side", async () => {
    const story = async (seed: number) => {
      const events = await collectSse(await postJson(`${worker.url}/v1/execute`, { prompt: "Once upon a time", max_tokens: 40, temperature: 1, seed }));
      expect(events.at(-1)!.event).toBe("end");
      return events.filter((e) => e.event === "token").map((e) => JSON.parse(e.data).t).join("");
    };
    const [a, b] = await Promise.all([story(7), story(7)]);
    expect(a).toBe(b);
    expect(a.length).toBeGreaterThan(20);
    const [c, d] = await Promise.all([story(7), story(8)]);
    expect(c).toBe(a);
    expect(d).not.toBe(a);
  });

  test("past the free slots and the queue, a request gets 503 with Retry-After, then succeeds once there is room", async () => {
    const a = await openStream();
    const b = await openStream();
    expect((await a.events.next()).value!.event).toBe("started");
    expect((await b.events.next()).value!.event).toBe("started");
    const queued = postJson(`${worker.url}/v1/execute`, { prompt: "Once upon a time", max_tokens: 5 });
    await waitFor("a queued request", async () => (await ready()).queued === 1);
    const overflow = await postJson(`${worker.url}/v1/execute`, { prompt: "Once upon a time", max_tokens: 5 });
    expect(overflow.status).toBe(503);
    expect(overflow.headers.get("retry-after")).toBe("1");
    expect((await overflow.json()).error.code).toBe("QUEUE_FULL");
    a.controller.abort();
    b.controller.abort();
    const queuedEvents = await collectSse(await queued);
    expect(queuedEvents.at(-1)!.event).toBe("end");
    await waitFor("slots freed", async () => (await ready()).slots_idle === 2);
  });

  test("a client that disconnects frees its slot at once", async () => {
    const a = await openStream();
    expect((await a.events.next()).value!.event).toBe("started");
    expect((await a.events.next()).value!.event).toBe("token");
    const busy = await ready();
    expect(busy.slots_idle).toBe(1);
    expect(busy.state).toBe("busy");
    const abortedAt = performance.now();
    a.controller.abort();
    await waitFor("slot freed", async () => (await ready()).slots_idle === 2, 2000);
    expect(performance.now() - abortedAt).toBeLessThan(1000);
    expect((await ready()).state).toBe("idle");
  });
});
