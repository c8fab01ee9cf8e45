// Every machine a person owns: `bun run build --target` cross-builds, the linux-arm64 binary really running (Debian's
// qemu-user-static through binfmt), the darwin-arm64 binary checked as far as this machine can (Mach-O, its signature
// page by page, its Metal engine where node-llama-cpp finds it), and `setup install` choosing the binary by what the
// node says it is (uname -sm): an aarch64 node gets the arm64 binary, serves `rbee infer --node` and answers `rbee
// doctor --node`; a Mac gets the darwin-arm64 binary (which cannot run on this Linux stand-in).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { engineLayout } from "../../scripts/lib/engine-layout";
import { checkMachOSignature } from "../../scripts/lib/macho-signature";
import { VERSION } from "../../src/version";
import { ensureBinary } from "../support/binary";
import { tempHome } from "../support/home";
import { type LocalHub, startLocalHub, STORIES_HF_REF } from "../support/hub";
import { cannotCreateNamespaces, createTestNetwork, keeperEnv, tearDownHosts, type TestHost, type TestNetwork } from "../support/netns";
import { REPO, STORIES_MODEL } from "../support/paths";
import { killStartedProcesses, runRbee, startRbee, waitFor } from "../support/processes";

const ARM64_BINARY = join(REPO, "dist", "rbee-linux-arm64");
const MAC_BINARY = join(REPO, "dist", "rbee-darwin-arm64");
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
  const built = build("linux-arm64,darwin-arm64");
  if (built.code !== 0) throw new Error(`bun scripts/build.ts --target linux-arm64,darwin-arm64 failed: ${built.out}`);
  net = await createTestNetwork(["armbox", "macbox", "intelmac"], { unames: { armbox: "Linux aarch64", macbox: "Darwin arm64", intelmac: "Darwin x86_64" } });
  hub = await startLocalHub({ host: net.gatewayIp });
  env = keeperEnv(hub.url);
}, 300_000);

afterAll(async () => {
  await killStartedProcesses();
  tearDownHosts(net);
});

const keeper = (args: string[]) => runRbee(args, { exe: [rbee], env });

