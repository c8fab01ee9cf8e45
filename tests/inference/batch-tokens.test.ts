// Tokens per decode call (RBEE_BATCH_TOKENS, default 512) and per micro-batch inside one (RBEE_UBATCH_TOKENS, default
// as many; rbee's addon: native/micro-batch.cpp). llama.cpp sizes its compute buffers for one micro-batch, so the
// same 2,048-token calls in micro-batches of 512 need less memory; a long prompt goes in one call either way. Only the
// serving context gets micro-batches: one made later (embeddings) evaluates each input whole.
import { afterEach, expect, test } from "bun:test";
import type { Token } from "node-llama-cpp";
import { addonContextOf } from "../../src/inference/addon";
import { loadModel, tokensFromEnv } from "../../src/inference/load";
import { engineOn } from "../support/engine";
import { STORIES_MODEL } from "../support/paths";

function clearSettings(): void {
  delete process.env.RBEE_BATCH_TOKENS;
  delete process.env.RBEE_UBATCH_TOKENS;
  delete process.env.RBEE_STOCK_ADDON;
}
afterEach(clearSettings);

async function loadWith(env: Record<string, string>): Promise<{ batchSize: number; ramBytes: number; laterRamBytes: number; text: string }> {
  clearSettings();
  Object.assign(process.env, env);
  const loaded = await loadModel({ modelPath: STORIES_MODEL, gpu: "cpu", slots: 2, ctx: 2048 });
  try {
    const engine = engineOn(loaded, 2);
    const promptTokens = loaded.model.tokenize("Once upon a time there was a little girl. ".repeat(140)) as Token[];
    expect(promptTokens.length).toBeGreaterThan(1024);
    expect(promptTokens.length).toBeLessThan(2000);
    const result = await engine.submit({ promptTokens, maxTokens: 20, stop: [], ignoreEos: true, temperature: 0, topP: 1 });
    await engine.close();
    expect(result.stopReason).toBe("length");
    const later = await loaded.model.createContext({ contextSize: 2048, sequences: 1, batchSize: 2048 });
    const laterRamBytes = addonContextOf(later).getMemoryBreakdown().cpuRam;
    await later.dispose();
    return { batchSize: loaded.context.batchSize, ramBytes: loaded.contextBytes.ram, laterRamBytes, text: result.text };
  } finally {
    await loaded.dispose();
  }
}

test("2,048-token decode calls in micro-batches of 512 take a 512-token batch's compute memory", async () => {
  const whole = await loadWith({ RBEE_BATCH_TOKENS: "2048" });
  const micro = await loadWith({ RBEE_BATCH_TOKENS: "2048", RBEE_UBATCH_TOKENS: "512" });
  const plain = await loadWith({});
  expect(whole.batchSize).toBe(2048);
  expect(micro.batchSize).toBe(2048);
  expect(plain.batchSize).toBe(512);
  expect(micro.ramBytes).toBeLessThan(whole.ramBytes);
  expect(micro.ramBytes).toBe(plain.ramBytes);
  expect(micro.laterRamBytes).toBe(whole.laterRamBytes);
  for (const run of [whole, micro, plain]) expect(run.text.length).toBeGreaterThan(20);
});

test("micro-batches on node-llama-cpp's stock addon, which cannot make them, are refused with the reason", async () => {
  clearSettings();
  Object.assign(process.env, { RBEE_UBATCH_TOKENS: "512", RBEE_STOCK_ADDON: "1" });
  await expect(loadModel({ modelPath: STORIES_MODEL, gpu: "cpu", slots: 2, ctx: 256 })).rejects.toThrow("RBEE_UBATCH_TOKENS needs rbee's rebuilt addon");
});

test("a token count from the environment is a whole number from 1 to 65536", () => {
  expect(tokensFromEnv("X", {})).toBeUndefined();
  expect(tokensFromEnv("X", { X: "2048" })).toBe(2048);
  for (const bad of ["0", "-1", "1.5", "lots", "70000"]) expect(() => tokensFromEnv("X", { X: bad })).toThrow(`X=${bad}: a whole number of tokens from 1 to 65536`);
});
