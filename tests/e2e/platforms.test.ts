// Every machine a person owns: `bun run build --target` cross-builds, the linux-arm64 binary really running (Debian's
// qemu-user-static through binfmt), and `setup install` choosing the binary by what the node says it is (uname -sm):
// an aarch64 node gets the arm64 binary and serves `rbee infer --node` with it; a Mac with no build is refused clearly.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { VERSION } from "../../src/version";
import { ensureBinary } from "../support/binary";
import { tempHome } from "../support/home";
import { type LocalHub, startLocalHub, STORIES_HF_REF } from "../support/hub";
import { cannotCreateNamespaces, createTestNetwork, keeperEnv, tearDownHosts, type TestHost, type TestNetwork } from "../support/netns";
import { REPO, STORIES_MODEL } from "../support/paths";
import { runRbee, startRbee, waitFor } from "../support/processes";

const ARM64_BINARY = join(REPO, "dist", "rbee-linux-arm64");
const BINFMT = "/proc/sys/fs/binfmt_misc";

/**
 * Makes this kernel run aarch64 programs through qemu-user-static (binfmt_misc, as Debian's package describes it);
 * returns why it cannot, or undefined.
 */
function arm64Emulation(): string | undefined {
  const conf = "/usr/lib/binfmt.d/qemu-aarch64.conf";
  if (!existsSync(conf)) return "qemu-user-static is missing (apt-get install qemu-user-static)";
  if (!existsSync("/lib/ld-linux-aarch64.so.1")) return "arm64's C library is missing (dpkg --add-architecture arm64; apt-get install libc6:arm64 libstdc++6:arm64 libgomp1:arm64)";
  if (!existsSync(join(BINFMT, "register"))) Bun.spawnSync(["mount", "-t", "binfmt_misc", "binfmt_misc", BINFMT]);
  if (!existsSync(join(BINFMT, "register"))) return `cannot mount binfmt_misc at ${BINFMT} (not root, or not allowed here)`;
  if (!existsSync(join(BINFMT, "qemu-aarch64"))) {
    try {
      writeFileSync(join(BINFMT, "register"), readFileSync(conf, "utf8").trim());
    } catch (err) {
      return `cannot register qemu-aarch64 with binfmt_misc: ${err instanceof Error ? err.message : err}`;
    }
  }
  return readFileSync(join(BINFMT, "qemu-aarch64"), "utf8").startsWith("enabled") ? undefined : "binfmt's qemu-aarch64 entry is disabled";
}

function build(targets: string): { code: number; out: string } {
  const run = Bun.spawnSync([process.execPath, "scripts/build.ts", "--target", targets], { cwd: REPO, stdout: "pipe", stderr: "pipe" });
  return { code: run.exitCode, out: run.stdout.toString() + run.stderr.toString() };
}

let net: TestNetwork;
let hub: LocalHub;
let rbee: string;
let env: Record<string, string>;

beforeAll(async () => {
  const noEmulation = arm64Emulation();
  if (noEmulation) throw new Error(`the linux-arm64 binary cannot run here: ${noEmulation}`);
  const missing = cannotCreateNamespaces();
  if (missing) throw new Error(`the multi-host tests cannot run here: ${missing}`);
  rbee = ensureBinary();
  const built = build("linux-arm64");
  if (built.code !== 0) throw new Error(`bun scripts/build.ts --target linux-arm64 failed: ${built.out}`);
  net = await createTestNetwork(["armbox", "macbox"], { unames: { armbox: "Linux aarch64", macbox: "Darwin arm64" } });
  hub = await startLocalHub({ host: net.gatewayIp });
  env = keeperEnv(hub.url);
}, 300_000);

afterAll(() => tearDownHosts(net));

const keeper = (args: string[]) => runRbee(args, { exe: [rbee], env });

