// rbee across real hosts: network namespaces each running a real OpenSSH server, driven with the compiled binary.
// install → add-node → infer on a node, two nodes under one queen, host key checks, Ctrl-C at every stage, a node
// whose sshd is down, and the SSH session dropping — each ending with no rbee process on any host.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeSyntheticGguf } from "../../src/inference/synth-gguf";
import { VERSION } from "../../src/version";
import { ensureBinary } from "../support/binary";
import { tempHome } from "../support/home";
import { type LocalHub, startLocalHub, STORIES_HF_REF } from "../support/hub";
import { cannotCreateNamespaces, createTestNetwork, keeperEnv, tearDownHosts, type TestHost, type TestNetwork } from "../support/netns";

import { pidsWithCommandLine, runRbee, startRbee, waitFor } from "../support/processes";

const QUEEN_TOKEN = "e2e-queen-token";

// Never skipped: without what they need, the run fails with the reason (.ci/run installs it on a fresh machine).

let net: TestNetwork;
let hub: LocalHub;
let rbee: string;
let keeperHome: string;
let env: Record<string, string>;
const SYNTH_REF = "hf:synth/tiny/tiny.gguf";

beforeAll(async () => {
  const missing = cannotCreateNamespaces();
  if (missing) throw new Error(`the multi-host tests cannot run here: ${missing}`);
  rbee = ensureBinary();
  net = await createTestNetwork(["hosta", "hostb"]);
  const synth = join(tempHome("rbee-synth-"), "tiny.gguf");
  writeSyntheticGguf(synth, "tiny");
  hub = await startLocalHub({ host: net.gatewayIp, extraFiles: [`synth/tiny/main/tiny.gguf=${synth}`] });
  const keeperEnvironment = keeperEnv(hub.url);
  env = keeperEnvironment;
  keeperHome = keeperEnvironment.RBEE_HOME;
}, 300_000);

afterAll(() => tearDownHosts(net));

const keeper = (args: string[], extraEnv: Record<string, string> = {}) => runRbee(args, { exe: [rbee], env: { ...env, ...extraEnv } });
const addNode = (host: TestHost, extra: string[] = []) =>
  keeper(["setup", "add-node", host.name, "--ssh", `root@${host.ip}`, "--key", net.clientKey, "--rbee-path", host.rbeePath, ...extra]);
const inferArgs = (node: string, model = STORIES_HF_REF, extra: string[] = []) => ["infer", "--node", node, "--model", model, "--prompt", "Once upon a time", ...extra];

/** rbee processes on a test host: the installed binary's path is in their command line. */
function rbeeOn(host: TestHost): number[] {
  return host.pids().filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(host.rbeePath);
    } catch {
      return false;
    }
  });
}

async function expectNothingLeft(hosts: TestHost[]): Promise<void> {
  await waitFor("no rbee process on any host", () => (hosts.some((h) => rbeeOn(h).length) || pidsWithCommandLine(rbee).length ? undefined : true), 10_000);
}

async function installOn(host: TestHost): Promise<void> {
  const added = await addNode(host, ["--accept-new-host-key"]);
  expect(added.code).toBe(0);
  if (!existsSync(host.rbeePath)) {
    expect(added.stdout).toContain(`rbee is not installed there: \`rbee setup install --node ${host.name}\` fixes it`);
    const installed = await keeper(["setup", "install", "--node", host.name]);
    expect(installed.stderr).toBe("");
    expect(installed.stdout.trim()).toBe(`installed rbee ${VERSION} (linux-x64) on ${host.name} at ${host.rbeePath}`);
  }
}

