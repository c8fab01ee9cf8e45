// Backend probes are remembered in the cache folder: a success for good (per driver and build), a failure only for a
// while, so that a passing failure does not keep a GPU unused. Vulkan is probed for real here (this machine has no GPU:
// the probe fails with a reason); the remembered answers are then replaced to see which ones are believed.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { autoOrder, FAILED_PROBE_KEPT_MS, probeBackendCached } from "../../src/inference/backend-probe";
import { removeTempHomes, tempHome } from "../support/home";

let cache: string;
let file: string;
const savedCacheDir = process.env.RBEE_CACHE_DIR;
beforeAll(async () => {
  cache = tempHome("rbee-probe-cache-");
  process.env.RBEE_CACHE_DIR = cache;
  const real = await probeBackendCached("vulkan");
  expect(real.ok).toBe(false);
  const files = readdirSync(join(cache, "probes"));
  expect(files).toEqual([expect.stringMatching(/^vulkan-[0-9a-f]{16}\.json$/)]);
  file = join(cache, "probes", files[0]!);
}, 60_000);
afterAll(() => {
  if (savedCacheDir === undefined) delete process.env.RBEE_CACHE_DIR;
  else process.env.RBEE_CACHE_DIR = savedCacheDir;
  removeTempHomes();
});

const remember = (answer: object, ageMs: number) => {
  writeFileSync(file, JSON.stringify(answer));
  const at = (Date.now() - ageMs) / 1000;
  utimesSync(file, at, at);
};

test("a recent failure is believed; an old one is probed again and remembered anew", async () => {
  remember({ ok: false, backend: "vulkan", reason: "remembered" }, 60_000);
  expect(await probeBackendCached("vulkan")).toEqual({ ok: false, backend: "vulkan", reason: "remembered" });

  remember({ ok: false, backend: "vulkan", reason: "remembered" }, FAILED_PROBE_KEPT_MS + 60_000);
  const again = await probeBackendCached("vulkan");
  expect(again.ok).toBe(false);
  expect(again.ok === false && again.reason).not.toBe("remembered");
  // The new answer is believed from now on.
  expect(await probeBackendCached("vulkan")).toEqual(again);
}, 60_000);

test("a success is believed however old it is", async () => {
  remember({ ok: true, backend: "vulkan", device: "remembered GPU" }, 30 * 24 * 3600_000);
  expect(await probeBackendCached("vulkan")).toEqual({ ok: true, backend: "vulkan", device: "remembered GPU" });
});

test("--gpu auto tries Metal on macOS, CUDA then Vulkan elsewhere, before the CPU", () => {
  expect(autoOrder("darwin")).toEqual(["metal"]);
  expect(autoOrder("linux")).toEqual(["cuda", "vulkan"]);
});
