// The one-file promise: dist/rbee copied alone into an empty folder serves a story, with no node_modules anywhere near.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { killStartedProcesses } from "../support/processes";
import { ensureBinary } from "../support/binary";
import { checkCompiledBinary } from "../support/compiled-binary";

let binary: string;
beforeAll(() => void (binary = ensureBinary()), 300_000);
// A failed check leaves its worker or queen running: stop them, so the next file starts clean.
afterAll(killStartedProcesses);

describe("compiled dist/rbee", () => {
  test("runs from an empty folder: version, then a worker that tells a story", async () => {
    const { ready } = await checkCompiledBinary(binary);
    // The embedded runtime carries the addon that scripts/build-addon.ts rebuilt: every feature.
    expect(ready.sampling).toBe("batched");
    expect(ready.engine).toMatchObject({ backend: "cpu", addon: "rbee", features_off: [] });
  }, 120_000);
});
