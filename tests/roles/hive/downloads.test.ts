// Downloads from a local server laid out like the Hub: resume after the server dies, sha256 checks, one download for
// two requests, kill -9 of the downloader, and every bad reference or answer as a clear error.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, statSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { writeSyntheticGguf } from "../../../src/inference/synth-gguf";
import { removeTempHomes, tempHome } from "../../support/home";
import { killLocalHubs, startLocalHub, STORIES_HF_REF, STORIES_SHA256 } from "../../support/hub";
import { STORIES_MODEL } from "../../support/paths";
import { killStartedProcesses, runRbee, startRbee, waitFor } from "../../support/processes";
import { postJson } from "../../support/sse";
import { collectSse } from "../../support/sse";

afterAll(async () => {
  await killLocalHubs();
  await killStartedProcesses();
  removeTempHomes();
});

const STORIES_BYTES = statSync(STORIES_MODEL).size;
const downloadedPath = (home: string) => join(home, "models", "hf", "ggml-org", "models", "main", "tinyllamas", "stories260K.gguf");
const models = async (home: string) => JSON.parse((await runRbee(["hive", "models", "list", "--json", "--port", "1"], { env: { RBEE_HOME: home } })).stdout);

describe("hive models download", () => {
  test("downloads through a redirect, records size and sha256, leaves no temporary file", async () => {
    const hub = await startLocalHub();
    const home = tempHome();
    const run = await runRbee(["hive", "models", "download", STORIES_HF_REF, "--port", "1"], { env: { RBEE_HOME: home, RBEE_HF_ENDPOINT: hub.url } });
    expect(run.stderr).toContain("100%");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(STORIES_SHA256);
    const [model] = await models(home);
    expect(model).toMatchObject({ ref: STORIES_HF_REF, name: "stories260K", provider: "hf", size_bytes: STORIES_BYTES, sha256: STORIES_SHA256, architecture: "llama", status: "ready" });
    // The shape the queen's placement estimates memory from: stories260K's 5 layers, 4 KV heads of 8, 512 tokens.
    expect(model.shape).toEqual({ layers: 5, embedding: 64, feedForward: 172, heads: 8, kvWidthK: 32, kvWidthV: 32, headDimK: 8, vocab: 512, trainCtx: 2048 });
    expect(model.path).toBe(downloadedPath(home));
    expect(model.parameter_count).toBeGreaterThan(200_000);
    expect(readdirSync(join(model.path, ".."))).toEqual(["stories260K.gguf"]);
    expect(hub.requests().some((r) => r.path.startsWith("/cdn/"))).toBe(true);
    await hub.kill();
  });

  test("a download cut by the server dying resumes from where it stopped", async () => {
    const hub = await startLocalHub({ rate: 200_000 });
    const home = tempHome();
    const env = { RBEE_HOME: home, RBEE_HF_ENDPOINT: hub.url };
    const first = runRbee(["hive", "models", "download", STORIES_HF_REF, "--port", "1"], { env });
    const partial = `${downloadedPath(home)}.part`;
    await waitFor("part of the file", () => (existsSync(partial) && statSync(partial).size > 300_000 ? true : undefined));
    await hub.kill("SIGKILL");
    const failed = await first;
    expect(failed.code).not.toBe(0);
    expect(failed.stderr.trim().split("\n").at(-1)).toMatch(/^rbee: (cannot reach|connection)/);
    const kept = statSync(partial).size;
    expect(kept).toBeGreaterThan(300_000);
    expect(kept).toBeLessThan(STORIES_BYTES);
    expect(await models(home)).toEqual([]);

    const again = await startLocalHub();
    const second = await runRbee(["hive", "models", "download", STORIES_HF_REF, "--port", "1"], { env: { ...env, RBEE_HF_ENDPOINT: again.url } });
    expect(second.code).toBe(0);
    const ranged = again.requests().filter((r) => r.path.startsWith("/cdn/") && r.range !== "bytes=0-0");
    expect(ranged).toHaveLength(1);
    expect(ranged[0]!.range).toBe(`bytes=${kept}-`);
    const [model] = await models(home);
    expect(model.sha256).toBe(STORIES_SHA256);
    expect(existsSync(partial)).toBe(false);
    await again.kill();
  });

  test("a corrupted file is caught by sha256 and discarded", async () => {
    const hub = await startLocalHub({ corrupt: true });
    const home = tempHome();
    const run = await runRbee(["hive", "models", "download", STORIES_HF_REF, "--port", "1"], { env: { RBEE_HOME: home, RBEE_HF_ENDPOINT: hub.url } });
    expect(run.code).not.toBe(0);
    expect(run.stderr.trim().split("\n").at(-1)).toMatch(/^rbee: .*sha256 [0-9a-f]{64} does not match the Hub's 270cba1b/);
    expect(existsSync(downloadedPath(home))).toBe(false);
    expect(existsSync(`${downloadedPath(home)}.part`)).toBe(false);
    expect(await models(home)).toEqual([]);
    await hub.kill();
  });

  test("kill -9 of the downloader mid-file leaves a catalog that opens and is right; the next run completes", async () => {
    const hub = await startLocalHub({ rate: 300_000 });
    const home = tempHome();
    const env = { RBEE_HOME: home, RBEE_HF_ENDPOINT: hub.url };
    const downloader = await startRbee(["hive", "--port", "0"], { env });
    const download = postJson(`${downloader.url}/v1/models/download`, { ref: STORIES_HF_REF });
    const partial = `${downloadedPath(home)}.part`;
    await waitFor("part of the file", () => (existsSync(partial) && statSync(partial).size > 100_000 ? true : undefined));
    downloader.proc.kill("SIGKILL");
    await downloader.proc.exited;
    await download.then((r) => r.text()).catch(() => "");
    expect(await models(home)).toEqual([]);
    const done = await runRbee(["hive", "models", "download", STORIES_HF_REF, "--port", "1"], { env });
    expect(done.stderr.split("\n").filter((l) => l.startsWith("rbee:"))).toEqual([]);
    expect(done.code).toBe(0);
    expect((await models(home))[0].sha256).toBe(STORIES_SHA256);
    await hub.kill();
  });

  test("two requests for one model share one download", async () => {
    const hub = await startLocalHub({ rate: 1_000_000 });
    const home = tempHome();
    const hive = await startRbee(["hive", "--port", "0"], { env: { RBEE_HOME: home, RBEE_HF_ENDPOINT: hub.url } });
    const [a, b] = await Promise.all([1, 2].map(async () => collectSse(await postJson(`${hive.url}/v1/models/download`, { ref: STORIES_HF_REF }))));
    for (const events of [a!, b!]) {
      expect(events[0]!.event).toBe("started");
      expect(events.some((e) => e.event === "progress")).toBe(true);
      expect(events.at(-1)!.event).toBe("done");
      expect(JSON.parse(events.at(-1)!.data).model.sha256).toBe(STORIES_SHA256);
    }
    const full = hub.requests().filter((r) => r.path.startsWith("/cdn/") && r.range !== "bytes=0-0");
    expect(full).toHaveLength(1);
    const progress = JSON.parse(a!.filter((e) => e.event === "progress").at(-1)!.data);
    expect(progress).toMatchObject({ bytes_done: STORIES_BYTES, bytes_total: STORIES_BYTES });
    expect(progress.rate_bps).toBeGreaterThan(0);
    expect(await hive.stop()).toBe(0);
    await hub.kill();
  });

  test("a token-protected repo: 401 without HF_TOKEN says so; with it the download works", async () => {
    const hub = await startLocalHub({ token: "hf_secret" });
    const home = tempHome();
    const env = { RBEE_HOME: home, RBEE_HF_ENDPOINT: hub.url };
    const refused = await runRbee(["hive", "models", "download", STORIES_HF_REF, "--port", "1"], { env });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr.trim()).toMatch(/^rbee: .*refused .*HTTP 401.*set HF_TOKEN$/);
    const allowed = await runRbee(["hive", "models", "download", STORIES_HF_REF, "--port", "1"], { env: { ...env, HF_TOKEN: "hf_secret" } });
    expect(allowed.code).toBe(0);
    expect(hub.requests().some((r) => r.auth === "Bearer hf_secret")).toBe(true);
    await hub.kill();
  });

  const bad: [string, string, RegExp, Record<string, string>?][] = [
    ["a model the Hub does not have (404)", "hf:ggml-org/models/tinyllamas/nothing.gguf", /not on http.*404|is not on/],
    ["path traversal in the reference", "hf:ggml-org/models/../../etc/passwd.gguf", /invalid model reference.*not a valid path segment/],
    ["a file name with a traversal", "hf:ggml-org/models/..%2F..%2Fx.gguf", /invalid model reference/],
    ["no file in the reference", "hf:ggml-org/models", /expected hf:ORG\/REPO\/PATH\.gguf/],
    ["not a .gguf", "hf:ggml-org/models/readme.md", /must be a \.gguf/],
    ["an unknown scheme", "s3://bucket/model.gguf", /only schemes are hf: and file:/],
    ["two revisions", "hf:a/b/c.gguf@x@y", /more than one @/],
    ["a revision with ..", "hf:a/b/c.gguf@../main", /not a valid revision/],
    ["a local file that does not exist", "/nowhere/model.gguf", /model file not found/],
    ["an empty reference", " ", /it is empty/],
    ["an unreachable endpoint", STORIES_HF_REF, /cannot reach http:\/\/127\.0\.0\.1:9/, { RBEE_HF_ENDPOINT: "http://127.0.0.1:9" }],
  ];
  for (const [name, ref, message, extraEnv] of bad)
    test(`bad input: ${name}`, async () => {
      const hub = await startLocalHub();
      const home = tempHome();
      const run = await runRbee(["hive", "models", "download", ref, "--port", "1"], { env: { RBEE_HOME: home, RBEE_HF_ENDPOINT: hub.url, ...extraEnv } });
      expect(run.code).not.toBe(0);
      expect(run.stderr.trim().split("\n")).toHaveLength(1);
      expect(run.stderr).toMatch(message);
      expect(existsSync(join(home, "models", "hf", "etc"))).toBe(false);
      await hub.kill();
    });
});

