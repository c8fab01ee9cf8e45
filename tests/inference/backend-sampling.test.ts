// Requests may get their tokens picked by the backend, in the decode's own graph (llama.cpp's backend samplers:
// native/backend-sampling.cpp): greedy ones, and the OpenAI routes' default chain (top-k, top-p, min-p, temperature, a
// seeded draw). A request whose grammar, biases, penalties or logprobs need the row of logits is sampled on the host.
// The CPU backend has the same samplers as CUDA, so the path runs here while slots change hands between kinds of
// requests (chains attached, replaced and detached) and sequences move down to close gaps.
import { expect, test } from "bun:test";
import type { Token } from "node-llama-cpp";
import type { BatchEngine, GenerationRequest } from "../../src/inference/engine";
import { backendSamplingWanted } from "../../src/inference/step";
import { engineOn, storiesForFile } from "../support/engine";

const SLOTS = 3;
const model = storiesForFile(SLOTS, 256);

type Settings = Omit<GenerationRequest, "promptTokens" | "stop"> & { prompt: string };
const greedy = (maxTokens: number, prompt: string): Settings => ({ prompt, maxTokens, ignoreEos: true, temperature: 0, topP: 1 });
const drawn = (maxTokens: number, prompt: string, seed: number): Settings => ({ prompt, maxTokens, ignoreEos: true, temperature: 0.9, topP: 0.95, seed });

function engineWith(backendSampling: boolean): BatchEngine {
  const engine = engineOn(model(), SLOTS, { queueLimit: 16, backendSampling });
  expect(engine.backendSampling).toBe(backendSampling);
  return engine;
}

/** Each wave side by side, waves one after the other: every slot serves greedy, drawn and host-sampled requests in turn. */
async function run(backendSampling: boolean, waves: Settings[][]): Promise<{ texts: string[]; picks: number; attachments: number }> {
  const engine = engineWith(backendSampling);
  const texts: string[] = [];
  for (const wave of waves) {
    const results = await Promise.all(wave.map(({ prompt, ...s }) => engine.submit({ ...s, promptTokens: model().model.tokenize(prompt) as Token[], stop: [] })));
    for (const r of results) expect(r.stopReason).toBe("length");
    texts.push(...results.map((r) => r.text));
  }
  const counts = engine.backendSamplingCounts;
  await engine.close();
  return { texts, ...counts };
}

const tokenOf = (word: string) => model().model.tokenize(` ${word}`)[0]!;
const mixed = (): Settings[][] => [
  [greedy(50, "Once upon a time"), greedy(90, "The little dog"), drawn(70, "One day Lily", 3)],
  [drawn(60, "The little dog", 11), greedy(40, "One day Lily"), { ...greedy(80, "Once upon a time"), repeatPenalty: 1.3 }],
  [{ ...greedy(60, "One day Lily"), logprobs: { top: 2 } }, greedy(100, "Once upon a time"), { ...greedy(30, "The little dog"), logitBias: new Map([[tokenOf("the"), -5]]) }],
];
const GREEDY_AT = [0, 1, 4, 7];
const DRAWN_AT = [2, 3];

test("greedy tokens picked on the backend are the host's; drawn ones repeat with their seed; the rest sample as before", async () => {
  const off = await run(false, mixed());
  const on = await run(true, mixed());
  expect(off.picks).toBe(0);
  // Every token of the four plain greedy requests (50 + 90 + 40 + 100) and the two drawn ones (70 + 60), the first too
  // (their prompts' outputs), came from the backend, and none of the three others'.
  expect(on.picks).toBe(280 + 130);
  expect(on.attachments).toBeGreaterThanOrEqual(4);
  expect(GREEDY_AT.map((i) => on.texts[i])).toEqual(GREEDY_AT.map((i) => off.texts[i]));
  for (const i of [5, 6, 8]) expect(on.texts[i]).toBe(off.texts[i]!);
  expect(off.texts.every((t) => t.length > 60)).toBe(true);
  // A drawn request's text is its seed's: the same again, and not the greedy text of its prompt.
  const again = await run(true, mixed());
  expect(again.texts).toEqual(on.texts);
  for (const i of DRAWN_AT) expect(on.texts[i]!.length).toBeGreaterThan(60);
  expect(on.texts[3]).not.toBe((await run(true, [[greedy(60, "The little dog")]])).texts[0]);
  // And off again after the engines detached their chains: the context is left as it was.
  expect((await run(false, mixed())).texts).toEqual(off.texts);
});

test("a drawn request whose sequence moves down to close a gap keeps drawing as it would have in place", async () => {
  const alone = await run(true, [[drawn(80, "One day Lily", 5)]]);
  // The first request ends after 10 tokens; the drawn one then moves from slot 1 to slot 0, chain and draws with it.
  const moved = await run(true, [[greedy(10, "The little dog"), drawn(80, "One day Lily", 5)]]);
  expect(moved.texts[1]).toBe(alone.texts[0]!);
  expect(moved.picks).toBe(90);
});

test("backend sampling is off unless RBEE_BACKEND_SAMPLING=1, and another value is refused", () => {
  expect(backendSamplingWanted({})).toBe(false);
  expect(backendSamplingWanted({ RBEE_BACKEND_SAMPLING: "0" })).toBe(false);
  expect(backendSamplingWanted({ RBEE_BACKEND_SAMPLING: "1" })).toBe(true);
  expect(() => backendSamplingWanted({ RBEE_BACKEND_SAMPLING: "yes" })).toThrow("RBEE_BACKEND_SAMPLING=yes: 1 (on) or 0 (off, the default)");
});
