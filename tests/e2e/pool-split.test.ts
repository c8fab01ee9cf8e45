// One model over several machines: network-namespace nodes (real sshd) lend their devices through llama.cpp's
// rpc-server, reached only through SSH tunnels from the queen's machine, where the worker runs. Each node's hive reports
// less memory than the model needs (RBEE_FAKE_DEVICES: a CPU node with little RAM), so it fits no node alone but fits
// two together. The same greedy text as on one machine; a lender lost mid-stream is a clear error; nothing is left behind.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureBinary } from "../support/binary";
import { tempHome } from "../support/home";
import { STORIES_MODEL } from "../support/paths";
import { type LocalHub, startLocalHub, STORIES_HF_REF } from "../support/hub";
import { cannotCreateNamespaces, createTestNetwork, keeperEnv, tearDownHosts, type TestHost, type TestNetwork } from "../support/netns";
import { killStartedProcesses, type RbeeProcess, runRbee, startRbee, waitFor } from "../support/processes";
import { postJson, readSse } from "../support/sse";
import { startWorker } from "../support/worker";

const TOKEN = "pool-split-token";
const MIB = 2 ** 20;
// stories260K with 64 slots of 2,048 tokens: 124 MiB on one device, 163 MiB over two (a compute buffer each); on the
// CPU of one node, 158 MiB. Each node reports 100 MiB free: none holds it, two do.
const NODE_RAM = 100 * MIB;
const SLOTS = 64;
const PROMPT = "Once upon a time";

let net: TestNetwork;
let hub: LocalHub;
let rbee: string;
let env: Record<string, string>;
let reference: string;

beforeAll(async () => {
  const missing = cannotCreateNamespaces();
  if (missing) throw new Error(`the multi-host tests cannot run here: ${missing}`);
  rbee = ensureBinary();
  const fakes = tempHome("rbee-fake-devices-");
  const smallNode = join(fakes, "node.json");
  writeFileSync(smallNode, JSON.stringify({ backend: "cpu", gpus: [], ram_free_bytes: NODE_RAM }));
  const smallQueenMachine = join(fakes, "queen.json");
  writeFileSync(smallQueenMachine, JSON.stringify({ backend: "cpu", gpus: [], ram_free_bytes: 10 * MIB }));
  net = await createTestNetwork(["hosta", "hostb"], { env: { hosta: { RBEE_FAKE_DEVICES: `@${smallNode}` }, hostb: { RBEE_FAKE_DEVICES: `@${smallNode}` } } });
  // The pinned models are copies under other names: config.toml's settings go with a model, not with a name.
  hub = await startLocalHub({ host: net.gatewayIp, extraFiles: [`copies/pinned/main/stories260K.gguf=${STORIES_MODEL}`, `copies/short/main/stories260K.gguf=${STORIES_MODEL}`] });
  env = { ...keeperEnv(hub.url), RBEE_FAKE_DEVICES: `@${smallQueenMachine}` };
  writeFileSync(
    join(env.RBEE_HOME!, "config.toml"),
    [
      // The context is fixed: a hive would otherwise shrink it until the model fits one node.
      `[models."split:auto"]`, `model = "${STORIES_HF_REF}"`, `slots = ${SLOTS}`, `ctx = 2048`,
      `[models."split:pinned"]`, `model = "hf:copies/pinned/stories260K.gguf"`, `slots = ${SLOTS}`, `ctx = 2048`, `nodes = ["localhost", "hostb", "hosta"]`,
      `[models."split:short"]`, `model = "hf:copies/short/stories260K.gguf"`, `slots = ${SLOTS}`, `ctx = 2048`, `nodes = ["localhost", "hostb"]`,
      "",
    ].join("\n"),
  );
  for (const host of net.hosts) {
    expect((await keeper(["setup", "add-node", host.name, "--ssh", `root@${host.ip}`, "--key", net.clientKey, "--rbee-path", host.rbeePath, "--accept-new-host-key"])).code).toBe(0);
    const installed = await keeper(["setup", "install", "--node", host.name]);
    expect(installed.stderr).toBe("");
  }
  // The same model and prompt on this one machine, as the text to match.
  const local = await startWorker(["--gpu", "cpu", "--slots", "1"]);
  reference = (await (await postJson(`${local.url}/v1/completions`, { prompt: PROMPT, max_tokens: 40, temperature: 0 })).json()).choices[0].text;
  await local.stop();
}, 300_000);

afterAll(() => tearDownHosts(net));
// A failed test leaves its queen: stopped here (its hives go with it), so the next test starts with nothing lent.
afterEach(async () => {
  await killStartedProcesses();
  await noRpcServerLeft();
});

