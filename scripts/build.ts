// Compiles rbee into one file: Bun's runtime, rbee's code, and node-llama-cpp with a platform's native addon as an
// embedded archive (unpacked once to ~/.cache/rbee on first use; see src/inference/runtime.ts).
//   bun scripts/build.ts                 this machine: CPU + Vulkan addons -> dist/rbee
//   bun scripts/build.ts --no-vulkan     CPU only
//   bun scripts/build.ts --cuda          CPU + Vulkan + CUDA -> dist/rbee-cuda
//   bun scripts/build.ts --target linux-arm64,darwin-arm64   -> dist/rbee-linux-arm64, dist/rbee-darwin-arm64
//   bun scripts/build.ts --all           every target below -> dist/rbee-TARGET
//   bun scripts/build.ts --target linux-x64 --engine 3.21.1   -> dist/rbee-linux-x64-engine-3.21.1 (an older engine)
// Another platform's node-llama-cpp prebuilts are installed by Bun's own cross-platform install (--os, --cpu) into
// build/prebuilts/TARGET; they carry node-llama-cpp's stock addon, since rbee's native part (src/inference/native/)
// is compiled only for this machine (its binary says so in /v1/ready's `engine`).
// A prebuilt of another version than node-llama-cpp's (the engine a target names) is laid in node-llama-cpp's own
// bins/ folder, where its JavaScript looks first and checks no version (a prebuilt package of another version it
// ignores); the worker then asks the addon what it can do (src/inference/engine-features.ts).
// A macOS binary is written only when its code signature verifies page by page (scripts/lib/macho-signature.ts).
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { RUNTIME_ARCHIVE_PREFIX } from "../src/inference/runtime";
import { BuildError } from "./lib/build-error";
import { engineLayout } from "./lib/engine-layout";
import { checkMachOSignature } from "./lib/macho-signature";

const root = join(import.meta.dir, "..");
const argv = process.argv.slice(2);
const args = new Set(argv);
const hostTarget = `${process.platform}-${process.arch}`;
/** The node-llama-cpp whose JavaScript every binary carries; a target's engine is this version unless it names another. */
const NLC_VERSION = JSON.parse(readFileSync(join(root, "node_modules", "node-llama-cpp", "package.json"), "utf8")).version as string;

/**
 * Each target: Bun's compile target, node-llama-cpp's prebuilt packages for it (Metal is in the macOS arm64 one), and
 * the version of those prebuilts (the engine), where it is not node-llama-cpp's own: the registry's Metal prebuilts end
 * at 3.21.1. When a prebuilt of node-llama-cpp's version appears, its target's `engine` goes.
 */
const TARGETS: Record<string, { bun: string; os: string; cpu: string; prebuilts: string[]; engine?: string; macho?: string }> = {
  "linux-x64": { bun: "bun-linux-x64", os: "linux", cpu: "x64", prebuilts: ["linux-x64", ...(args.has("--no-vulkan") ? [] : ["linux-x64-vulkan"]), ...(args.has("--cuda") ? ["linux-x64-cuda"] : [])] },
  "linux-arm64": { bun: "bun-linux-arm64", os: "linux", cpu: "arm64", prebuilts: ["linux-arm64"] },
  "darwin-arm64": { bun: "bun-darwin-arm64", os: "darwin", cpu: "arm64", prebuilts: ["mac-arm64-metal"], engine: "3.21.1", macho: "arm64" },
  "darwin-x64": { bun: "bun-darwin-x64", os: "darwin", cpu: "x64", prebuilts: ["mac-x64"], engine: "3.21.1", macho: "x86_64" },
};

/** A target that cannot be built here as things are (no prebuilt, a bad signature): --all goes on with the others. */
class TargetUnavailable extends BuildError {}

/** `--engine VERSION` replaces every target's engine (to build and test an older one); else the target's own. */
function engineOf(target: string): string {
  const flag = argv.indexOf("--engine");
  if (flag >= 0) return argv[flag + 1] ?? "";
  return TARGETS[target]!.engine ?? NLC_VERSION;
}

/** Files node-llama-cpp never reads at run time: llama.cpp's source bundle, typings, source maps. */
const SKIP = [/\/llama\/gitRelease\.bundle$/, /\.d\.ts$/, /\.map$/, /\/llama\/llama\.cpp\//];

/** Package folders node-llama-cpp needs, resolved the way Node does (nested node_modules first, then upwards). */
function dependencyClosure(pkgDir: string, seen = new Set<string>()): Set<string> {
  if (seen.has(pkgDir)) return seen;
  seen.add(pkgDir);
  const pkg = JSON.parse(readFileSync(join(root, pkgDir, "package.json"), "utf8"));
  for (const dep of Object.keys(pkg.dependencies ?? {})) dependencyClosure(resolvePackage(pkgDir, dep), seen);
  return seen;
}

function resolvePackage(fromDir: string, name: string): string {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(join(root, candidate, "package.json"))) return candidate;
    if (dir === "." || dir === "") throw new Error(`cannot resolve ${name} from ${fromDir}`);
  }
}

