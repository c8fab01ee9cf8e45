// A worker's memory is linear in its slots (N slots of C tokens hold N × C cells), and a slot holds exactly
// ctx_per_slot tokens: a prompt plus max_tokens up to it is generated in full, one token more is refused.
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { readModelShape } from "../../../src/inference/gguf-metadata";
import { estimateMemory, kvBytesPerToken } from "../../../src/inference/memory-plan";
import { EndEvent, ReadyResponse, StartedEvent } from "../../../src/wire/worker";
import { STORIES_MODEL } from "../../support/paths";
import type { RbeeProcess } from "../../support/processes";
import { collectSse, postJson } from "../../support/sse";
import { startWorker } from "../../support/worker";

const MiB = 2 ** 20;
const started: RbeeProcess[] = [];
afterAll(async () => {
  for (const w of started) expect(await w.stop()).toBe(0);
});

async function worker(slots: number, ctx: number) {
  const w = await startWorker(["--slots", String(slots), "--ctx", String(ctx)]);
  started.push(w);
  const ready = ReadyResponse.parse(await (await fetch(`${w.url}/v1/ready`)).json());
  return { w, ready };
}

/** Resident memory of a process, from the kernel. */
function rssBytes(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kb) * 1024;
}

describe("worker memory", () => {
  test("32 slots against 4 of the same context: the resident memory differs by 28 slots' KV cache, as N × C predicts", async () => {
    // Past stories260K's training context (llama.cpp allows it), so that the KV cache stands out of the process's noise.
    const ctx = 8192;
    const shape = await readModelShape(STORIES_MODEL);
    const four = await worker(4, ctx);
    const thirtyTwo = await worker(32, ctx);
    expect(four.ready.ctx_per_slot).toBe(ctx);
    expect(thirtyTwo.ready.ctx_per_slot).toBe(ctx);
    const weightsBytes = statSync(STORIES_MODEL).size;
    for (const [slots, { ready }] of [[4, four], [32, thirtyTwo]] as const) {
      const plan = estimateMemory(shape, { weightsBytes, slots, ctxPerSlot: ctx, onGpu: false });
      const reported = ready.context_bytes.ram;
      expect(Math.abs(plan.kvBytes + plan.computeBytes - reported) / reported).toBeLessThan(0.1);
    }
    const predicted = 28 * ctx * kvBytesPerToken(shape); // 140 MiB; with slots × ctx cells per slot it was 5.4 GiB
    expect(Math.abs(thirtyTwo.ready.context_bytes.ram - four.ready.context_bytes.ram - predicted)).toBeLessThan(MiB);
    await Bun.sleep(300);
    const grown = rssBytes(thirtyTwo.w.proc.pid) - rssBytes(four.w.proc.pid);
    // Resident memory is noisier (the JavaScript heap, slot bookkeeping): within 20% of the prediction.
    expect(Math.abs(grown - predicted) / predicted).toBeLessThan(0.2);
  });

  test("a prompt plus max_tokens of exactly ctx_per_slot is generated in full; one token more is refused", async () => {
    const { w, ready } = await worker(32, 128);
    expect(ready.ctx_per_slot).toBe(128);
    const probe = await collectSse(await postJson(`${w.url}/v1/execute`, { prompt: "Once upon a time", max_tokens: 1 }));
    const promptTokens = StartedEvent.parse(JSON.parse(probe[0]!.data)).prompt_tokens;
    const room = 128 - promptTokens;
    const full = await collectSse(await postJson(`${w.url}/v1/execute`, { prompt: "Once upon a time", max_tokens: room, ignore_eos: true, seed: 1 }));
    const end = EndEvent.parse(JSON.parse(full.at(-1)!.data));
    expect(end).toMatchObject({ tokens_out: room, stop_reason: "length" });
    expect(full.filter((e) => e.event === "token")).toHaveLength(room);
    const over = await postJson(`${w.url}/v1/execute`, { prompt: "Once upon a time", max_tokens: room + 1 });
    expect(over.status).toBe(400);
    const body = await over.json();
    expect(body.error.code).toBe("CONTEXT_OVERFLOW");
    expect(body.error.message).toBe(`prompt (${promptTokens} tokens) + max_tokens (${room + 1}) exceeds the context of 128 tokens`);
  });

  test("a context that cannot fit in RAM is refused at once (exit 5, the memory code), not killed by the kernel later", async () => {
    const { runRbee } = await import("../../support/processes");
    const started = Date.now();
    const run = await runRbee(["worker", "--model", STORIES_MODEL, "--port", "0", "--slots", "64", "--ctx", "40000000"]);
    expect(run.code).toBe(5);
    expect(run.stderr.trim().split("\n").at(-1)).toMatch(/^rbee: not enough RAM for 64 slots of 40000000 tokens: needs [\d.]+ TiB, [\d.]+ GiB free; use fewer --slots or a smaller --ctx$/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