describe("split models and disk space", () => {
  test("a split model (-00001-of-N) comes whole: every part, one catalog entry", async () => {
    const dir = tempHome("rbee-split-");
    // Each part of a split model is a GGUF of its own.
    const second = join(dir, "second-part.gguf");
    const secondBytes = writeSyntheticGguf(second, "probe").bytes;
    const hub = await startLocalHub({
      extraFiles: [`org/split/main/big-00001-of-00002.gguf=${STORIES_MODEL}`, `org/split/main/big-00002-of-00002.gguf=${second}`],
    });
    const home = tempHome();
    const run = await runRbee(["hive", "models", "download", "hf:org/split/big-00001-of-00002.gguf", "--port", "1"], { env: { RBEE_HOME: home, RBEE_HF_ENDPOINT: hub.url } });
    expect(run.code).toBe(0);
    const folder = join(home, "models", "hf", "org", "split", "main");
    expect(readdirSync(folder).sort()).toEqual(["big-00001-of-00002.gguf", "big-00002-of-00002.gguf"]);
    const [model] = await models(home);
    expect(model).toMatchObject({ name: "big", size_bytes: STORIES_BYTES + secondBytes, path: join(folder, "big-00001-of-00002.gguf") });
    const notFirst = await runRbee(["hive", "models", "download", "hf:org/split/big-00002-of-00002.gguf", "--port", "1"], { env: { RBEE_HOME: home, RBEE_HF_ENDPOINT: hub.url } });
    expect(notFirst.stderr).toContain("name the first part");
    await hub.kill();
  });

  test("no room on the disk: refused before downloading", async () => {
    const home = tempHome();
    const mounted = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", home]);
    if (mounted.exitCode !== 0) {
      console.warn(`skipped: cannot mount a small tmpfs here (${mounted.stderr.toString().trim()})`);
      return;
    }
    try {
      const hub = await startLocalHub();
      const run = await runRbee(["hive", "models", "download", STORIES_HF_REF, "--port", "1"], { env: { RBEE_HOME: home, RBEE_HF_ENDPOINT: hub.url } });
      expect(run.code).not.toBe(0);
      expect(run.stderr.trim()).toMatch(/^rbee: the model needs 1\.1 MiB more on disk, [\d.]+ MiB free in /);
      expect(hub.requests().filter((r) => r.path.startsWith("/cdn/") && r.range !== "bytes=0-0")).toEqual([]);
      await hub.kill();
    } finally {
      Bun.spawnSync(["umount", home]);
    }
  });
});

