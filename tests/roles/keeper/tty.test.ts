// On a terminal, `rbee infer` shows the stages a person waits on, and clears them before the story is printed.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { removeTempHomes, tempHome } from "../../support/home";
import { CLI, STORIES_MODEL } from "../../support/paths";

afterAll(removeTempHomes);

// Never skipped: without util-linux's `script` (Debian's bsdutils, which .ci/run installs) the run fails with the reason.
beforeAll(() => {
  if (Bun.spawnSync(["which", "script"]).exitCode !== 0) throw new Error("`script` is not installed: apt-get install bsdutils");
});

test("on a TTY the stages show on stderr and are cleared before tokens", async () => {
  const home = tempHome();
  const command = [process.execPath, CLI, "infer", "--model", STORIES_MODEL, "--prompt", "Once upon a time", "--max-tokens", "30", "--seed", "2"].join(" ");
  // util-linux's script runs the command on a pseudo-terminal; stdout and stderr both land in its output.
  const proc = Bun.spawn(["script", "-qec", command, "/dev/null"], { stdout: "pipe", stderr: "pipe", env: { ...process.env, RBEE_HOME: home, RBEE_QUEEN_URL: "http://127.0.0.1:1" } });
  const [out, , code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  expect(code).toBe(0);
  expect(out).toContain("starting the queen…");
  expect(out).toContain("loading the model…");
  // The last stage line is erased (\r + erase-line) before the first token.
  const storyAt = out.search(/, there (was|lived)/);
  expect(storyAt).toBeGreaterThan(out.lastIndexOf("loading the model…"));
  expect(out.slice(out.lastIndexOf("loading the model…"), storyAt)).toContain("\r\x1b[2K");
});

test("on a TTY a download shows a progress bar with bytes, rate and ETA", async () => {
  const home = tempHome();
  const command = [process.execPath, CLI, "hive", "models", "download", STORIES_MODEL, "--port", "1"].join(" ");
  const proc = Bun.spawn(["script", "-qec", command, "/dev/null"], { stdout: "pipe", stderr: "pipe", env: { ...process.env, RBEE_HOME: home } });
  const [out, , code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  expect(code).toBe(0);
  expect(out).toMatch(/downloading .*stories260K\.gguf \[[=-]+\] 100% 1\.1 MiB\/1\.1 MiB [\d.]+ \w+\/s ETA \d+s/);
  expect(out).toContain("sha256 270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d");
});
