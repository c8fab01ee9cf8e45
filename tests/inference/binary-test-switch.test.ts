// node-llama-cpp test-loads a prebuilt binary in a forked child before using it. rbee skips that for a backend its own
// probe has proven (and in the probe child itself), through a switch its patch of node-llama-cpp adds
// (patches/node-llama-cpp@3.22.1.patch): without it a child appears while the backend loads, with it none does, and
// the switch is cleared afterwards.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { REPO } from "../support/paths";

async function childrenWhileLoading(skip: boolean): Promise<{ children: number; skipSwitchLeft: string | null }> {
  const proc = Bun.spawn([process.execPath, join(REPO, "tests", "support", "count-children.ts")], { stdout: "pipe", stderr: "pipe", env: { ...process.env, SKIP: skip ? "1" : "0" } });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`count-children failed (${code}): ${err}`);
  return JSON.parse(out.trim().split("\n").at(-1)!);
}

test("node-llama-cpp's load test runs in a child, and the switch rbee's patch adds skips it", async () => {
  const tested = await childrenWhileLoading(false);
  expect(tested.children).toBeGreaterThanOrEqual(1);
  const skipped = await childrenWhileLoading(true);
  expect(skipped.children).toBe(0);
  expect(skipped.skipSwitchLeft).toBeNull();
});
