// KV cache types end to end on the CPU: a worker with --kv-type makes its cache in that type (its memory falls as
// computed) and still generates; a V type the model cannot have stays f16 with a line that says why; a bad type is one
// line before anything loads. Through the queen: config.toml's kv_type per model, else --kv-type (or
// RBEE_KV_CACHE_TYPE), reaches the workers it starts by way of their hive.
import { afterAll, describe, expect, test } from "bun:test";
import { rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readModelShape } from "../../../src/inference/gguf-metadata";
import { estimateMemory, kvBytesPerToken } from "../../../src/inference/memory-plan";
import { writeSyntheticGguf } from "../../../src/inference/synth-gguf";
import { removeTempHomes, tempHome } from "../../support/home";
import { STORIES_MODEL } from "../../support/paths";
import { killStartedProcesses, runRbee, waitFor } from "../../support/processes";
import { startQueen } from "../../support/queen";
import { startWorker } from "../../support/worker";

const TINY = join(tmpdir(), `rbee-kv-types-${process.pid}.gguf`);
writeSyntheticGguf(TINY, "tiny");
afterAll(async () => {
  await killStartedProcesses();
  removeTempHomes();
  rmSync(TINY, { force: true });
});

const ready = async (url: string) => (await fetch(`${url}/v1/ready`)).json();

describe("--kv-type on the worker", () => {
  test("f16, q8_0, q4_0: the types as asked, the context's memory falling by what each saves, and text from each", async () => {
    const shape = await readModelShape(TINY);
    const args = ["--slots", "8", "--ctx", "2048", "--gpu", "cpu"];
    const [f16, q8, q4] = await Promise.all([startWorker(args, {}, TINY), startWorker([...args, "--kv-type", "q8_0"], {}, TINY), startWorker([...args, "--kv-type-k", "q4_0", "--kv-type-v", "q4_0"], {}, TINY)]);
    const [r16, r8, r4] = await Promise.all([ready(f16.url), ready(q8.url), ready(q4.url)]);
    expect([r16.kv_types, r8.kv_types, r4.kv_types]).toEqual([{ k: "f16", v: "f16" }, { k: "q8_0", v: "q8_0" }, { k: "q4_0", v: "q4_0" }]);
    for (const [r, kv] of [[r8, { k: "q8_0", v: "q8_0" }], [r4, { k: "q4_0", v: "q4_0" }]] as const) {
      const saved = 8 * 2048 * (kvBytesPerToken(shape) - kvBytesPerToken(shape, kv));
      expect(Math.abs(r16.context_bytes.ram - r.context_bytes.ram - saved) / saved).toBeLessThan(0.1);
      const estimate = estimateMemory(shape, { weightsBytes: statSync(TINY).size, slots: 8, ctxPerSlot: 2048, onGpu: false, kv });
      expect(Math.abs(estimate.kvBytes + estimate.computeBytes - r.context_bytes.ram) / r.context_bytes.ram).toBeLessThan(0.05);
    }
    for (const w of [f16, q8, q4]) {
      const res = await fetch(`${w.url}/v1/completions`, { method: "POST", body: JSON.stringify({ prompt: "Once upon a time", max_tokens: 12, ignore_eos: true, temperature: 0 }) });
      const body = await res.json();
      expect(body.usage.completion_tokens).toBe(12);
      expect(body.choices[0].text.length).toBeGreaterThan(0);
    }
  });

  test("a quantized V where the model's heads cannot take flash attention: V stays f16, and the worker's log says why", async () => {
    const worker = await startWorker(["--kv-type", "q8_0", "--ctx", "256"]);
    expect((await ready(worker.url)).kv_types).toEqual({ k: "q8_0", v: "f16" });
    expect(worker.stderr()).toContain("V stays f16");
    const res = await fetch(`${worker.url}/v1/completions`, { method: "POST", body: JSON.stringify({ prompt: "Once upon a time", max_tokens: 8, temperature: 0 }) });
    expect((await res.json()).choices[0].text.length).toBeGreaterThan(3);
  });

  test("a type llama.cpp does not know: one line naming the flag and the types, before the model loads", async () => {
    for (const flag of ["--kv-type", "--kv-type-v"]) {
      const started = performance.now();
      const { code, stderr } = await runRbee(["worker", "--model", STORIES_MODEL, "--port", "0", flag, "q5_1"]);
      expect(code).not.toBe(0);
      expect(stderr.trim().split("\n")).toHaveLength(1);
      expect(stderr).toContain(flag);
      expect(stderr).toContain("f16, q8_0, q4_0");
      expect(performance.now() - started).toBeLessThan(20_000);
    }
  });
});