/** A package's files, relative to `base` (where its node_modules is). */
function filesOf(base: string, pkgDir: string): string[] {
  const glob = new Bun.Glob("**/*");
  return [...glob.scanSync({ cwd: join(base, pkgDir), dot: true, onlyFiles: true })]
    .map((f) => join(pkgDir, f))
    .filter((f) => !SKIP.some((re) => re.test(f)));
}

/** A target's prebuilt packages of its engine's version, installed for its platform by Bun (--os, --cpu) into build/prebuilts/TARGET. */
async function installPrebuilts(target: string, engine: string): Promise<string> {
  const { os, cpu, prebuilts } = TARGETS[target]!;
  const dir = join(root, "build", "prebuilts", target);
  const wanted = Object.fromEntries(prebuilts.map((p) => [`@node-llama-cpp/${p}`, engine]));
  const manifest = join(dir, "package.json");
  const current = existsSync(manifest) && JSON.stringify(JSON.parse(readFileSync(manifest, "utf8")).dependencies) === JSON.stringify(wanted);
  if (!current || prebuilts.some((p) => !existsSync(join(dir, "node_modules", "@node-llama-cpp", p, "package.json")))) {
    await checkPublished(prebuilts.map((p) => `@node-llama-cpp/${p}`), engine);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    writeFileSync(manifest, JSON.stringify({ name: `rbee-prebuilts-${target}`, private: true, dependencies: wanted }, null, 2));
    const install = Bun.spawnSync([process.execPath, "install", `--os=${os}`, `--cpu=${cpu}`, "--no-progress"], { cwd: dir, stdout: "inherit", stderr: "inherit" });
    if (install.exitCode !== 0) throw new BuildError(`bun install of ${target}'s prebuilts (${Object.keys(wanted).join(", ")} ${engine}) failed`);
  }
  for (const p of prebuilts) if (!existsSync(join(dir, "node_modules", "@node-llama-cpp", p, "package.json"))) throw new BuildError(`${target}: @node-llama-cpp/${p}@${engine} was not installed`);
  return dir;
}

/** node-llama-cpp's prebuilts follow its releases on npm, not always for every platform: say which is missing. */
async function checkPublished(packages: string[], version: string): Promise<void> {
  const registry = (process.env.npm_config_registry ?? "https://registry.npmjs.org").replace(/\/$/, "");
  for (const pkg of packages) {
    const res = await fetch(`${registry}/${pkg.replace("/", "%2f")}`, { headers: { accept: "application/vnd.npm.install-v1+json" } });
    if (!res.ok) throw new BuildError(`cannot read ${pkg} from ${registry}: HTTP ${res.status}`);
    const versions = Object.keys(((await res.json()) as { versions: Record<string, unknown> }).versions);
    if (!versions.includes(version)) throw new TargetUnavailable(`${pkg}@${version} is not on npm (its newest is ${versions.at(-1)}): no engine ${version} for this target`);
  }
}

/** The runtime archive of a target: node-llama-cpp and its dependencies (any platform), and the target's prebuilts. */
async function runtimeArchive(target: string, buildDir: string, engine: string): Promise<{ archive: string; files: number }> {
  const { prebuilts } = TARGETS[target]!;
  // This machine's prebuilts of node-llama-cpp's version are the ones scripts/build-addon.ts rebuilt with rbee's native part.
  const prebuiltRoot = target === hostTarget && engine === NLC_VERSION ? root : await installPrebuilts(target, engine);
  const prebuiltDirs = prebuilts.map((p) => join("node_modules", "@node-llama-cpp", p));
  for (const dir of prebuiltDirs) if (!existsSync(join(prebuiltRoot, dir))) throw new BuildError(`missing ${dir}: run bun install`);
  const transforms = engine === NLC_VERSION ? [] : engineLayout(prebuiltRoot, prebuiltDirs, engine);
  const common = [...new Set([...dependencyClosure(join("node_modules", "node-llama-cpp"))].flatMap((d) => filesOf(root, d)))];
  // A laid-out engine is its bins/ folders alone: its package (of another version) node-llama-cpp would not take.
  const native = [...new Set(prebuiltDirs.flatMap((d) => filesOf(prebuiltRoot, d)))].filter((f) => !transforms.length || f.includes("/bins/"));
  const staging = join(buildDir, "runtime.tar.gz");
  await Bun.write(join(buildDir, "common.txt"), common.join("\n"));
  await Bun.write(join(buildDir, "native.txt"), native.join("\n"));
  const tar = Bun.spawnSync(
    ["tar", "--create", "--gzip", "--file", staging, "--owner=0", "--group=0", "--mtime=@0", ...transforms, "-C", root, "--files-from", join(buildDir, "common.txt"), "-C", prebuiltRoot, "--files-from", join(buildDir, "native.txt")],
    { stderr: "inherit" },
  );
  if (tar.exitCode !== 0) throw new BuildError("tar failed");
  const hash = createHash("sha256").update(readFileSync(staging)).digest("hex").slice(0, 12);
  const archive = join(buildDir, `${RUNTIME_ARCHIVE_PREFIX}${target}-${hash}.tar.gz`);
  await Bun.write(archive, Bun.file(staging));
  rmSync(staging);
  return { archive, files: common.length + native.length };
}

