// A free slot keeps its last prompt's cells: a request whose prompt starts the same way evaluates only the rest, and
// generates what it would have generated from scratch. tests/e2e/older-engine.test.ts runs this file again on an engine
// that cannot copy sequences (node-llama-cpp 3.21's, through RBEE_RUNTIME_DIR): prompts then stay where they are.
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Token } from "node-llama-cpp";
import { BatchEngine, type GenerationRequest } from "../../src/inference/engine";
import { type LoadedModel, loadModel } from "../../src/inference/load";
import { STORIES_MODEL } from "../support/paths";

let loaded: LoadedModel;
let engine: BatchEngine;
beforeAll(async () => {
  loaded = await loadModel({ modelPath: STORIES_MODEL, gpu: "cpu", slots: 2, ctx: 512 });
  engine = new BatchEngine({ model: loaded.model, context: loaded.context, slots: 2, ctxPerSlot: loaded.ctxPerSlot, kvPerSlot: true, decodeRunsAhead: false, queueLimit: 8 });
});
afterAll(async () => {
  await engine.close();
  await loaded.dispose();
});

const tokens = (text: string) => loaded.model.tokenize(text, true) as Token[];

/** Greedy, so that the same cells must give the same text. */
const greedy = (prompt: string, extra: Partial<GenerationRequest> = {}): GenerationRequest => ({
  promptTokens: tokens(prompt),
  maxTokens: 40,
  stop: [],
  ignoreEos: true,
  temperature: 0,
  topP: 1,
  ...extra,
});

/** Runs a greedy request to its length; `slot` is where it ran. */
async function run(prompt: string, extra: Partial<GenerationRequest> = {}) {
  let slot = -1;
  const result = await engine.submit(greedy(prompt, { onStart: (info) => (slot = info.slot), ...extra }));
  expect(result.stopReason).toBe("length");
  return { ...result, slot };
}

test("the same prompt again reuses all its cells but the last token's, and generates the same text", async () => {
  const prompt = "Once upon a time, there was a little girl named Lily.";
  const first = await run(prompt, { cachePrompt: false });
  expect(first.cachedPromptTokens).toBe(0);
  const again = await run(prompt);
  expect(again.cachedPromptTokens).toBe(first.promptTokens - 1);
  expect(again.text).toBe(first.text);
  const uncached = await run(prompt, { cachePrompt: false });
  expect(uncached.cachedPromptTokens).toBe(0);
  expect(uncached.text).toBe(first.text);
});

/** How many tokens two prompts share at their start. */
function sharedStart(a: string, b: string): number {
  const [ta, tb] = [tokens(a), tokens(b)];
  let shared = 0;
  while (ta[shared] === tb[shared]) shared++;
  return shared;
}

test("a prompt that shares most of a slot's prompt reuses exactly that start", async () => {
  const a = "Once upon a time, there was a little dog. The dog liked to run in the park.";
  const b = "Once upon a time, there was a little dog. The dog liked to eat a big bone.";
  const shared = sharedStart(a, b);
  expect(2 * shared).toBeGreaterThanOrEqual(tokens(a).length);
  expect(shared).toBeLessThan(tokens(b).length - 1);
  await run(a);
  const reused = await run(b);
  expect(reused.cachedPromptTokens).toBe(shared);
  const scratch = await run(b, { cachePrompt: false });
  expect(reused.text).toBe(scratch.text);
});

test("a prompt that merely begins like a slot's prompt leaves that prompt's cells alone (moved to an empty slot)", async () => {
  const history = "Once upon a time, there was a little dog. The dog liked to run in the park with his friend the cat.";
  const other = "Once upon a time, there was a big red car that drove fast down the long road to the blue sea.";
  const shared = sharedStart(history, other);
  expect(shared).toBeGreaterThan(3);
  expect(2 * shared).toBeLessThan(Math.min(tokens(history).length, tokens(other).length));
  await engine.close();
  engine = new BatchEngine({ model: loaded.model, context: loaded.context, slots: 2, ctxPerSlot: loaded.ctxPerSlot, kvPerSlot: true, decodeRunsAhead: false, queueLimit: 8 });
  const first = await run(history);
  const unrelated = await run(other);
  if (engine.sequenceCopy) {
    // It takes the lowest slot, and the start it shares with the prompt held there; that prompt moves up first.
    expect(unrelated.slot).toBe(0);
    expect(unrelated.cachedPromptTokens).toBe(shared);
  } else {
    // Nothing can move: it takes the empty slot and leaves the history where it is.
    expect(unrelated.slot).toBe(1);
    expect(unrelated.cachedPromptTokens).toBe(0);
  }
  const again = await run(history);
  expect(again.cachedPromptTokens).toBe(first.promptTokens - 1);
  expect(again.text).toBe(first.text);
  expect(unrelated.text).toBe((await run(other, { cachePrompt: false })).text);
});

test("a request goes to the slot that holds its prompt, and a moved sequence takes its cells along", async () => {
  const x = "The sun was hot and the sky was blue.";
  const y = "Once upon a time, there was a big bear who lived in a cave.";
  const [fx, fy] = await Promise.all([run(x, { cachePrompt: false }), run(y, { cachePrompt: false })]);
  expect([fx.slot, fy.slot]).toEqual([0, 1]);
  // Slot 1 holds y: the request goes there, then (where the engine copies sequences) moves down into the free slot 0,
  // its cells copied, and still generates y's text.
  const y2 = await run(y);
  expect(y2.slot).toBe(1);
  expect(y2.cachedPromptTokens).toBe(fy.promptTokens - 1);
  expect(y2.text).toBe(fy.text);
  // Moved: slot 0 now holds y's prompt, slot 1 nothing. Not moved: y stays in slot 1 and x in slot 0.
  const y3 = await run(y);
  expect(y3.slot).toBe(engine.sequenceCopy ? 0 : 1);
  expect(y3.cachedPromptTokens).toBe(fy.promptTokens - 1);
  expect(y3.text).toBe(fy.text);
  const x2 = await run(x);
  if (engine.sequenceCopy) expect(x2.cachedPromptTokens).toBeLessThan(3); // at most the start-of-text token and what x and y share
  else expect(x2.cachedPromptTokens).toBe(fx.promptTokens - 1);
  expect(x2.text).toBe(fx.text);
});

test("a request cancelled part-way leaves its prompt's cells right for the next", async () => {
  const prompt = "Once upon a time, there was a small cat who liked milk.";
  const whole = await run(prompt, { cachePrompt: false });
  const controller = new AbortController();
  const cancelled = await engine.submit(greedy(prompt, { signal: controller.signal, onText: (_text, index) => index >= 3 && controller.abort() }));
  expect(cancelled.stopReason).toBe("cancelled");
  expect(cancelled.tokensOut).toBeLessThan(40);
  const next = await run(prompt);
  expect(next.cachedPromptTokens).toBe(whole.promptTokens - 1);
  expect(next.text).toBe(whole.text);
  expect(engine.slotsIdle).toBe(2);
});