const keeper = (args: string[], extra: Record<string, string> = {}) => runRbee(args, { exe: [rbee], env: { ...env, ...extra } });

function startQueen(): Promise<RbeeProcess> {
  return startRbee(["queen", "--host", "0.0.0.0", "--port", "0", "--home", env.RBEE_HOME!], { exe: [rbee], env: { ...env, RBEE_API_TOKEN: TOKEN } });
}

const auth = { authorization: `Bearer ${TOKEN}` };
async function complete(queen: RbeeProcess, model: string): Promise<Response> {
  return postJson(`${queen.url}/v1/completions`, { model, prompt: PROMPT, max_tokens: 40, temperature: 0 }, { headers: { "content-type": "application/json", ...auth } });
}

/** The pids of rpc-servers on a host, and what each listens on (ss in its namespace). */
function rpcServersOn(host: TestHost): { pid: number; listens: string[] }[] {
  const servers = host.pids().filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("/rpc/rpc-server");
    } catch {
      return false;
    }
  });
  const ss = Bun.spawnSync(["ip", "netns", "exec", host.ns, "ss", "-Hltnp"]).stdout.toString().split("\n");
  return servers.map((pid) => ({ pid, listens: ss.filter((l) => l.includes(`pid=${pid},`)).map((l) => l.trim().split(/\s+/)[3]!) }));
}

async function noRpcServerLeft(): Promise<void> {
  try {
    await waitFor("no rpc-server on any node", () => (net.hosts.every((h) => rpcServersOn(h).length === 0) ? true : undefined), 10_000);
  } catch (err) {
    for (const h of net.hosts) for (const pid of h.pids()) console.error(h.name, Bun.spawnSync(["ps", "-o", "pid,ppid,args", "-p", String(pid)]).stdout.toString().split("\n")[1]);
    throw err;
  }
}

