// The memory arithmetic (inference/memory-plan.ts) against what llama.cpp really allocates for a context: the same
// model loaded for real on the CPU, at several slot counts and contexts, within 10%; and linear in slots.
import { afterAll, describe, expect, test } from "bun:test";
import { rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readModelShape } from "../../src/inference/gguf-metadata";
import { loadModel } from "../../src/inference/load";
import { defaultCtxPerSlot, estimateMemory, fittingCtxPerSlot, kvBytesPerToken } from "../../src/inference/memory-plan";
import { writeSyntheticGguf } from "../../src/inference/synth-gguf";
import { STORIES_MODEL } from "../support/paths";

const TINY = join(tmpdir(), `rbee-memory-plan-${process.pid}.gguf`);
writeSyntheticGguf(TINY, "tiny");
afterAll(() => rmSync(TINY, { force: true }));

/** What llama.cpp allocated for a context of `slots` × `ctx` on the CPU, and the cells it asked for. */
async function allocated(path: string, slots: number, ctx: number) {
  const loaded = await loadModel({ modelPath: path, gpu: "cpu", slots, ctx });
  try {
    const addon = (loaded.context as unknown as { _ctx: { getContextSize(): number } })._ctx;
    return { contextBytes: loaded.contextBytes.ram, cells: addon.getContextSize(), ctxPerSlot: loaded.ctxPerSlot };
  } finally {
    await loaded.dispose();
  }
}

describe("memory plan", () => {
  const cases: [string, () => string, number, number][] = [
    ["stories260K, 1 slot of 256", () => STORIES_MODEL, 1, 256],
    ["stories260K, 4 slots of 512", () => STORIES_MODEL, 4, 512],
    ["stories260K, 32 slots of 512", () => STORIES_MODEL, 32, 512],
    ["stories260K, 64 slots of 2048", () => STORIES_MODEL, 64, 2048],
    ["synthetic tiny (32k vocabulary), 1 slot of 256", () => TINY, 1, 256],
    ["synthetic tiny, 8 slots of 2048", () => TINY, 8, 2048],
    ["synthetic tiny, 32 slots of 4096", () => TINY, 32, 4096],
  ];
  for (const [name, path, slots, ctx] of cases) {
    test(`${name}: N × C cells, and the estimate is within 10% of llama.cpp's allocation`, async () => {
      const shape = await readModelShape(path());
      const real = await allocated(path(), slots, ctx);
      expect(real.ctxPerSlot).toBe(ctx);
      expect(real.cells).toBe(slots * ctx);
      const needs = estimateMemory(shape, { weightsBytes: statSync(path()).size, slots, ctxPerSlot: ctx, onGpu: false });
      const estimated = needs.kvBytes + needs.computeBytes;
      expect(Math.abs(estimated - real.contextBytes) / real.contextBytes).toBeLessThan(0.1);
    });
  }

  test("the KV cache is linear in slots: 32 slots take 8 × the cells of 4, and the bytes differ by 28 slots' KV", async () => {
    const shape = await readModelShape(STORIES_MODEL);
    const four = await allocated(STORIES_MODEL, 4, 1024);
    const thirtyTwo = await allocated(STORIES_MODEL, 32, 1024);
    expect(thirtyTwo.cells).toBe(8 * four.cells);
    const predicted = 28 * 1024 * kvBytesPerToken(shape);
    expect(Math.abs(thirtyTwo.contextBytes - four.contextBytes - predicted) / predicted).toBeLessThan(0.05);
  });

  test("the default context is the training context up to 8192, halved only where memory is short", async () => {
    const shape = await readModelShape(STORIES_MODEL);
    expect(shape.trainCtx).toBe(2048);
    expect(defaultCtxPerSlot(shape)).toBe(2048);
    expect(defaultCtxPerSlot({ trainCtx: 131072 })).toBe(8192);
    const weightsBytes = statSync(STORIES_MODEL).size;
    expect(fittingCtxPerSlot(shape, { weightsBytes, slots: 32, onGpu: false, freeBytes: 2 ** 40 })).toBe(2048);
    const room = estimateMemory(shape, { weightsBytes, slots: 32, ctxPerSlot: 512, onGpu: false }).ramBytes;
    expect(fittingCtxPerSlot(shape, { weightsBytes, slots: 32, onGpu: false, freeBytes: room })).toBe(512);
    expect(fittingCtxPerSlot(shape, { weightsBytes, slots: 32, onGpu: false, freeBytes: 1000 })).toBeUndefined();
  });
});