describe("nodes over SSH", () => {
  test("setup install → add-node → rbee infer --node hosta → nothing left running", async () => {
    const [a] = net.hosts as [TestHost];
    await installOn(a);
    const again = await addNode(a);
    expect(again.stdout.trim()).toBe(`added hosta (root@${a.ip}:22, linux-x64), rbee ${VERSION}`);
    expect((await keeper(["setup", "list-nodes"])).stdout).toMatch(new RegExp(`hosta\\s+root@${a.ip.replaceAll(".", "\\.")}:22`));

    const run = await keeper(inferArgs("hosta", STORIES_HF_REF, ["--max-tokens", "40", "--seed", "1"]));
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/there (was|lived)/);
    await expectNothingLeft([a]);
    // The node keeps the catalog and the model, nothing else.
    expect(readdirSync(a.home).sort()).toEqual(["models", "models.db"]);
    expect(existsSync(join(a.home, "models", "hf", "ggml-org", "models", "main", "tinyllamas", "stories260K.gguf"))).toBe(true);
  }, 120_000);

  test("two nodes serving one queen in persistent mode", async () => {
    const [a, b] = net.hosts as [TestHost, TestHost];
    await installOn(a);
    await installOn(b);
    // A queen on every interface needs a token (its remote hives get it over SSH); the keeper sends it too.
    const queen = await startRbee(["queen", "--host", "0.0.0.0", "--port", "0", "--home", keeperHome], { exe: [rbee], env: { ...env, RBEE_API_TOKEN: QUEEN_TOKEN } });
    const viaQueen = { RBEE_QUEEN_URL: queen.url, RBEE_API_TOKEN: QUEEN_TOKEN };
    const results = await Promise.all(["hosta", "hostb"].map((node) => keeper([...inferArgs(node, STORIES_HF_REF, ["--max-tokens", "20"]), "--json"], viaQueen)));
    for (const [i, r] of results.entries()) {
      expect(r.code).toBe(0);
      const json = JSON.parse(r.stdout);
      expect(json).toMatchObject({ node: ["hosta", "hostb"][i], queen: "existing", tokens: 20 });
      expect(json.text).toMatch(/there/);
    }
    const status = await keeper(["status"], viaQueen);
    expect(status.stdout).toMatch(/hosta\s+root@\S+\s+linux-x64\s+http:\/\/10\.\S+\s+up/);
    expect(status.stdout).toMatch(/hostb\s+root@\S+\s+linux-x64\s+http:\/\/10\.\S+\s+up/);
    const workers = JSON.parse((await keeper(["workers", "list", "--json"], viaQueen)).stdout);
    expect(workers.map((w: { node: string }) => w.node).sort()).toEqual(["hosta", "hostb"]);
    // The queen stays up between commands; stopping one worker leaves the other.
    expect(queen.proc.exitCode).toBeNull();
    expect((await keeper(["workers", "stop", workers[0].id], viaQueen)).stdout.trim()).toBe(`stopped ${workers[0].id}`);
    expect(JSON.parse((await keeper(["workers", "list", "--json"], viaQueen)).stdout)).toHaveLength(1);
    expect(await queen.stop()).toBe(0);
    await expectNothingLeft([a, b]);
  }, 120_000);

  test("host keys: an unknown host is refused without --accept-new-host-key; a changed key is always refused", async () => {
    const [a] = net.hosts as [TestHost];
    const fresh = tempHome("rbee-fresh-");
    const unknown = await keeper(["setup", "add-node", "hosta", "--ssh", `root@${a.ip}`, "--key", net.clientKey, "--home", fresh]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr.trim()).toBe(`rbee: the host key of ${a.ip} is unknown; check it and re-run with --accept-new-host-key to record it`);

    await installOn(a);
    const knownHosts = join(keeperHome, "known_hosts");
    const original = readFileSync(knownHosts, "utf8");
    const otherKey = net.hosts[1]!.hostKeyPub.split(" ").slice(0, 2).join(" ");
    writeFileSync(knownHosts, original.replace(new RegExp(`^${a.ip.replaceAll(".", "\\.")} .*$`, "m"), `${a.ip} ${otherKey}`));
    try {
      for (const args of [["setup", "add-node", "hosta", "--ssh", `root@${a.ip}`, "--key", net.clientKey, "--accept-new-host-key"], inferArgs("hosta")]) {
        const changed = await keeper(args);
        expect(changed.code).not.toBe(0);
        expect(changed.stderr.trim().split("\n")).toHaveLength(1);
        expect(changed.stderr).toContain(`the host key of ${a.ip} has CHANGED`);
      }
      await expectNothingLeft([a]);
    } finally {
      writeFileSync(knownHosts, original);
    }
  }, 120_000);

  test("an unauthorised key, and a node whose rbee is of another version, get clear messages", async () => {
    const [, b] = net.hosts as [TestHost, TestHost];
    const strangerKey = join(tempHome("rbee-stranger-"), "key");
    Bun.spawnSync(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", strangerKey]);
    const refused = await keeper(["setup", "add-node", "hostb", "--ssh", `root@${b.ip}`, "--key", strangerKey, "--rbee-path", b.rbeePath, "--accept-new-host-key"]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr.trim()).toBe(`rbee: SSH authentication to root@${b.ip}:22 failed (the key is not authorised there)`);

    const older = join(b.dir, "old", "rbee");
    Bun.spawnSync(["mkdir", "-p", join(b.dir, "old")]);
    writeFileSync(older, "#!/bin/sh\necho 0.0.1\n", { mode: 0o755 });
    const added = await keeper(["setup", "add-node", "hostb-old", "--ssh", `root@${b.ip}`, "--key", net.clientKey, "--rbee-path", older, "--accept-new-host-key"]);
    expect(added.code).toBe(0);
    expect(added.stdout).toContain(`rbee there is 0.0.1, this is ${VERSION}: \`rbee setup install --node hostb-old\` fixes it`);
    expect((await keeper(["setup", "remove-node", "hostb-old"])).stdout.trim()).toBe("removed hostb-old");
    expect((await keeper(["setup", "remove-node", "hostb-old"])).stderr.trim()).toBe('rbee: unknown node "hostb-old"');
  }, 60_000);

  test("ssh-agent: a node added without --key is reached through the agent; no agent, or one without the key, is one clear line", async () => {
    const [a] = net.hosts as [TestHost];
    await installOn(a);
    const socket = join(tempHome("rbee-agent-"), "agent.sock");
    const agent = Bun.spawn(["ssh-agent", "-D", "-a", socket], { stdout: "ignore", stderr: "ignore" });
    try {
      await waitFor("the ssh-agent's socket", () => existsSync(socket) || undefined, 10_000);
      const addWithoutKey = (agentSocket: string) =>
        keeper(["setup", "add-node", "hosta-agent", "--ssh", `root@${a.ip}`, "--rbee-path", a.rbeePath], { SSH_AUTH_SOCK: agentSocket });
      const noAgent = await addWithoutKey("");
      expect(noAgent.code).not.toBe(0);
      expect(noAgent.stderr.trim()).toBe(`rbee: no SSH key for root@${a.ip}:22: pass --key or run an ssh-agent`);
      const emptyAgent = await addWithoutKey(socket);
      expect(emptyAgent.code).not.toBe(0);
      expect(emptyAgent.stderr.trim()).toBe(`rbee: SSH authentication to root@${a.ip}:22 failed (no key the ssh-agent holds is authorised there)`);

      expect(Bun.spawnSync(["ssh-add", net.clientKey], { env: { ...process.env, SSH_AUTH_SOCK: socket }, stderr: "pipe" }).exitCode).toBe(0);
      const added = await addWithoutKey(socket);
      expect(added.stderr).toBe("");
      expect(added.stdout.trim()).toBe(`added hosta-agent (root@${a.ip}:22, linux-x64), rbee ${VERSION}`);
      // The queen that `rbee infer` starts reaches the node through the same agent.
      const run = await keeper(inferArgs("hosta-agent", STORIES_HF_REF, ["--max-tokens", "30", "--seed", "2"]), { SSH_AUTH_SOCK: socket });
      expect(run.stderr).toBe("");
      expect(run.code).toBe(0);
      expect(run.stdout.length).toBeGreaterThan(40);
      await expectNothingLeft([a]);
    } finally {
      agent.kill();
      await agent.exited;
      await keeper(["setup", "remove-node", "hosta-agent"]);
    }
  }, 120_000);

  test("a node whose sshd is stopped: one clear line, nothing left behind", async () => {
    const [, b] = net.hosts as [TestHost, TestHost];
    await installOn(b);
    await b.stopSshd();
    try {
      const run = await keeper(inferArgs("hostb"));
      expect(run.code).not.toBe(0);
      expect(run.stdout).toBe("");
      expect(run.stderr.trim()).toMatch(new RegExp(`^rbee: cannot reach root@${b.ip.replaceAll(".", "\\.")}:22: ECONNREFUSED$`));
      await expectNothingLeft([b]);
    } finally {
      await b.startSshd();
    }
  }, 60_000);

  for (const stage of ["download", "loading", "generation"] as const)
    test(`Ctrl-C during ${stage} stops everything on every host`, async () => {
      const [a] = net.hosts as [TestHost];
      await installOn(a);
      const slowHub = stage === "download" ? await startLocalHub({ host: net.gatewayIp, rate: 100_000 }) : undefined;
      const model = stage === "generation" ? SYNTH_REF : STORIES_HF_REF;
      const proc = Bun.spawn([rbee, ...inferArgs("hosta", model, ["--max-tokens", "3000"])], {
        stdout: "pipe",
        stderr: "pipe",
        env: { ...process.env, ...env, ...(slowHub && { RBEE_HF_ENDPOINT: slowHub.url }) },
      });
      let out = "";
      void (async () => {
        for await (const chunk of proc.stdout) out += new TextDecoder().decode(chunk);
      })();
      if (stage === "download") {
        const partial = join(a.home, "models", "hf", "ggml-org", "models", "main", "tinyllamas", "stories260K.gguf.part");
        await Bun.$`rm -f ${join(a.home, "models", "hf", "ggml-org", "models", "main", "tinyllamas", "stories260K.gguf")}`.quiet();
        await waitFor("the download under way", () => (existsSync(partial) ? true : undefined), 30_000);
      } else if (stage === "loading") {
        await waitFor("a worker starting", () => (rbeeOn(a).some((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("\0worker\0")) ? true : undefined), 30_000);
      } else {
        await waitFor("tokens on stdout", () => (out.length > 20 ? true : undefined), 30_000);
        // The queen rbee infer started for a remote node listens on every interface, so it made up a token; the
        // node's hive got it on stdin (no command line shows it) and refuses anyone without it.
        const hiveCmdlines = rbeeOn(a).map((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8")).filter((c) => c.includes("\0hive\0"));
        expect(hiveCmdlines).toHaveLength(1);
        expect(hiveCmdlines[0]).toContain("\0--api-token-stdin");
        const hivePort = /\0--port\0(\d+)/.exec(hiveCmdlines[0]!)![1];
        expect((await fetch(`http://${a.ip}:${hivePort}/v1/models`)).status).toBe(401);
      }
      proc.kill("SIGINT");
      expect(await proc.exited).toBe(130);
      const err = await new Response(proc.stderr).text();
      expect(err.trim()).toBe("rbee: interrupted (SIGINT); everything started was stopped");
      await expectNothingLeft([a]);
      await slowHub?.kill();
    }, 120_000);

  test("when the queen's SSH session drops, the node's hive and workers stop within 10 s", async () => {
    const [a] = net.hosts as [TestHost];
    await installOn(a);
    const queen = await startRbee(["queen", "--host", "0.0.0.0", "--port", "0", "--home", keeperHome], { exe: [rbee], env: { ...env, RBEE_API_TOKEN: QUEEN_TOKEN } });
    const run = await keeper(inferArgs("hosta", STORIES_HF_REF, ["--max-tokens", "5"]), { RBEE_QUEEN_URL: queen.url, RBEE_API_TOKEN: QUEEN_TOKEN });
    expect(run.code).toBe(0);
    expect(rbeeOn(a).length).toBe(2); // the hive and its worker
    queen.proc.kill("SIGKILL");
    await queen.proc.exited;
    const dropped = Date.now();
    await expectNothingLeft([a]);
    expect(Date.now() - dropped).toBeLessThan(10_000);
  }, 60_000);
});
