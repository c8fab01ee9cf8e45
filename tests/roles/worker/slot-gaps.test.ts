// With one KV buffer per slot, llama.cpp decodes only runs of consecutive slots in one pass, so when a lower slot
// frees up while a higher one is busy, the worker moves that sequence down. The move must not change what it writes.
// Greedy: at temperature 1, 400 tokens drift with the batch's shape alone (sums in another order), move or not.
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { RbeeProcess } from "../../support/processes";
import { collectSse, postJson, readSse } from "../../support/sse";
import { startWorker } from "../../support/worker";

let worker: RbeeProcess;
beforeAll(async () => {
  worker = await startWorker(["--slots", "3", "--ctx", "1024"], { env: { RBEE_LOG_LEVEL: "debug" } });
});
afterAll(async () => {
  expect(await worker.stop()).toBe(0);
});

const request = (max_tokens: number, seed: number) => ({ prompt: "Once upon a time", max_tokens, ignore_eos: true, temperature: 0, seed });
const textOf = (events: { event: string; data: string }[]) =>
  events.filter((e) => e.event === "token").map((e) => JSON.parse(e.data).t).join("");

test("a sequence moved down into a freed lower slot writes what it writes alone", async () => {
  const alone = textOf(await collectSse(await postJson(`${worker.url}/v1/execute`, request(400, 11))));

  // The short one takes slot 0, the long one slot 1; when the short one ends, the long one moves to slot 0.
  const short = readSse(await postJson(`${worker.url}/v1/execute`, request(150, 5)));
  const started = (await short.next()).value!;
  expect(JSON.parse(started.data).slot).toBe(0);
  const longEvents = collectSse(await postJson(`${worker.url}/v1/execute`, request(400, 11)));
  for await (const _ of short);
  const events = await longEvents;
  expect(JSON.parse(events[0]!.data).slot).toBe(1);
  expect(events.at(-1)!.event).toBe("end");
  expect(textOf(events)).toBe(alone);
  expect(worker.stderr()).toContain('"msg":"moved a sequence down to close a gap","from":1,"to":0');
});
