// rbee's own execute call on a real worker: real story text, the SSE event sequence, stop strings, seeds.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { EndEvent, StartedEvent, TokenEvent } from "../../../src/wire/worker";
import type { RbeeProcess } from "../../support/processes";
import { collectSse, postJson } from "../../support/sse";
import { startWorker } from "../../support/worker";

let worker: RbeeProcess;
beforeAll(async () => {
  worker = await startWorker(["--slots", "4"]);
});
afterAll(async () => {
  expect(await worker.stop()).toBe(0);
});

const execute = (body: unknown, path = "/v1/execute") => postJson(`${worker.url}${path}`, body);

describe("POST /v1/execute", () => {
  test("continues 'Once upon a time' with a story, as started, token..., end", async () => {
    const res = await execute({ prompt: "Once upon a time", max_tokens: 60, seed: 7 });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const events = await collectSse(res);
    expect(events[0]!.event).toBe("started");
    expect(StartedEvent.parse(JSON.parse(events[0]!.data)).prompt_tokens).toBeGreaterThan(1);
    const tokens = events.slice(1, -1).map((e) => {
      expect(e.event).toBe("token");
      return TokenEvent.parse(JSON.parse(e.data));
    });
    expect(events.at(-1)!.event).toBe("end");
    const end = EndEvent.parse(JSON.parse(events.at(-1)!.data));
    expect(end.tokens_out).toBeLessThanOrEqual(60);
    expect(end.stop_reason === "length" ? end.tokens_out : 60).toBe(60);
    expect(end.ttft_ms).toBeGreaterThan(0);
    expect(end.tokens_per_s).toBeGreaterThan(0);
    const indexes = tokens.map((t) => t.i);
    expect(indexes).toEqual([...indexes].sort((a, b) => a - b));
    const text = tokens.map((t) => t.t).join("");
    // stories260K writes TinyStories: a character, a name, a small event.
    expect(text).toMatch(/^,? ?there (was|lived)/);
    expect(text).toMatch(/\b(girl|boy|dog|cat|bird|bunny|Lily|Tim|Timmy|Ben|Sue|mom)\b/);
    expect(text.split(" ").length).toBeGreaterThan(20);
  });

  test("the /execute alias answers the same way", async () => {
    const events = await collectSse(await execute({ prompt: "Once upon a time", max_tokens: 5 }, "/execute"));
    expect(events[0]!.event).toBe("started");
    // The test before left the same prompt in the slot's cells.
    const started = StartedEvent.parse(JSON.parse(events[0]!.data));
    expect(started.cached_tokens).toBe(started.prompt_tokens - 1);
    expect(events.slice(1, -1).every((e) => e.event === "token")).toBe(true);
    expect(events.at(-1)!.event).toBe("end");
    expect(JSON.parse(events.at(-1)!.data).tokens_out).toBe(5);
  });

  test("the same seed gives the same text; temperature 0 is greedy and repeatable", async () => {
    const text = async (body: object) =>
      (await collectSse(await execute({ prompt: "Once upon a time", max_tokens: 40, ...body })))
        .filter((e) => e.event === "token")
        .map((e) => JSON.parse(e.data).t)
        .join("");
    expect(await text({ seed: 42 })).toBe(await text({ seed: 42 }));
    expect(await text({ temperature: 0 })).toBe(await text({ temperature: 0, seed: 9 }));
    const seeds = new Set(await Promise.all([1, 2, 3, 4].map((seed) => text({ seed, temperature: 1 }))));
    expect(seeds.size).toBeGreaterThan(1);
  });

  test("a stop string ends the text before it, with stop_reason stop", async () => {
    const events = await collectSse(await execute({ prompt: "Once upon a time", max_tokens: 100, temperature: 0, stop: ["."] }));
    const text = events.filter((e) => e.event === "token").map((e) => JSON.parse(e.data).t).join("");
    expect(text.length).toBeGreaterThan(5);
    expect(text).not.toContain(".");
    expect(JSON.parse(events.at(-1)!.data).stop_reason).toBe("stop");
  });
});