describe("other platforms", () => {
  test("cross builds: linux-arm64 is an ELF for aarch64 carrying the arm64 prebuilt", async () => {
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
  }, 120_000);

  test("darwin-arm64: a Mach-O for arm64 whose signature verifies page by page, carrying the Metal engine where node-llama-cpp finds it", async () => {
    expect(Bun.spawnSync(["file", "--brief", MAC_BINARY]).stdout.toString()).toMatch(/^Mach-O 64-bit arm64 executable/);
    const signature = checkMachOSignature(readFileSync(MAC_BINARY));
    expect(signature).toMatchObject({ cpu: "arm64", faults: [] });
    expect(signature.pages).toBeGreaterThan(1000);
    // The check can fail: one byte changed in a signed page is found.
    const tampered = readFileSync(MAC_BINARY);
    tampered[4096 * 7 + 100] = tampered[4096 * 7 + 100]! ^ 0xff;
    expect(checkMachOSignature(tampered).faults).toEqual([`1 of ${signature.pages} page hashes do not match: pages 7`]);

    const buildDir = join(REPO, "build", "darwin-arm64");
    const archives = readdirSync(buildDir).filter((f) => f.startsWith("nlc-runtime-darwin-arm64-"));
    expect(archives).toHaveLength(1);
    const archive = join(buildDir, archives[0]!);
    expect(readFileSync(MAC_BINARY).indexOf(readFileSync(archive).subarray(0, 65536))).toBeGreaterThan(0);
    // macOS's tar is bsdtar: the runtime unpacks with it and the flags rbee uses (src/inference/runtime.ts).
    const unpacked = mkdtempSync(join(tmpdir(), "rbee-mac-runtime-"));
    const tar = Bun.spawnSync(["bsdtar", "--extract", "--gzip", "--file", archive, "--directory", unpacked], { stderr: "pipe" });
    expect(tar.stderr.toString()).toBe("");
    expect(tar.exitCode).toBe(0);
    const engine = join(unpacked, "node_modules", "node-llama-cpp", "bins", "mac-arm64-metal");
    for (const file of ["llama-addon.node", "_nlcBuildMetadata.json", "libggml-metal.so", "libggml-base.dylib", "libggml.metal.v0.4.0.dylib", "libllama.metal.v0.4.0.dylib", "libggml-cpu-apple_m1.so", "libggml-cpu-apple_m4.so"])
      expect(existsSync(join(engine, file))).toBe(true);
    expect(Bun.spawnSync(["file", "--brief", join(engine, "llama-addon.node")]).stdout.toString()).toMatch(/^Mach-O 64-bit arm64 dynamically linked shared library/);
    expect(JSON.parse(readFileSync(join(engine, "_nlcBuildMetadata.json"), "utf8")).buildOptions).toMatchObject({ platform: "mac", arch: "arm64", gpu: "metal" });
    // No prebuilt package of another version beside it (node-llama-cpp would pass it by).
    expect(existsSync(join(unpacked, "node_modules", "@node-llama-cpp"))).toBe(false);
    // node-llama-cpp's own JavaScript, asked for macOS / arm64 / Metal, takes that folder.
    const nlc = join(unpacked, "node_modules", "node-llama-cpp", "dist");
    const { getBuildFolderNameForBuildOptions } = await import(join(nlc, "bindings", "utils", "getBuildFolderNameForBuildOptions.js"));
    const { getPrebuiltBinaryPath } = await import(join(nlc, "bindings", "utils", "compileLLamaCpp.js"));
    const { builtinLlamaCppGitHubRepo } = await import(join(nlc, "config.js"));
    const { builtinLlamaCppRelease } = await import(join(nlc, "bindings", "utils", "binariesGithubRelease.js"));
    const options = { platform: "mac", arch: "arm64", gpu: "metal", customCmakeOptions: new Map(), llamaCpp: { repo: builtinLlamaCppGitHubRepo, release: builtinLlamaCppRelease } };
    const folder = await getBuildFolderNameForBuildOptions(options);
    const found = await getPrebuiltBinaryPath(options, folder.withoutCustomCmakeOptions);
    expect(found).toMatchObject({ folderName: "mac-arm64-metal", folderPath: engine, binaryPath: join(engine, "llama-addon.node") });
    rmSync(unpacked, { recursive: true, force: true });
  }, 60_000);

  test("what cannot be built says so in one line and leaves nothing in dist/: darwin-x64's signature, an unknown target, an engine folder without metadata", () => {
    const before = readdirSync(join(REPO, "dist")).sort();
    const x64 = build("darwin-x64");
    expect(x64.code).toBe(1);
    expect(x64.out.trim().split("\n").at(-1)).toMatch(/^build: darwin-x64: the code signature Bun [\d.]+ wrote does not verify \(.*page hashes do not match.*\), so macOS would refuse it: not written$/);
    const unknown = build("darwin-riscv");
    expect(unknown.code).toBe(1);
    expect(unknown.out.trim()).toBe("build: unknown target \"darwin-riscv\": one of linux-x64, linux-arm64, darwin-arm64, darwin-x64");
    expect(readdirSync(join(REPO, "dist")).sort()).toEqual(before);
    // A prebuilt whose folder lacks node-llama-cpp's build metadata is no engine.
    const root = mkdtempSync(join(tmpdir(), "rbee-engine-"));
    mkdirSync(join(root, "node_modules/@node-llama-cpp/mac-arm64-metal/bins/mac-arm64-metal"), { recursive: true });
    writeFileSync(join(root, "node_modules/@node-llama-cpp/mac-arm64-metal/bins/mac-arm64-metal/llama-addon.node"), "");
    expect(() => engineLayout(root, ["node_modules/@node-llama-cpp/mac-arm64-metal"], "3.21.1")).toThrow("node_modules/@node-llama-cpp/mac-arm64-metal@3.21.1: bins/mac-arm64-metal has no _nlcBuildMetadata.json, so node-llama-cpp would not take it as an engine");
    writeFileSync(join(root, "node_modules/@node-llama-cpp/mac-arm64-metal/bins/mac-arm64-metal/_nlcBuildMetadata.json"), "{}");
    expect(engineLayout(root, ["node_modules/@node-llama-cpp/mac-arm64-metal"], "3.21.1")).toEqual(["--transform=s,^node_modules/@node-llama-cpp/mac-arm64-metal/bins/,node_modules/node-llama-cpp/bins/,"]);
    rmSync(root, { recursive: true, force: true });
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

  test("setup install picks by uname: an aarch64 node gets the arm64 binary, serves infer --node and answers doctor --node; a Mac gets darwin-arm64", async () => {
    const [arm, mac, intel] = net.hosts as [TestHost, TestHost, TestHost];
    for (const host of [arm, mac, intel]) {
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

    // The Mac gets the darwin-arm64 binary; this Linux stand-in cannot run it, which install's own check says.
    const toMac = await keeper(["setup", "install", "--node", "macbox"]);
    expect(toMac.code).not.toBe(0);
    expect(toMac.stderr).toMatch(new RegExp(`^rbee: rbee was copied to macbox:${mac.rbeePath.replace(/[.]/g, "\\.")} but does not run there \\(.*\\)\\n$`));
    expect(new Bun.CryptoHasher("sha256").update(readFileSync(mac.rbeePath)).digest("hex")).toBe(new Bun.CryptoHasher("sha256").update(readFileSync(MAC_BINARY)).digest("hex"));

    // The node's own doctor, over SSH: the emulated arm64 binary with its stock addon.
    const doctor = await keeper(["doctor", "--node", "armbox"]);
    expect(doctor.stderr).toBe("");
    expect(doctor.stdout).toMatch(/^ARMBOX\s+WHAT RBEE SEES$/m);
    expect(doctor.stdout).toMatch(/^platform\s+linux-arm64 \(Linux /m);
    expect(doctor.stdout).toMatch(/^engine\s+llama\.cpp v\d+\.\d+\.\d+ on cpu, stock addon; off: batched-sampling, logprobs, /m);
    expect(doctor.stdout.trim().split("\n").at(-1)).toBe("ready: models run here on cpu");
    expect(doctor.code).toBe(0);
    // An Intel Mac: no binary is built for it (its signature does not verify), which install says in one line.
    const toIntel = await keeper(["setup", "install", "--node", "intelmac"]);
    expect(toIntel.code).not.toBe(0);
    expect(toIntel.stderr).toBe(`rbee: node intelmac is darwin-x64 and ${join(REPO, "dist")} has no rbee-darwin-x64: build it with \`bun run build --target darwin-x64\` (or --all), or name a folder that has it with --from\n`);
    expect(existsSync(intel.rbeePath)).toBe(false);
    const noRbee = await keeper(["doctor", "--node", "macbox"]);
    expect(noRbee.code).not.toBe(0);

    const run = await keeper(["infer", "--node", "armbox", "--model", STORIES_HF_REF, "--prompt", "Once upon a time", "--max-tokens", "30", "--seed", "1"]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout.length).toBeGreaterThan(40);
    // The hive and worker on the node were the arm64 binary; none is left.
    await waitFor("nothing left on armbox", () => (arm.pids().every((pid) => !existsSync(`/proc/${pid}/cmdline`) || !readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(arm.rbeePath)) ? true : undefined), 15_000);
  }, 240_000);
});
