// `rbee doctor`: what rbee sees on this machine, as a table ending in one line (ready or not, and why), or as JSON.
import { afterAll, describe, expect, test } from "bun:test";
import { DoctorReport } from "../../../src/wire/doctor";
import { removeTempHomes, tempHome } from "../../support/home";
import { killStartedProcesses, runRbee, startRbee } from "../../support/processes";

afterAll(async () => {
  await killStartedProcesses();
  removeTempHomes();
});

describe("rbee doctor", () => {
  test("this machine: platform, engine, each backend's probe, memory, disk, ports; ready on the CPU", async () => {
    const home = tempHome();
    const run = await runRbee(["doctor", "--home", home]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const lines = run.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^\S+\s+WHAT RBEE SEES$/);
    expect(run.stdout).toMatch(/^platform\s+linux-x64 \(Linux [^)]+\)$/m);
    expect(run.stdout).toMatch(/^engine\s+llama\.cpp v\d+\.\d+\.\d+ on cpu, rbee addon; every feature$/m);
    expect(run.stdout).toMatch(/^backend cuda\s+failed: .+$/m);
    expect(run.stdout).toMatch(/^backend vulkan\s+failed: .+$/m);
    expect(run.stdout).toMatch(/^backend cpu\s+passed \(cpu\)$/m);
    expect(run.stdout).toMatch(/^ram\s+[\d.]+ GiB free of [\d.]+ GiB, \d+ cores$/m);
    expect(run.stdout).toContain(`free under ${home}`);
    expect(run.stdout).toMatch(/^port 8080\s+/m);
    expect(lines.at(-1)).toBe("ready: models run here on cpu");
  });

  test("--json: the report; a port held by an rbee hive, then by another program (a warning, still ready)", async () => {
    const home = tempHome();
    const hive = await startRbee(["hive", "--port", "0", "--home", home]);
    const hivePort = new URL(hive.url).port;
    const json = await runRbee(["doctor", "--json", "--home", home], { env: { RBEE_HIVE_PORT: hivePort } });
    expect(json.code).toBe(0);
    const report = DoctorReport.parse(JSON.parse(json.stdout));
    expect(report).toMatchObject({ platform: "linux-x64", ready: true, reason: "models run here on cpu", home, home_writable: true, compiled: false });
    expect(report.engine).toMatchObject({ backend: "cpu", addon: "rbee", features_off: [] });
    expect(report.backends.map((b) => [b.backend, b.ok])).toEqual([["cuda", false], ["vulkan", false], ["cpu", true]]);
    expect(report.disk_free_bytes).toBeGreaterThan(0);
    expect(report.ports.find((p) => p.role === "hive")).toEqual({ port: Number(hivePort), role: "hive", state: "rbee", answered_role: "hive" });
    await hive.stop();

    const other = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("not rbee") });
    try {
      const taken = await runRbee(["doctor", "--home", home], { env: { RBEE_HIVE_PORT: String(other.port) } });
      expect(taken.code).toBe(0);
      expect(taken.stdout).toMatch(new RegExp(`^port ${other.port}\\s+taken by another program$`, "m"));
      expect(taken.stdout).toContain(`warning         port ${other.port} (the hive's default) is taken by another program: start the hive with --port`);
      expect(taken.stdout.trim().split("\n").at(-1)).toBe("ready: models run here on cpu");
    } finally {
      other.stop(true);
    }
  }, 60_000);

  test("not ready: a home that cannot be written; bad input: an unknown node", async () => {
    const run = await runRbee(["doctor", "--home", "/dev/null/rbee"]);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^disk\s+\/dev\/null\/rbee cannot be created$/m);
    expect(run.stdout.trim().split("\n").at(-1)).toBe("not ready: rbee's home /dev/null/rbee cannot be written");
    const node = await runRbee(["doctor", "--node", "nowhere", "--home", tempHome()]);
    expect(node.code).not.toBe(0);
    expect(node.stderr).toBe('rbee: unknown node "nowhere" (see `rbee setup list-nodes`)\n');
  });
});