describe("other platforms", () => {
  test("cross builds: linux-arm64 is an ELF for aarch64 carrying the arm64 prebuilt; no macOS prebuilt, said clearly", async () => {
    const file = Bun.spawnSync(["file", "--brief", ARM64_BINARY]).stdout.toString();
    expect(file).toMatch(/^ELF 64-bit LSB executable, ARM aarch64/);
    const archives = readdirSync(join(REPO, "build", "linux-arm64")).filter((f) => f.startsWith("nlc-runtime-linux-arm64-"));
    expect(archives).toHaveLength(1);
    const archive = join(REPO, "build", "linux-arm64", archives[0]!);
    const listed = Bun.spawnSync(["tar", "--list", "--gzip", "--file", archive]).stdout.toString().split("\n");
    expect(listed).toContain("node_modules/@node-llama-cpp/linux-arm64/bins/linux-arm64/llama-addon.node");
    expect(listed.some((f) => f.includes("@node-llama-cpp/linux-x64"))).toBe(false);
    const addon = Bun.spawnSync(["sh", "-c", `tar --extract --gzip --to-stdout --file ${archive} node_modules/@node-llama-cpp/linux-arm64/bins/linux-arm64/llama-addon.node | file --brief -`]).stdout.toString();
    expect(addon).toMatch(/ELF 64-bit LSB shared object, ARM aarch64/);
    // The archive is inside the binary, byte for byte.
    const head = readFileSync(archive).subarray(0, 65536);
    expect(readFileSync(ARM64_BINARY).indexOf(head)).toBeGreaterThan(0);

    const mac = build("darwin-arm64");
    expect(mac.code).not.toBe(0);
    expect(mac.out).toMatch(/@node-llama-cpp\/mac-arm64-metal@\d+\.\d+\.\d+ is not on npm \(its newest is [\d.]+\): node-llama-cpp [\d.]+ ships no prebuilt for this target/);
  }, 120_000);

  test("the linux-arm64 binary runs (emulated): its version, and a CPU worker that tells a story", async () => {
    const exe = [ARM64_BINARY];
    const cache = tempHome("rbee-arm-cache-");
    const version = await runRbee(["--version"], { exe });
    expect(version.stdout.trim()).toBe(VERSION);
    const worker = await startRbee(["worker", "--model", STORIES_MODEL, "--port", "0"], { exe, env: { RBEE_CACHE_DIR: cache }, timeoutMs: 60_000 });
    const ready = await waitFor("the emulated worker ready", async () => {
      const r = await (await fetch(`${worker.url}/v1/ready`)).json();
      return r.ready ? r : undefined;
    }, 90_000);
    // The stock addon of node-llama-cpp's arm64 prebuilt: rbee's native part is built for this machine only.
    expect(ready).toMatchObject({ backend: "cpu", sampling: "per-sequence" });
    const res = await fetch(`${worker.url}/v1/completions`, { method: "POST", body: JSON.stringify({ prompt: "Once upon a time", max_tokens: 30, seed: 1 }) });
    const body = await res.json();
    expect(body.usage.completion_tokens).toBe(30);
    expect(body.choices[0].text).toMatch(/\b(there|was|a|little)\b/);
    expect(readdirSync(cache).some((d) => d.startsWith("nlc-runtime-linux-arm64-"))).toBe(true);
    expect(await worker.stop()).toBe(0);
  }, 150_000);

  test("setup install picks by uname: an aarch64 node gets the arm64 binary and serves infer --node; a Mac without a build is refused", async () => {
    const [arm, mac] = net.hosts as [TestHost, TestHost];
    for (const host of [arm, mac]) {
      const added = await keeper(["setup", "add-node", host.name, "--ssh", `root@${host.ip}`, "--key", net.clientKey, "--rbee-path", host.rbeePath, "--accept-new-host-key"]);
      expect(added.code).toBe(0);
    }
    const listed = (await keeper(["setup", "list-nodes"])).stdout;
    expect(listed).toMatch(/armbox\s+\S+\s+linux-arm64/);
    expect(listed).toMatch(/macbox\s+\S+\s+darwin-arm64/);

    const installed = await keeper(["setup", "install", "--node", "armbox"]);
    expect(installed.stderr).toBe("");
    expect(installed.stdout.trim()).toBe(`installed rbee ${VERSION} (linux-arm64) on armbox at ${arm.rbeePath}`);
    expect(Bun.spawnSync(["file", "--brief", arm.rbeePath]).stdout.toString()).toMatch(/ARM aarch64/);

    const refused = await keeper(["setup", "install", "--node", "macbox"]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr.trim()).toBe(`rbee: node macbox is darwin-arm64 and ${join(REPO, "dist")} has no rbee-darwin-arm64: build it with \`bun run build --target darwin-arm64\` (or --all), or name a folder that has it with --from`);
    expect(existsSync(mac.rbeePath)).toBe(false);

    const run = await keeper(["infer", "--node", "armbox", "--model", STORIES_HF_REF, "--prompt", "Once upon a time", "--max-tokens", "30", "--seed", "1"]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout.length).toBeGreaterThan(40);
    // The hive and worker on the node were the arm64 binary; none is left.
    await waitFor("nothing left on armbox", () => (arm.pids().every((pid) => !existsSync(`/proc/${pid}/cmdline`) || !readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(arm.rbeePath)) ? true : undefined), 15_000);
  }, 240_000);
});
