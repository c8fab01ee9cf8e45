// The rebuilt addon's sample-then-decode step spreads sampling over threads once the work is large enough (a 32k
// vocabulary, many sequences, many cores; RBEE_SAMPLING_THREADS forces it here): every sequence must still get its
// own sampler's token, and the top-k prefilter must keep the sampler's choices seed for seed.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { writeSyntheticGguf } from "../../../src/inference/synth-gguf";
import { removeTempHomes, tempHome } from "../../support/home";
import { type RbeeProcess, startRbee, waitFor } from "../../support/processes";
import { collectSse, postJson } from "../../support/sse";

const SLOTS = 6;
let model: string;
let worker: RbeeProcess;

async function startTinyWorker(env: Record<string, string>): Promise<RbeeProcess> {
  const started = await startRbee(["worker", "--model", model, "--port", "0", "--slots", String(SLOTS), "--ctx", "1024"], { env });
  await waitFor("worker ready", async () => (await (await fetch(`${started.url}/v1/ready`)).json()).ready === true);
  return started;
}

beforeAll(async () => {
  model = join(tempHome("rbee-synth-"), "tiny.gguf");
  writeSyntheticGguf(model, "tiny");
  worker = await startTinyWorker({ RBEE_SAMPLING_THREADS: "3" });
});
afterAll(async () => {
  expect(await worker.stop()).toBe(0);
  removeTempHomes();
});

async function story(seed: number, on = worker): Promise<string> {
  const body = { prompt: "Once upon a time", max_tokens: 24, ignore_eos: true, temperature: 2, seed };
  const events = await collectSse(await postJson(`${on.url}/v1/execute`, body));
  expect(events.at(-1)!.event).toBe("end");
  return events.filter((e) => e.event === "token").map((e) => JSON.parse(e.data).t).join("");
}

describe("batched sampling over a 32k vocabulary", () => {
  test("side by side, one seed gives one text and different seeds give different ones", async () => {
    expect((await (await fetch(`${worker.url}/v1/ready`)).json()).sampling).toBe("batched");
    const same = await Promise.all(Array.from({ length: SLOTS }, () => story(42)));
    expect(same[0]!.length).toBeGreaterThan(24);
    for (const text of same) expect(text).toBe(same[0]!);
    const different = await Promise.all(Array.from({ length: SLOTS }, (_, i) => story(100 + i)));
    expect(new Set(different).size).toBe(SLOTS);
  });

  test("the top-k prefilter samples what node-llama-cpp's own per-sequence path samples, seed for seed", async () => {
    const stock = await startTinyWorker({ RBEE_STOCK_ADDON: "1" });
    try {
      expect((await (await fetch(`${stock.url}/v1/ready`)).json()).sampling).toBe("per-sequence");
      for (const seed of [1, 2, 3]) expect(await story(seed)).toBe(await story(seed, stock));
    } finally {
      expect(await stock.stop()).toBe(0);
    }
  });
});