describe("one model over several nodes", () => {
  test("fits no node alone, fits two: split over both, the same greedy text; status shows each node's part; rpc-servers on loopback only", async () => {
    const queen = await startQueen();
    const res = await complete(queen, "split:auto");
    const body = await res.json();
    if (res.status !== 200) console.error(queen.stderr().split("\n").filter((l) => !l.includes('"level":"debug"')).slice(-30).join("\n"));
    expect({ status: res.status, body }).toMatchObject({ status: 200 });
    expect(body.choices[0].text).toBe(reference);
    const [a, b] = net.hosts as [TestHost, TestHost];
    for (const host of [a, b]) {
      const servers = rpcServersOn(host);
      expect(servers).toHaveLength(1);
      expect(servers[0]!.listens).toHaveLength(1);
      expect(servers[0]!.listens[0]).toMatch(/^127\.0\.0\.1:\d+$/);
    }
    // The tunnels' ends are on the queen's loopback too: the queen listens off loopback only for its own API.
    const queenPort = new URL(queen.url).port;
    const queenListens = Bun.spawnSync(["ss", "-Hltnp"]).stdout.toString().split("\n").filter((l) => l.includes(`pid=${queen.proc.pid},`)).map((l) => l.trim().split(/\s+/)[3]!);
    expect(queenListens.filter((addr) => !addr.startsWith("127.0.0.1:") && !addr.endsWith(`:${queenPort}`))).toEqual([]);
    const status = await keeper(["status"], { RBEE_QUEEN_URL: queen.url, RBEE_API_TOKEN: TOKEN });
    expect(status.stdout).toMatch(/^\S+\s+host[ab] 50% \+ host[ab] 50%\s+hf:ggml-org\/models\/tinyllamas\/stories260K\.gguf\s+64\s/m);
    const workers = JSON.parse((await keeper(["workers", "list", "--json"], { RBEE_QUEEN_URL: queen.url, RBEE_API_TOKEN: TOKEN })).stdout);
    expect(workers).toHaveLength(1);
    expect(workers[0].node).toBe("localhost");
    expect(workers[0].split.map((p: { node: string }) => p.node).sort()).toEqual(["hosta", "hostb"]);
    // Stopping the worker gives the lent devices back.
    expect((await keeper(["workers", "stop", workers[0].id], { RBEE_QUEEN_URL: queen.url, RBEE_API_TOKEN: TOKEN })).code).toBe(0);
    await noRpcServerLeft();

    // config.toml's pins: over the nodes named, or one clear error where they do not hold it (nothing lent).
    const pinned = await complete(queen, "split:pinned");
    expect((await pinned.json()).choices[0].text).toBe(reference);
    const pinnedWorker = JSON.parse((await keeper(["workers", "list", "--json"], { RBEE_QUEEN_URL: queen.url, RBEE_API_TOKEN: TOKEN })).stdout)[0];
    // In the order config.toml names them.
    expect(pinnedWorker.split.map((p: { node: string }) => p.node)).toEqual(["hostb", "hosta"]);
    const short = await complete(queen, "split:short");
    expect(short.status).toBe(507);
    expect((await short.json()).error.message).toMatch(/^nothing holds hf:copies\/short\/stories260K\.gguf with 64 slots of 2048 tokens, not even split over the pinned nodes: it needs [\d.]+ MiB over 1 devices; localhost: CPU 10\.0 MiB free; hostb: CPU 100\.0 MiB free$/);
    expect(await queen.stop()).toBe(0);
    await noRpcServerLeft();
  }, 180_000);

  test("a pinned node that cannot be reached: one clear error, nothing lent anywhere", async () => {
    const [a, b] = net.hosts as [TestHost, TestHost];
    await b.stopSshd();
    try {
      const queen = await startQueen();
      const res = await complete(queen, "split:pinned");
      expect(res.status).toBeGreaterThanOrEqual(500);
      expect((await res.json()).error.message).toBe(`cannot reach root@${b.ip}:22: ECONNREFUSED`);
      expect(rpcServersOn(a)).toEqual([]);
      // Unpinned, the pool is the nodes that answer: hosta alone does not hold it, which is the error, not hostb's.
      const pool = await complete(queen, "split:auto");
      expect(pool.status).toBe(507);
      expect((await pool.json()).error.message).toMatch(/not even split over the pool: it needs [\d.]+ MiB over 1 devices; localhost: CPU 10\.0 MiB free; hosta: CPU 100\.0 MiB free$/);
      expect(rpcServersOn(a)).toEqual([]);
      expect(await queen.stop()).toBe(0);
    } finally {
      await b.startSshd();
    }
  }, 60_000);

  test("a lender's rpc-server killed mid-stream: the stream ends with an error record, and what was lent goes back", async () => {
    const queen = await startQueen();
    const res = await postJson(`${queen.url}/v2/tasks`, { model: "split:auto", prompt: PROMPT, max_tokens: 1500, temperature: 0, ignore_eos: true }, { headers: { "content-type": "application/json", ...auth } });
    expect(res.status).toBe(200);
    const [, b] = net.hosts as [TestHost, TestHost];
    let tokens = 0;
    let last = "";
    for await (const event of readSse(res)) {
      last = event.event;
      if (event.event === "token" && ++tokens === 5) process.kill(rpcServersOn(b)[0]!.pid, "SIGKILL");
      if (event.event === "error") expect(JSON.parse(event.data).message).toMatch(/worker|stream|cut|ended/i);
    }
    expect(tokens).toBeGreaterThanOrEqual(5);
    expect(tokens).toBeLessThan(1500);
    expect(last).toBe("error");
    // The worker died with its lender: it leaves the registry and the other node's server stops too.
    try {
      await waitFor("the split worker gone", async () => ((await (await fetch(`${queen.url}/v1/workers`, { headers: auth })).json()).workers.length === 0 ? true : undefined), 15_000);
    } catch (err) {
      console.error(JSON.stringify((await (await fetch(`${queen.url}/v1/workers`, { headers: auth })).json()).workers));
      console.error(queen.stderr().split("\n").filter((l) => !l.includes('"level":"debug"')).slice(-25).join("\n"));
      throw err;
    }
    await noRpcServerLeft();
    expect(await queen.stop()).toBe(0);
  }, 120_000);

  test("the queen's SSH sessions dropping take the lenders' servers down; a one-shot infer splits and leaves nothing", async () => {
    const queen = await startQueen();
    expect((await complete(queen, "split:auto")).status).toBe(200);
    expect(net.hosts.every((h) => rpcServersOn(h).length === 1)).toBe(true);
    queen.proc.kill("SIGKILL");
    await queen.proc.exited;
    const dropped = Date.now();
    await noRpcServerLeft();
    expect(Date.now() - dropped).toBeLessThan(10_000);

    const run = await keeper(["infer", "--model", "split:auto", "--prompt", PROMPT, "--max-tokens", "40", "--temperature", "0"]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    // This machine's hive reports 10 MiB free: the text came from a worker split over the nodes.
    expect(run.stdout.trimEnd()).toBe(reference.trimEnd());
    await noRpcServerLeft();
    for (const host of net.hosts) expect(host.pids().filter((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(host.rbeePath))).toEqual([]);
  }, 180_000);
});
