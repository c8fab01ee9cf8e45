// An older engine: node-llama-cpp 3.21's stock linux-x64 addon, laid in node-llama-cpp's bins/ folder as the macOS
// binary's Metal engine is (the registry has no Metal prebuilt of 3.22). It lacks rbee's calls and the sequence copy of
// 3.22's addon: the worker says so and takes the paths that work, never an INTERNAL error.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { DoctorReport } from "../../src/wire/doctor";
import { ENGINE_FEATURES } from "../../src/inference/addon";
import { ensureOlderEngineBinary, OLDER_ENGINE } from "../support/binary";
import { checkCompiledBinary } from "../support/compiled-binary";
import { tempHome } from "../support/home";
import { REPO, STORIES_MODEL } from "../support/paths";
import { killStartedProcesses, runRbee, startRbee, waitFor } from "../support/processes";

let binary: string;
/** The binary's runtime, unpacked with the flags rbee uses: rbee's source runs on it through RBEE_RUNTIME_DIR. */
let runtime: string;

beforeAll(() => {
  binary = ensureOlderEngineBinary();
  const buildDir = join(REPO, "build", `linux-x64-engine-${OLDER_ENGINE}`);
  const archive = join(buildDir, readdirSync(buildDir).find((f) => f.startsWith("nlc-runtime-"))!);
  runtime = mkdtempSync(join(tmpdir(), "rbee-older-runtime-"));
  const tar = Bun.spawnSync(["tar", "--extract", "--gzip", "--file", archive, "--directory", runtime], { stderr: "pipe" });
  if (tar.exitCode !== 0) throw new Error(`cannot unpack ${archive}: ${tar.stderr}`);
}, 300_000);
afterAll(async () => {
  await killStartedProcesses();
  rmSync(runtime, { recursive: true, force: true });
});

/** node-llama-cpp 3.21's stock addon has none of them: not rbee's calls, nor 3.22's sequence copy. */
const STOCK_FEATURES_OFF = Object.keys(ENGINE_FEATURES);

describe(`an engine of node-llama-cpp ${OLDER_ENGINE}`, () => {
  test("the compiled binary runs from an empty folder and says which engine it has and what it lacks", async () => {
    const { ready } = await checkCompiledBinary(binary);
    expect(ready.sampling).toBe("per-sequence");
    expect(ready.engine).toEqual({ release: "v0.4.0", backend: "cpu", addon: "stock", features_off: STOCK_FEATURES_OFF });
  }, 120_000);

  test("rbee's source on that engine: doctor reports it; the prompt-cache tests pass on it", async () => {
    const env = { RBEE_RUNTIME_DIR: runtime };
    const doctor = await runRbee(["doctor", "--json", "--home", tempHome()], { env });
    const report = DoctorReport.parse(JSON.parse(doctor.stdout));
    expect(report.engine).toEqual({ release: "v0.4.0", backend: "cpu", addon: "stock", features_off: STOCK_FEATURES_OFF });
    expect(report.warnings).toContain(`the engine lacks ${STOCK_FEATURES_OFF.join(", ")}: those paths are off (slower, or refused)`);
    expect(report.ready).toBe(true);
    const tests = Bun.spawnSync([process.execPath, "test", "--timeout", "60000", "tests/inference/prompt-cache.test.ts"], { cwd: REPO, env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
    const out = tests.stdout.toString() + tests.stderr.toString();
    expect(out).toMatch(/^ 5 pass$/m);
    expect(out).toMatch(/^ 0 fail$/m);
    expect(tests.exitCode).toBe(0);
  }, 120_000);

  test("streamed chats four at a time, ending out of order (gaps that cannot be closed), then a turn from the cache", async () => {
    const worker = await startRbee(["worker", "--model", STORIES_MODEL, "--port", "0", "--slots", "4"], { exe: [binary], env: { RBEE_CACHE_DIR: mkdtempSync(join(tmpdir(), "rbee-cache-")) } });
    await waitFor("ready", async () => ((await (await fetch(`${worker.url}/v1/ready`)).json()).ready ? true : undefined), 60_000);
    const client = new OpenAI({ baseURL: `${worker.url}/v1`, apiKey: "none" });
    const chat = async (content: string, maxTokens: number) => {
      const stream = await client.chat.completions.create({ model: "stories260K.gguf", messages: [{ role: "user", content }], max_tokens: maxTokens, temperature: 0, stream: true, stream_options: { include_usage: true } });
      let text = "";
      let finish: string | null = null;
      let usage: OpenAI.CompletionUsage | undefined;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? "";
        finish = chunk.choices[0]?.finish_reason ?? finish;
        usage = chunk.usage ?? usage;
      }
      return { text, finish, usage };
    };
    for (let round = 0; round < 2; round++) {
      // The shortest ends first: slot 0 frees under busy ones, which a 3.22 engine would close by moving a sequence.
      const answers = await Promise.all([8, 40, 16, 60].map((n, i) => chat(`Tell me a story about a ${["cat", "dog", "bird", "fish"][i]}.`, n)));
      for (const [i, a] of answers.entries()) {
        expect(a.text.length).toBeGreaterThan(0);
        expect(a.finish).toBe("length");
        expect(a.usage?.completion_tokens).toBe([8, 40, 16, 60][i]);
      }
    }
    const first = await chat("Tell me a story about a cat.", 12);
    const again = await chat("Tell me a story about a cat.", 12);
    expect(again.text).toBe(first.text);
    expect(again.usage?.prompt_tokens_details?.cached_tokens).toBe(first.usage!.prompt_tokens - 1);
    expect(await worker.stop()).toBe(0);
  }, 120_000);
});
