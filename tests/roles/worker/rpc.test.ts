// A model's layers on another machine's devices through llama.cpp's RPC backend: rpc-servers (rbee's build, from the
// engine's rpc/ folder) on loopback stand in for other machines. The same greedy text as on one machine; what cannot
// work is one clear line before anything loads; a server lost mid-stream ends the worker, never a hang.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createLlama } from "../../../src/inference/backend";
import { rpcFolderOf } from "../../../src/inference/addon";
import { helloRpcServer } from "../../../src/inference/rpc-probe";
import { type RpcServerProcess, startRpcServer } from "../../../src/inference/rpc-server";
import { STORIES_MODEL } from "../../support/paths";
import { killStartedProcesses, runRbee } from "../../support/processes";
import { postJson, readSse } from "../../support/sse";
import { startWorker } from "../../support/worker";

let folder: string;
const servers: RpcServerProcess[] = [];
beforeAll(async () => {
  const { llama } = await createLlama("cpu");
  const found = rpcFolderOf(llama);
  await llama.dispose();
  if (!found) throw new Error("this engine has no rpc/ folder: run bun scripts/build-addon.ts");
  folder = found;
});
afterAll(async () => {
  await killStartedProcesses();
  await Promise.all(servers.map((s) => s.stop()));
});

async function rpcServer(): Promise<RpcServerProcess> {
  const server = await startRpcServer(folder);
  servers.push(server);
  return server;
}

const greedy = { prompt: "Once upon a time", max_tokens: 48, temperature: 0, ignore_eos: true };
async function textOf(url: string): Promise<string> {
  const res = await postJson(`${url}/v1/completions`, greedy);
  expect(res.status).toBe(200);
  return (await res.json()).choices[0].text;
}

describe("RPC devices", () => {
  test("one server, then two with a split: the same greedy text as on this machine alone", async () => {
    const local = await startWorker(["--gpu", "cpu"]);
    const expected = await textOf(local.url);
    expect(await local.stop()).toBe(0);
    const [a, b] = [await rpcServer(), await rpcServer()];
    const one = await startWorker(["--gpu", "cpu", "--rpc", a.endpoint]);
    const ready = await (await fetch(`${one.url}/v1/ready`)).json();
    expect(ready.rpc_servers).toEqual([a.endpoint]);
    expect(ready.engine.features_off).not.toContain("rpc");
    expect(await textOf(one.url)).toBe(expected);
    expect(await one.stop()).toBe(0);
    const two = await startWorker(["--gpu", "cpu", "--rpc", `${a.endpoint},${b.endpoint}`, "--tensor-split", "1,1"]);
    expect(await textOf(two.url)).toBe(expected);
    expect(await two.stop()).toBe(0);
    // Both servers took the layers (their logs show the worker's connections).
    for (const s of [a, b]) expect(s.log()).toContain("Accepted client connection");
  }, 60_000);

  test("bad input, before anything loads: a malformed address, nothing listening, not an RPC server, another protocol version", async () => {
    const malformed = await runRbee(["worker", "--model", STORIES_MODEL, "--rpc", "just-a-host"]);
    expect(malformed.code).not.toBe(0);
    expect(malformed.stderr).toBe('rbee: --rpc: invalid RPC server "just-a-host": expected HOST:PORT\n');
    const nothing = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const closedPort = nothing.port;
    nothing.stop(true);
    const refused = await runRbee(["worker", "--model", STORIES_MODEL, "--gpu", "cpu", "--rpc", `127.0.0.1:${closedPort}`]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr.trim().split("\n").at(-1)).toBe(`rbee: RPC server 127.0.0.1:${closedPort}: cannot connect (ECONNREFUSED)`);
    // A server that answers a hello with protocol 6.1.0 (an older llama.cpp), and one that answers nothing useful.
    const older = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        data(socket) {
          const answer = Buffer.alloc(8 + 28);
          answer.writeBigUInt64LE(28n, 0);
          answer.set([6, 1, 0], 8);
          socket.write(answer);
        },
      },
    });
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data: (socket) => void socket.end() } });
    try {
      const mismatch = await runRbee(["worker", "--model", STORIES_MODEL, "--gpu", "cpu", "--rpc", `127.0.0.1:${older.port}`]);
      expect(mismatch.code).not.toBe(0);
      expect(mismatch.stderr.trim().split("\n").at(-1)).toBe(`rbee: RPC server 127.0.0.1:${older.port} speaks RPC protocol 6.1.0, this engine 7.0.x: run the same rbee (llama.cpp release) on both machines`);
      await expect(helloRpcServer(`127.0.0.1:${silent.port}`)).rejects.toThrow(`RPC server 127.0.0.1:${silent.port}: closed the connection without a hello: not llama.cpp's rpc-server, or one of another protocol`);
    } finally {
      older.stop(true);
      silent.stop(true);
    }
  }, 60_000);

  test("a server lost mid-stream: the stream is cut and the worker ends with the reason, within seconds", async () => {
    const server = await rpcServer();
    const worker = await startWorker(["--gpu", "cpu", "--rpc", server.endpoint]);
    const res = await postJson(`${worker.url}/v1/execute`, { prompt: "Once upon a time", max_tokens: 1500, temperature: 0, ignore_eos: true }).catch(() => undefined);
    expect(res?.status).toBe(200);
    let tokens = 0;
    let ended = false;
    try {
      for await (const event of readSse(res!)) {
        if (event.event === "token" && ++tokens === 5) server.proc.kill("SIGKILL");
        if (event.event === "end") ended = true;
      }
    } catch {
      // the connection was cut
    }
    expect(tokens).toBeGreaterThanOrEqual(5);
    expect(ended).toBe(false);
    const started = Date.now();
    const code = await Promise.race([worker.proc.exited, Bun.sleep(10_000).then(() => "still running")]);
    expect(code).not.toBe("still running");
    expect(code).not.toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(worker.stderr()).toContain("Remote RPC server crashed or returned malformed response");
  }, 60_000);
});