describe("KV types through the queen", () => {
  test("config.toml's kv_type for one model, the queen's --kv-type for the others", async () => {
    const home = tempHome("rbee-kv-");
    writeFileSync(join(home, "config.toml"), `[models.small]\nmodel = "${STORIES_MODEL}"\nctx = 256\nkv_type = "f16"\n[models.tiny]\nmodel = "${TINY}"\nctx = 512\nkv_type_k = "q8_0"\nkv_type_v = "q4_0"\n`);
    const queen = await startQueen(["--kv-type", "q8_0"], home);
    const added = await runRbee(["hive", "models", "download", TINY, "--port", "1"], { env: { RBEE_HOME: home } });
    expect(added.code).toBe(0);
    for (const model of ["small", "tiny"]) {
      const res = await fetch(`${queen.url}/v1/completions`, { method: "POST", body: JSON.stringify({ model, prompt: "Once", max_tokens: 3 }) });
      expect(res.status).toBe(200);
    }
    const workers = await waitFor("two workers", async () => {
      const list = (await (await fetch(`${queen.url}/v1/workers`)).json()).workers as { url: string; model_ref: string }[];
      return list.length === 2 ? list : undefined;
    });
    const types = Object.fromEntries(await Promise.all(workers.map(async (w) => [w.model_ref.includes("kv-types") ? "tiny" : "small", (await ready(w.url)).kv_types])));
    expect(types).toEqual({ small: { k: "f16", v: "f16" }, tiny: { k: "q8_0", v: "q4_0" } });
    expect(await queen.stop()).toBe(0);

    // The queen's default alone: a model without kv_type gets it.
    writeFileSync(join(home, "config.toml"), `[models.small]\nmodel = "${STORIES_MODEL}"\nctx = 256\n`);
    const second = await startQueen([], home, { RBEE_KV_CACHE_TYPE: "q8_0" });
    expect((await fetch(`${second.url}/v1/completions`, { method: "POST", body: JSON.stringify({ model: "small", prompt: "Once", max_tokens: 3 }) })).status).toBe(200);
    const [worker] = (await (await fetch(`${second.url}/v1/workers`)).json()).workers as { url: string }[];
    expect((await ready(worker!.url)).kv_types).toEqual({ k: "q8_0", v: "f16" });
    expect(await second.stop()).toBe(0);
  });

  test("a bad default or a bad kv_type in config.toml: the queen refuses to start, in one line", async () => {
    const env = await runRbee(["queen", "--port", "0", "--home", tempHome("rbee-kv-")], { env: { RBEE_KV_CACHE_TYPE: "q3" } });
    expect(env.code).not.toBe(0);
    expect(env.stderr).toContain("RBEE_KV_CACHE_TYPE");
    const home = tempHome("rbee-kv-");
    writeFileSync(join(home, "config.toml"), `[models.small]\nmodel = "${STORIES_MODEL}"\nkv_type = "q2"\n`);
    const file = await runRbee(["queen", "--port", "0", "--home", home]);
    expect(file.code).not.toBe(0);
    expect(file.stderr.trim().split("\n")).toHaveLength(1);
    expect(file.stderr).toContain("kv_type");
  });
});
