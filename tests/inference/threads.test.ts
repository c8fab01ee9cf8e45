// How many CPU threads llama.cpp gets: one for tiny models and for models wholly on a GPU, else every usable core; and
// for steps that carry prompt chunks on the CPU, every usable core unless --threads fixed the count.
import { expect, test } from "bun:test";
import { choosePromptThreads, chooseThreads, SMALL_MODEL_BYTES, usableCores } from "../../src/inference/threads";

test("decode threads: one for a tiny model or one wholly on a GPU, else every usable core; --threads wins", () => {
  expect(chooseThreads({ modelBytes: SMALL_MODEL_BYTES - 1 })).toBe(1);
  expect(chooseThreads({ modelBytes: 8 * 2 ** 30, allLayersOnGpu: true })).toBe(1);
  expect(chooseThreads({ modelBytes: 8 * 2 ** 30 })).toBe(usableCores());
  expect(chooseThreads({ modelBytes: SMALL_MODEL_BYTES - 1, requested: 3 })).toBe(3);
});

test("prompt threads: every usable core on the CPU, what decoding has on a GPU or with --threads", () => {
  expect(choosePromptThreads({ onCpu: true, decodeThreads: 1 })).toBe(usableCores());
  expect(choosePromptThreads({ onCpu: true, requested: 1, decodeThreads: 1 })).toBe(1);
  expect(choosePromptThreads({ onCpu: false, decodeThreads: 1 })).toBe(1);
});
