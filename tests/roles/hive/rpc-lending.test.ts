// A hive lends its devices: an rpc-server per request, on 127.0.0.1 only, that a worker elsewhere takes layers to;
// stopped on request, and with the hive.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { removeTempHomes, tempHome } from "../../support/home";
import { killStartedProcesses, startRbee, waitFor } from "../../support/processes";
import { postJson } from "../../support/sse";
import { startWorker } from "../../support/worker";

afterAll(async () => {
  await killStartedProcesses();
  removeTempHomes();
});

/** The addresses process `pid` listens on (ss). */
function listening(pid: number): string[] {
  const out = Bun.spawnSync(["ss", "-Hltnp"]).stdout.toString();
  return out.split("\n").filter((l) => l.includes(`pid=${pid},`)).map((l) => l.trim().split(/\s+/)[3]!);
}

describe("lending devices", () => {
  test("an rpc-server on loopback only, serving a worker's layers; stopped on request and with the hive", async () => {
    const hive = await startRbee(["hive", "--port", "0", "--home", tempHome()]);
    const lend = async (body: unknown) => postJson(`${hive.url}/v1/rpc-servers`, body);
    const noGpu = await lend({ devices: [3] });
    expect(noGpu.status).toBe(400);
    expect((await noGpu.json()).error.message).toBe("no GPU 3 on this node (it has none)");
    expect((await lend({ gpus: [0] })).status).toBe(400);

    const res = await lend({});
    expect(res.status).toBe(201);
    const { server } = await res.json();
    expect(server).toMatchObject({ id: "rpc-1", endpoint: `127.0.0.1:${server.port}`, devices: null });
    expect(listening(server.pid)).toEqual([`127.0.0.1:${server.port}`]);
    expect((await (await fetch(`${hive.url}/v1/rpc-servers`)).json()).servers).toEqual([server]);

    const worker = await startWorker(["--gpu", "cpu", "--rpc", server.endpoint]);
    const completion = await (await postJson(`${worker.url}/v1/completions`, { prompt: "Once upon a time", max_tokens: 20, temperature: 0 })).json();
    expect(completion.usage.completion_tokens).toBe(20);
    expect(await worker.stop()).toBe(0);

    const stopped = await fetch(`${hive.url}/v1/rpc-servers/${server.id}`, { method: "DELETE" });
    expect(await stopped.json()).toEqual({ stopped: server.id });
    expect(existsSync(`/proc/${server.pid}`)).toBe(false);
    expect((await fetch(`${hive.url}/v1/rpc-servers/${server.id}`, { method: "DELETE" })).status).toBe(404);

    const second = (await (await lend({})).json()).server;
    expect(second.id).toBe("rpc-2");
    expect(await hive.stop()).toBe(0);
    await waitFor("the lent rpc-server gone with its hive", () => !existsSync(`/proc/${second.pid}`) || undefined, 5_000);

    // A hive killed outright (SIGKILL: no shutdown of its own) takes its servers along all the same.
    const killed = await startRbee(["hive", "--port", "0", "--home", tempHome()]);
    const orphan = (await (await postJson(`${killed.url}/v1/rpc-servers`, {})).json()).server;
    killed.proc.kill("SIGKILL");
    await waitFor("the lent rpc-server gone with its killed hive", () => !existsSync(`/proc/${orphan.pid}`) || undefined, 5_000);
  }, 60_000);
});