/** A macOS binary runs on Apple silicon only with a valid signature: one that does not verify is not written. */
function checkSignature(target: string, file: string): void {
  const expected = TARGETS[target]!.macho;
  if (!expected) return;
  const check = checkMachOSignature(readFileSync(file));
  if (check.cpu !== expected) throw new BuildError(`${target}: Bun wrote a Mach-O for ${check.cpu}, not ${expected}`);
  if (check.faults.length) throw new TargetUnavailable(`${target}: the code signature Bun ${Bun.version} wrote does not verify (${check.faults.join("; ")}), so macOS would refuse it: not written`);
}

async function build(target: string, outfile: string): Promise<void> {
  const engine = engineOf(target);
  const buildDir = join(root, "build", `${target}${engineSuffix()}`);
  rmSync(buildDir, { recursive: true, force: true });
  mkdirSync(buildDir, { recursive: true });
  const { archive, files } = await runtimeArchive(target, buildDir, engine);
  // Written beside its place and moved there once checked: dist/ never holds half a binary or an unchecked one.
  const partial = join(dirname(outfile), `.${target}-${process.pid}.partial`);
  mkdirSync(dirname(outfile), { recursive: true });
  try {
    const result = await Bun.build({
      entrypoints: [join(root, "src/cli.ts"), archive],
      // The unpacked node-llama-cpp resolves its dependencies through their package.json files.
      compile: { outfile: partial, autoloadPackageJson: true, target: TARGETS[target]!.bun as Bun.Build.CompileTarget },
      naming: { asset: "[name].[ext]" },
      minify: true,
      // ssh2's optional native speed-ups: it falls back to JavaScript when they are absent (they are not built here).
      external: ["cpu-features", "*/sshcrypto.node"],
      sourcemap: "none",
    });
    if (!result.success) throw new BuildError(`bun build failed for ${target}: ${result.logs.map(String).join("; ")}`);
    checkSignature(target, partial);
    renameSync(partial, outfile);
  } finally {
    rmSync(partial, { force: true });
  }
  const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
  const signed = TARGETS[target]!.macho ? ", code signature verified" : "";
  console.log(`${relative(root, outfile)}: ${mb(statSync(outfile).size)} (runtime archive ${mb(statSync(archive).size)}, ${files} files, node-llama-cpp prebuilts: ${TARGETS[target]!.prebuilts.join(", ")} ${engine}${signed})`);
}

/** What tells a build of another engine (--engine) apart, in dist/ and build/. */
function engineSuffix(): string {
  return args.has("--engine") ? `-engine-${engineOf(hostTarget)}` : "";
}

function chosenTargets(): string[] {
  if (args.has("--all")) return Object.keys(TARGETS);
  if (!args.has("--target")) return [];
  const named = (argv[argv.indexOf("--target") + 1] ?? "").split(",").filter(Boolean);
  if (!named.length) throw new BuildError(`--target needs one of ${Object.keys(TARGETS).join(", ")} (comma-separated)`);
  for (const t of named) if (!TARGETS[t]) throw new BuildError(`unknown target "${t}": one of ${Object.keys(TARGETS).join(", ")}`);
  return named;
}

async function main(): Promise<void> {
  const known = new Set(["--all", "--target", "--engine", "--cuda", "--no-vulkan"]);
  for (const [i, a] of argv.entries()) if (!known.has(a) && !["--target", "--engine"].includes(argv[i - 1] ?? "")) throw new BuildError(`unknown argument "${a}": one of ${[...known].join(", ")}`);
  if (args.has("--engine") && !/^\d+\.\d+\.\d+$/.test(engineOf(hostTarget))) throw new BuildError(`--engine needs a node-llama-cpp version such as 3.21.1`);
  const targetList = chosenTargets();
  if (!targetList.length) {
    if (!TARGETS[hostTarget]) throw new BuildError(`no build for this machine (${hostTarget}): use --target`);
    // Another engine never takes dist/rbee's place: it is named after it.
    await build(hostTarget, join(root, "dist", `${args.has("--cuda") ? "rbee-cuda" : "rbee"}${engineSuffix()}`));
    return;
  }
  const missing: string[] = [];
  for (const t of targetList) {
    try {
      await build(t, join(root, "dist", `rbee-${t}${engineSuffix()}`));
    } catch (err) {
      // --all builds every target that can be built here; a target named on its own must build.
      if (!(err instanceof TargetUnavailable) || !args.has("--all")) throw err;
      missing.push(err.message);
    }
  }
  for (const line of missing) console.log(`not built: ${line}`);
}

try {
  await main();
} catch (err) {
  console.error(`build: ${err instanceof BuildError ? err.message : err instanceof Error ? err.stack : err}`);
  process.exit(1);
}
