// A queen starting a hive over SSH hands it the API token on stdin, not on a command line that every user of the
// node can read; the same pipe still stops the hive when it closes.
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { removeTempHomes, tempHome } from "../../support/home";
import { CLI } from "../../support/paths";

afterAll(() => removeTempHomes());

function startHive() {
  const proc = Bun.spawn([process.execPath, CLI, "hive", "--port", "0", "--home", tempHome(), "--watch-stdin", "--api-token-stdin"], {
    stdin: "pipe",
    stdout: "ignore",
    stderr: "pipe",
    env: { ...process.env, RBEE_LOG_FORMAT: "json" },
  });
  let err = "";
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr) err += decoder.decode(chunk, { stream: true });
  })();
  return { proc, stderr: () => err };
}

describe("hive --api-token-stdin", () => {
  test("the first line of stdin is the bearer token, it is on no command line, and closing stdin stops the hive", async () => {
    const hive = startHive();
    hive.proc.stdin.write("s3cret-token\n");
    await hive.proc.stdin.flush();
    let url: string | undefined;
    for (let i = 0; !url && i < 1000; i++) {
      url = /listening on (http:\/\/\S+?)["\s]/.exec(hive.stderr())?.[1];
      await Bun.sleep(10);
    }
    expect(url).toBeDefined();
    const anonymous = await fetch(`${url}/v1/models`);
    expect(anonymous.status).toBe(401);
    expect((await anonymous.json()).error.code).toBeString();
    expect((await fetch(`${url}/v1/models`, { headers: { authorization: "Bearer s3cret-token" } })).status).toBe(200);
    expect(readFileSync(`/proc/${hive.proc.pid}/cmdline`, "utf8")).not.toContain("s3cret");
    hive.proc.stdin.end();
    expect(await hive.proc.exited).toBe(0);
  });

  test("nothing on stdin: one line saying so, and a non-zero exit", async () => {
    const hive = startHive();
    hive.proc.stdin.end();
    expect(await hive.proc.exited).not.toBe(0);
    const lines = hive.stderr().trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("--api-token-stdin");
  });
});
