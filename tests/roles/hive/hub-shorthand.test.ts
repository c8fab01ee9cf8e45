// The Hub's shorthand (hf.co/ORG/REPO:QUANT, ORG/REPO:QUANT, ORG/REPO) picks a repository's GGUF by quantization from
// the Hub's file listing, here a local server laid out like the Hub.
import { afterAll, describe, expect, test } from "bun:test";
import { removeTempHomes, tempHome } from "../../support/home";
import { killLocalHubs, startLocalHub } from "../../support/hub";
import { STORIES_MODEL } from "../../support/paths";
import { runRbee } from "../../support/processes";

afterAll(async () => {
  await killLocalHubs();
  removeTempHomes();
});

const FILES = ["model-Q8_0.gguf", "model-Q4_K_M.gguf", "model-f16-00001-of-00002.gguf", "model-f16-00002-of-00002.gguf", "mmproj-model-Q8_0.gguf"].map(
  (f) => `acme/tiny-GGUF/main/${f}=${STORIES_MODEL}`,
);

describe("the Hub's shorthand", () => {
  test("a tag picks that quantization; no tag the default (Q4_K_M); a split file comes as its first part", async () => {
    const hub = await startLocalHub({ extraFiles: FILES });
    const cases: [string, string][] = [
      ["hf.co/acme/tiny-GGUF:Q8_0", "hf:acme/tiny-GGUF/model-Q8_0.gguf"],
      ["acme/tiny-GGUF:q8_0", "hf:acme/tiny-GGUF/model-Q8_0.gguf"],
      ["acme/tiny-GGUF", "hf:acme/tiny-GGUF/model-Q4_K_M.gguf"],
      ["https://huggingface.co/acme/tiny-GGUF:f16", "hf:acme/tiny-GGUF/model-f16-00001-of-00002.gguf"],
    ];
    for (const [name, ref] of cases) {
      const home = tempHome();
      const run = await runRbee(["hive", "models", "download", name, "--port", "1", "--json"], { env: { RBEE_HOME: home, RBEE_HF_ENDPOINT: hub.url } });
      expect({ name, code: run.code, ref: run.code === 0 ? JSON.parse(run.stdout).ref : run.stderr }).toEqual({ name, code: 0, ref });
    }
  });

  test("a quantization the repository lacks, or no such repository: one line that says what there is", async () => {
    const hub = await startLocalHub({ extraFiles: FILES });
    const env = { RBEE_HOME: tempHome(), RBEE_HF_ENDPOINT: hub.url };
    const missing = await runRbee(["hive", "models", "download", "acme/tiny-GGUF:Q2_K", "--port", "1"], { env });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr.trim().split("\n").at(-1)).toBe("rbee: acme/tiny-GGUF has no Q2_K file; it has model-Q8_0.gguf, model-Q4_K_M.gguf, model-f16-00001-of-00002.gguf");
    const none = await runRbee(["hive", "models", "download", "acme/nothing:Q8_0", "--port", "1"], { env });
    expect(none.code).not.toBe(0);
    expect(none.stderr.trim().split("\n").at(-1)).toMatch(/^rbee: no repository acme\/nothing on http:\/\/127\.0\.0\.1:\d+$/);
  });
});