describe("catalog and disk", () => {
  test("the catalog survives a restart; a file deleted behind rbee's back is reported, not served", async () => {
    const home = tempHome();
    expect((await runRbee(["hive", "models", "download", STORIES_MODEL, "--port", "1"], { env: { RBEE_HOME: home } })).code).toBe(0);
    const hub = await startLocalHub();
    expect((await runRbee(["hive", "models", "download", STORIES_HF_REF, "--port", "1"], { env: { RBEE_HOME: home, RBEE_HF_ENDPOINT: hub.url } })).code).toBe(0);
    await hub.kill();
    const hive = await startRbee(["hive", "--port", "0"], { env: { RBEE_HOME: home } });
    const listed = (await (await fetch(`${hive.url}/v1/models`)).json()).models;
    expect(listed.map((m: { ref: string }) => m.ref).sort()).toEqual([`file:${STORIES_MODEL}`, STORIES_HF_REF]);
    unlinkSync(downloadedPath(home));
    const after = (await (await fetch(`${hive.url}/v1/models`)).json()).models;
    expect(after.find((m: { ref: string }) => m.ref === STORIES_HF_REF).status).toBe("missing");
    const spawn = await postJson(`${hive.url}/v1/workers/spawn`, { model: STORIES_HF_REF });
    expect(spawn.status).toBe(409);
    expect((await spawn.json()).error).toMatchObject({ code: "MODEL_MISSING" });
    const removed = await fetch(`${hive.url}/v1/models/${encodeURIComponent(STORIES_HF_REF)}`, { method: "DELETE" });
    expect(removed.status).toBe(200);
    expect((await (await fetch(`${hive.url}/v1/models`)).json()).models).toHaveLength(1);
    // A local file the user added is forgotten, never deleted.
    expect((await fetch(`${hive.url}/v1/models/stories260K`, { method: "DELETE" })).status).toBe(200);
    expect(existsSync(STORIES_MODEL)).toBe(true);
    expect((await fetch(`${hive.url}/v1/models/stories260K`, { method: "DELETE" })).status).toBe(404);
    expect(await hive.stop()).toBe(0);
  });
});
