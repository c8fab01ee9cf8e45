// The one-file promise, checked for a compiled binary: copied alone into an empty folder, it prints its version and
// serves a story twice (the first start unpacks the runtime, the second reuses it), and serves the dashboard.
import { expect } from "bun:test";
import { copyFileSync, existsSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VERSION } from "../../src/version";
import type { ReadyResponse } from "../../src/wire/worker";
import { STORIES_MODEL } from "./paths";
import { runRbee, startRbee, waitFor } from "./processes";
import { postJson } from "./sse";

/** Runs the checks; returns the worker's /v1/ready (its engine) and the runtime cache it unpacked into. */
export async function checkCompiledBinary(binary: string): Promise<{ ready: ReadyResponse; cache: string }> {
  const dir = mkdtempSync(join(tmpdir(), "rbee-bin-"));
  const cache = mkdtempSync(join(tmpdir(), "rbee-cache-"));
  copyFileSync(binary, join(dir, "rbee"));
  expect(readdirSync(dir)).toEqual(["rbee"]);
  const env = { RBEE_CACHE_DIR: cache, HOME: dir, NODE_PATH: "" };
  const exe = [join(dir, "rbee")];

  const version = await runRbee(["--version"], { exe, env });
  expect(version.stdout.trim()).toBe(VERSION);

  let ready: ReadyResponse | undefined;
  for (const run of ["first (unpacks the runtime)", "second (reuses it)"]) {
    const worker = await startRbee(["worker", "--model", STORIES_MODEL, "--port", "0"], { exe, env });
    ready = await waitFor(`ready, ${run}`, async () => {
      const r = (await (await fetch(`${worker.url}/v1/ready`)).json()) as ReadyResponse;
      return r.ready ? r : undefined;
    });
    const res = await postJson(`${worker.url}/v1/completions`, { prompt: "Once upon a time", max_tokens: 30, seed: 1 });
    const text = (await res.json()).choices[0].text;
    expect(text).toMatch(/there (was|lived)/);
    expect(await worker.stop()).toBe(0);
  }
  // The unpacked runtime, and the backend probes' remembered answers.
  expect(readdirSync(cache).sort()).toEqual([expect.stringMatching(/^nlc-runtime-linux-x64-[0-9a-f]{12}$/), "probes"]);
  const unpacked = join(cache, readdirSync(cache).find((d) => d.startsWith("nlc-runtime-"))!);
  expect(existsSync(join(unpacked, ".complete"))).toBe(true);

  // The dashboard was bundled into the binary: its page and script come from the binary alone.
  const queen = await startRbee(["queen", "--port", "0", "--home", mkdtempSync(join(tmpdir(), "rbee-bin-home-"))], { exe, env });
  const html = await (await fetch(queen.url, { headers: { accept: "text/html" } })).text();
  const script = /src="(\/dashboard\/app\.js\?v=\w+)"/.exec(html)![1]!;
  const js = await fetch(`${queen.url}${script}`);
  expect(js.status).toBe(200);
  expect((await js.text()).includes("u-legend")).toBe(true); // uPlot's, bundled in
  expect(await queen.stop()).toBe(0);
  return { ready: ready!, cache: unpacked };
}
