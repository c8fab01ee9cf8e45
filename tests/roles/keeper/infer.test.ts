// `rbee infer` and the keeper's commands on this machine: the one-shot leaves nothing running and RBEE_HOME holding
// only what lasts; a running queen is used and left running; failures are one line and a non-zero code.
import { afterAll, describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { STORIES_MODEL } from "../../support/paths";
import { removeTempHomes, tempHome } from "../../support/home";
import { killStartedProcesses, pidsWithCommandLine, runRbee, waitFor } from "../../support/processes";
import { startQueen } from "../../support/queen";

afterAll(async () => {
  await killStartedProcesses();
  removeTempHomes();
});

const NO_QUEEN = { RBEE_QUEEN_URL: "http://127.0.0.1:1" };

describe("rbee infer", () => {
  test("one-shot: starts queen, hive and worker, streams a story, stops them all", async () => {
    const home = tempHome();
    const run = await runRbee(["infer", "--model", STORIES_MODEL, "--prompt", "Once upon a time", "--max-tokens", "50", "--seed", "3"], { env: { RBEE_HOME: home, ...NO_QUEEN } });
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^, there (was|lived) .+\n$/s);
    await waitFor("nothing left", () => (pidsWithCommandLine(home).length ? undefined : true), 10_000);
    expect(readdirSync(home).sort()).toEqual(["models.db", "names.db", "queen.db"]);
  });

  test("--json prints one result with text, tokens and timings; --system goes through the chat template", async () => {
    const home = tempHome();
    const run = await runRbee(["infer", "--model", STORIES_MODEL, "--prompt", "Once upon a time", "--max-tokens", "12", "--json"], { env: { RBEE_HOME: home, ...NO_QUEEN } });
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result).toMatchObject({ tokens: 12, stop_reason: "length", node: "localhost", queen: "started", model: `file:${STORIES_MODEL}` });
    expect(result.text.length).toBeGreaterThan(10);
    expect(result.ttft_ms).toBeGreaterThan(0);
    expect(result.total_ms).toBeGreaterThanOrEqual(result.ttft_ms);
    const chat = await runRbee(["infer", "--model", "stories260K", "--system", "You tell stories.", "--prompt", "A story about a cat", "--max-tokens", "10", "--json"], { env: { RBEE_HOME: home, ...NO_QUEEN } });
    expect(chat.code).toBe(0);
    expect(JSON.parse(chat.stdout).tokens).toBeGreaterThan(0);
    await waitFor("nothing left", () => (pidsWithCommandLine(home).length ? undefined : true), 10_000);
  });

  test("failures are one line and a non-zero code, and leave nothing behind", async () => {
    const home = tempHome();
    const env = { RBEE_HOME: home, ...NO_QUEEN };
    const cases: [string[], RegExp][] = [
      [["--model", "no-such-model", "--prompt", "x"], /^rbee: no hive has a model called "no-such-model"/],
      [["--model", "/nowhere/x.gguf", "--prompt", "x"], /^rbee: model file not found: \/nowhere\/x\.gguf$/],
      [["--model", STORIES_MODEL, "--prompt", "x", "--node", "mars"], /^rbee: unknown node "mars"$/],
      [["--model", STORIES_MODEL, "--prompt", "x", "--max-tokens", "100000"], /^rbee: prompt .* exceeds the context/],
      [["--model", STORIES_MODEL, "--prompt", ""], /^rbee: --prompt: is required and must not be empty$/],
      [["--model", STORIES_MODEL, "--prompt", "x", "--max-tokens", "-1"], /^rbee: --max-tokens/],
    ];
    for (const [args, message] of cases) {
      const run = await runRbee(["infer", ...args], { env });
      expect(run.code).not.toBe(0);
      expect(run.stdout).toBe("");
      expect(run.stderr.trim().split("\n")).toHaveLength(1);
      expect(run.stderr.trim()).toMatch(message);
    }
    await waitFor("nothing left", () => (pidsWithCommandLine(home).length ? undefined : true), 10_000);
  });

  test("with a queen running (persistent mode) it is used and left running; the keeper's commands talk to it", async () => {
    const queen = await startQueen();
    const env = { RBEE_QUEEN_URL: queen.url, RBEE_HOME: tempHome() };
    const downloaded = await runRbee(["models", "download", STORIES_MODEL, "--node", "localhost"], { env });
    expect(downloaded.code).toBe(0);
    expect(downloaded.stdout).toContain(`file:${STORIES_MODEL} on localhost: 1.1 MiB, sha256 270cba1b`);
    const run = await runRbee(["infer", "--model", "stories260K", "--prompt", "Once upon a time", "--max-tokens", "8", "--json"], { env });
    expect(JSON.parse(run.stdout)).toMatchObject({ queen: "existing", tokens: 8 });
    expect(queen.proc.exitCode).toBeNull();
    const status = await runRbee(["status"], { env });
    expect(status.stdout).toMatch(/localhost\s+\(local\)\s+linux-x64\s+http:\/\/127\.0\.0\.1:\d+\s+up\s+cpu/);
    expect(status.stdout).toMatch(/w-\d+-1\s+localhost\s+file:.*stories260K\.gguf\s+4\s+0/);
    // The queen's default keep-alive, 5 minutes from the request.
    const listed = await runRbee(["workers", "list"], { env });
    expect(listed.stdout).toMatch(/STOPS AT/);
    const inSeconds = Number(/\(in (\d+) s\)/.exec(listed.stdout)?.[1]);
    expect(inSeconds).toBeGreaterThan(280);
    expect(inSeconds).toBeLessThanOrEqual(300);
    const stopped = await runRbee(["workers", "stop", "--all"], { env });
    expect(stopped.stdout).toMatch(/^stopped w-\d+-1$/m);
    expect((await runRbee(["workers", "list"], { env })).stdout.trim()).toBe("no workers");
    expect(await queen.stop()).toBe(0);
    const gone = await runRbee(["status"], { env });
    expect(gone.code).not.toBe(0);
    expect(gone.stderr.trim()).toBe(`rbee: no queen answers at ${queen.url}; start one with \`rbee queen\``);
  });
});
