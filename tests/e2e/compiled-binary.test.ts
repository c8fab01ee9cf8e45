// The one-file promise: dist/rbee copied alone into an empty folder serves a story, with no node_modules anywhere near.
import { beforeAll, describe, expect, test } from "bun:test";
import { ensureBinary } from "../support/binary";
import { checkCompiledBinary } from "../support/compiled-binary";

let binary: string;
beforeAll(() => void (binary = ensureBinary()), 300_000);

describe("compiled dist/rbee", () => {
  test("runs from an empty folder: version, then a worker that tells a story", async () => {
    const { ready } = await checkCompiledBinary(binary);
    // The embedded runtime carries the addon that scripts/build-addon.ts rebuilt: every feature.
    expect(ready.sampling).toBe("batched");
    expect(ready.engine).toMatchObject({ backend: "cpu", addon: "rbee", features_off: [] });
  }, 120_000);
});
