// A request the engine cannot start (its sampler cannot be built) ends with an error at once, instead of leaving its
// caller waiting, and the engine goes on serving the others.
import { expect, test } from "bun:test";
import type { Token } from "node-llama-cpp";
import { engineOn, storiesForFile } from "../support/engine";

const model = storiesForFile(2, 256);

test("a sampler that cannot be built ends its request with an error, and the next request is served", async () => {
  const loaded = model();
  const engine = engineOn(loaded, 2);
  const promptTokens = loaded.model.tokenize("Once upon a time") as Token[];
  const request = { promptTokens, maxTokens: 20, stop: [], ignoreEos: true, temperature: 0.5, topP: 0.95, seed: 1 };
  // The wire always fills top_p in; a caller inside the process that does not gets an error, not a hang.
  const broken = engine.submit({ ...request, topP: undefined as unknown as number });
  const fine = engine.submit(request);
  const [failed, served] = await Promise.all([broken, fine]);
  expect(failed.stopReason).toBe("error");
  expect(failed.error).toContain("number");
  expect(failed.tokensOut).toBe(0);
  expect(served.stopReason).toBe("length");
  expect(served.tokensOut).toBe(20);
  expect(engine.slotsIdle).toBe(2);
  await engine.close();
});

test("a slot the engine cannot prepare ends its request with an error instead of leaving it waiting forever", async () => {
  const loaded = model();
  // A context of its own, disposed: preparing a slot on it throws inside the admission of the waiting request.
  const context = await loaded.model.createContext({ contextSize: 256, sequences: 2 });
  const engine = engineOn({ ...loaded, context }, 2);
  await context.dispose();
  const promptTokens = loaded.model.tokenize("Once upon a time") as Token[];
  const outcome = await Promise.race([
    engine.submit({ promptTokens, maxTokens: 8, stop: [], ignoreEos: true, temperature: 0, topP: 1 }),
    Bun.sleep(10_000).then(() => "still waiting after 10 s" as const),
  ]);
  expect(outcome).not.toBe("still waiting after 10 s");
  if (typeof outcome === "string") return;
  expect(outcome.stopReason).toBe("error");
  expect(outcome.error).toContain("disposed");
  expect(outcome.tokensOut).toBe(0);
  // The slot was not lost: both are free, and the engine still answers (with the same error) instead of hanging.
  expect(engine.slotsIdle).toBe(2);
  expect((await engine.submit({ promptTokens, maxTokens: 8, stop: [], ignoreEos: true, temperature: 0, topP: 1 })).stopReason).toBe("error");
  await engine.close();
}, 30_000);
