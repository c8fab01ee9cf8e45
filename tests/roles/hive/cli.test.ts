// The hive's commands against a running daemon: devices, spawn, list, stop.
import { afterAll, describe, expect, test } from "bun:test";
import { startHive } from "../../support/hive";
import { killStartedProcesses } from "../../support/processes";
import { removeTempHomes } from "../../support/home";
import { isAlive, runRbee } from "../../support/processes";

afterAll(async () => {
  await killStartedProcesses();
  removeTempHomes();
});

describe("rbee hive worker …", () => {
  test("spawn, list and stop through the daemon; devices report this machine", async () => {
    const hive = await startHive();
    const port = new URL(hive.url).port;
    const devices = await (await fetch(`${hive.url}/v1/devices`)).json();
    expect(devices).toMatchObject({ backend: "cpu", backends: ["cpu"], gpus: [] });
    expect(devices.cpu_cores).toBeGreaterThanOrEqual(1);
    expect(devices.ram_free_bytes).toBeGreaterThan(0);

    const spawned = await runRbee(["hive", "worker", "spawn", "--model", "stories260K", "--slots", "1", "--port", port, "--json"]);
    expect(spawned.code).toBe(0);
    const worker = JSON.parse(spawned.stdout);
    expect(worker.state).toBe("ready");
    const listed = await runRbee(["hive", "worker", "list", "--port", port]);
    expect(listed.stdout).toContain(worker.id);
    expect(listed.stdout).toContain("ready");
    const models = await runRbee(["hive", "models", "list", "--port", port]);
    expect(models.stdout).toMatch(/stories260K\s+file:/);

    const both = await runRbee(["hive", "worker", "stop", worker.id, "--all", "--port", port]);
    expect(both.code).toBe(2);
    expect(both.stderr.trim()).toBe("rbee: name one worker id, or --all");
    const stopped = await runRbee(["hive", "worker", "stop", "--all", "--port", port]);
    expect(stopped.stdout.trim()).toBe(`stopped ${worker.id}`);
    expect(isAlive(worker.pid)).toBe(false);
    expect((await runRbee(["hive", "worker", "list", "--port", port])).stdout.trim()).toBe("no workers");
    expect(await hive.stop()).toBe(0);
  });

  test("worker commands with no hive running say so in one line", async () => {
    const run = await runRbee(["hive", "worker", "list", "--port", "1"]);
    expect(run.code).not.toBe(0);
    expect(run.stderr.trim()).toBe("rbee: no hive answers at http://127.0.0.1:1; start one with `rbee hive`");
  });
});
