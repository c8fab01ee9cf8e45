// The memory arithmetic (inference/memory-plan.ts) against what llama.cpp really allocates for a context: the same
// model loaded for real on the CPU, at several slot counts and contexts, within 10%; and linear in slots.
import { afterAll, describe, expect, test } from "bun:test";
import { rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readModelShape } from "../../src/inference/gguf-metadata";
import { loadModel } from "../../src/inference/load";
import { defaultCtxPerSlot, estimateMemory, fittingCtxPerSlot, kvBytesPerToken, type KvTypes, kvPlan } from "../../src/inference/memory-plan";
import { writeSyntheticGguf } from "../../src/inference/synth-gguf";
import { STORIES_MODEL } from "../support/paths";

const TINY = join(tmpdir(), `rbee-memory-plan-${process.pid}.gguf`);
writeSyntheticGguf(TINY, "tiny");
afterAll(() => rmSync(TINY, { force: true }));

/** What llama.cpp allocated for a context of `slots` × `ctx` on the CPU, and the cells it asked for. */
async function allocated(path: string, slots: number, ctx: number, kv?: KvTypes) {
  const loaded = await loadModel({ modelPath: path, gpu: "cpu", slots, ctx, kv });
  try {
    const addon = (loaded.context as unknown as { _ctx: { getContextSize(): number } })._ctx;
    return { contextBytes: loaded.contextBytes.ram, cells: addon.getContextSize(), ctxPerSlot: loaded.ctxPerSlot, kv: loaded.kv };
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

  describe("KV cache types", () => {
    const kvCases: [string, KvTypes][] = [
      ["q8_0 keys and values", { k: "q8_0", v: "q8_0" }],
      ["q4_0 keys and values", { k: "q4_0", v: "q4_0" }],
      ["q8_0 keys, f16 values", { k: "q8_0", v: "f16" }],
    ];
    for (const [name, kv] of kvCases)
      test(`synthetic tiny, 8 slots of 2048, ${name}: made as asked, the estimate within 10%, and the KV saving as computed`, async () => {
        const shape = await readModelShape(TINY);
        const weightsBytes = statSync(TINY).size;
        const f16 = await allocated(TINY, 8, 2048);
        const typed = await allocated(TINY, 8, 2048, kv);
        expect(typed.kv).toEqual(kv);
        const needs = estimateMemory(shape, { weightsBytes, slots: 8, ctxPerSlot: 2048, onGpu: false, kv });
        expect(Math.abs(needs.kvBytes + needs.computeBytes - typed.contextBytes) / typed.contextBytes).toBeLessThan(0.1);
        // The KV cache shrinks by what the types save per token (q8_0: 34 bytes per 32 values, q4_0: 18, against 64).
        const saved = 8 * 2048 * (kvBytesPerToken(shape) - kvBytesPerToken(shape, kv));
        expect(saved).toBeGreaterThan(0);
        expect(Math.abs(f16.contextBytes - typed.contextBytes - saved) / saved).toBeLessThan(0.1);
      });

    test("a quantized V needs flash attention: stories260K's heads (8 wide) cannot have it, so V stays f16, and says why", async () => {
      const shape = await readModelShape(STORIES_MODEL);
      expect(shape.headDimK).toBe(8);
      const plan = kvPlan(shape, { k: "q8_0", v: "q8_0" }, false);
      expect(plan.kv).toEqual({ k: "q8_0", v: "f16" });
      expect(plan.note).toContain("head size (8)");
      const loaded = await allocated(STORIES_MODEL, 2, 256, { k: "q8_0", v: "q8_0" });
      expect(loaded.kv).toEqual({ k: "q8_0", v: "f16" });
      // On a GPU only head sizes with a kernel take it (a 1B's 64 does).
      expect(kvPlan({ headDimK: 64 }, { k: "q4_0", v: "q4_0" }, true)).toEqual({ kv: { k: "q4_0", v: "q4_0" }, flash: true });
      expect(kvPlan({ headDimK: 32 }, { k: "q8_0", v: "q8_0" }, true).kv.v).toBe("f16");
    });

    test("the default context fits more tokens per slot with a smaller KV type", async () => {
      const shape = await readModelShape(TINY);
      const weightsBytes = statSync(TINY).size;
      const room = estimateMemory(shape, { weightsBytes, slots: 32, ctxPerSlot: 512, onGpu: false }).ramBytes;
      expect(fittingCtxPerSlot(shape, { weightsBytes, slots: 32, onGpu: false, freeBytes: room })).toBe(512);
      expect(fittingCtxPerSlot(shape, { weightsBytes, slots: 32, onGpu: false, freeBytes: room, kv: { k: "q4_0", v: "q4_0" } })).toBeGreaterThan(512);
    });
  });
});
