// Compiles rbee into one file: Bun's runtime, rbee's code, and node-llama-cpp with a platform's native addon as an
// embedded archive (unpacked once to ~/.cache/rbee on first use; see src/inference/runtime.ts).
//   bun scripts/build.ts                 this machine: CPU + Vulkan addons -> dist/rbee
//   bun scripts/build.ts --no-vulkan     CPU only
//   bun scripts/build.ts --cuda          CPU + Vulkan + CUDA -> dist/rbee-cuda
//   bun scripts/build.ts --target linux-arm64,darwin-arm64   -> dist/rbee-linux-arm64, dist/rbee-darwin-arm64
//   bun scripts/build.ts --all           every target below -> dist/rbee-TARGET
// Another platform's node-llama-cpp prebuilts are installed by Bun's own cross-platform install (--os, --cpu) into
// build/prebuilts/TARGET; they carry node-llama-cpp's stock addon, since rbee's native part (src/inference/native/)
// is compiled only for this machine (its binary says so in /v1/ready's `sampling`).
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { RUNTIME_ARCHIVE_PREFIX } from "../src/inference/runtime";

const root = join(import.meta.dir, "..");
const argv = process.argv.slice(2);
const args = new Set(argv);
const hostTarget = `${process.platform}-${process.arch}`;

/** Each target: Bun's compile target and node-llama-cpp's prebuilt packages for it (Metal is in the macOS arm64 one). */
const TARGETS: Record<string, { bun: string; os: string; cpu: string; prebuilts: string[] }> = {
  "linux-x64": { bun: "bun-linux-x64", os: "linux", cpu: "x64", prebuilts: ["linux-x64", ...(args.has("--no-vulkan") ? [] : ["linux-x64-vulkan"]), ...(args.has("--cuda") ? ["linux-x64-cuda"] : [])] },
  "linux-arm64": { bun: "bun-linux-arm64", os: "linux", cpu: "arm64", prebuilts: ["linux-arm64"] },
  "darwin-arm64": { bun: "bun-darwin-arm64", os: "darwin", cpu: "arm64", prebuilts: ["mac-arm64-metal"] },
  "darwin-x64": { bun: "bun-darwin-x64", os: "darwin", cpu: "x64", prebuilts: ["mac-x64"] },
};

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

/** Another platform's prebuilt packages, installed for it by Bun (--os, --cpu) into build/prebuilts/TARGET. */
async function installPrebuilts(target: string): Promise<string> {
  const { os, cpu, prebuilts } = TARGETS[target]!;
  const version = JSON.parse(readFileSync(join(root, "node_modules", "node-llama-cpp", "package.json"), "utf8")).version as string;
  const dir = join(root, "build", "prebuilts", target);
  const wanted = Object.fromEntries(prebuilts.map((p) => [`@node-llama-cpp/${p}`, version]));
  const manifest = join(dir, "package.json");
  const current = existsSync(manifest) && JSON.stringify(JSON.parse(readFileSync(manifest, "utf8")).dependencies) === JSON.stringify(wanted);
  if (!current || prebuilts.some((p) => !existsSync(join(dir, "node_modules", "@node-llama-cpp", p, "package.json")))) {
    await checkPublished(prebuilts.map((p) => `@node-llama-cpp/${p}`), version);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    writeFileSync(manifest, JSON.stringify({ name: `rbee-prebuilts-${target}`, private: true, dependencies: wanted }, null, 2));
    const install = Bun.spawnSync([process.execPath, "install", `--os=${os}`, `--cpu=${cpu}`, "--no-progress"], { cwd: dir, stdout: "inherit", stderr: "inherit" });
    if (install.exitCode !== 0) throw new Error(`bun install of ${target}'s prebuilts failed`);
  }
  for (const p of prebuilts) if (!existsSync(join(dir, "node_modules", "@node-llama-cpp", p, "package.json"))) throw new Error(`${target}: @node-llama-cpp/${p} was not installed`);
  return dir;
}

/** node-llama-cpp's prebuilts follow its releases on npm, not always for every platform: say which is missing. */
async function checkPublished(packages: string[], version: string): Promise<void> {
  const registry = (process.env.npm_config_registry ?? "https://registry.npmjs.org").replace(/\/$/, "");
  for (const pkg of packages) {
    const res = await fetch(`${registry}/${pkg.replace("/", "%2f")}`, { headers: { accept: "application/vnd.npm.install-v1+json" } });
    if (!res.ok) throw new Error(`cannot read ${pkg} from ${registry}: HTTP ${res.status}`);
    const versions = Object.keys(((await res.json()) as { versions: Record<string, unknown> }).versions);
    if (!versions.includes(version)) throw new UnpublishedPrebuilt(`${pkg}@${version} is not on npm (its newest is ${versions.at(-1)}): node-llama-cpp ${version} ships no prebuilt for this target`);
  }
}

class UnpublishedPrebuilt extends Error {}

/** The runtime archive of a target: node-llama-cpp and its dependencies (any platform), and the target's prebuilts. */
async function runtimeArchive(target: string, buildDir: string): Promise<{ archive: string; files: number }> {
  const { prebuilts } = TARGETS[target]!;
  // This machine's prebuilts are the ones scripts/build-addon.ts rebuilt with rbee's native part.
  const prebuiltRoot = target === hostTarget ? root : await installPrebuilts(target);
  const prebuiltDirs = prebuilts.map((p) => join("node_modules", "@node-llama-cpp", p));
  for (const dir of prebuiltDirs) if (!existsSync(join(prebuiltRoot, dir))) throw new Error(`missing ${dir}: run bun install`);
  const common = [...new Set([...dependencyClosure(join("node_modules", "node-llama-cpp"))].flatMap((d) => filesOf(root, d)))];
  const native = [...new Set(prebuiltDirs.flatMap((d) => filesOf(prebuiltRoot, d)))];
  const staging = join(buildDir, "runtime.tar.gz");
  await Bun.write(join(buildDir, "common.txt"), common.join("\n"));
  await Bun.write(join(buildDir, "native.txt"), native.join("\n"));
  const tar = Bun.spawnSync(
    ["tar", "--create", "--gzip", "--file", staging, "--owner=0", "--group=0", "--mtime=@0", "-C", root, "--files-from", join(buildDir, "common.txt"), "-C", prebuiltRoot, "--files-from", join(buildDir, "native.txt")],
    { stderr: "inherit" },
  );
  if (tar.exitCode !== 0) throw new Error("tar failed");
  const hash = createHash("sha256").update(readFileSync(staging)).digest("hex").slice(0, 12);
  const archive = join(buildDir, `${RUNTIME_ARCHIVE_PREFIX}${target}-${hash}.tar.gz`);
  await Bun.write(archive, Bun.file(staging));
  rmSync(staging);
  return { archive, files: common.length + native.length };
}

async function build(target: string, outfile: string): Promise<void> {
  const buildDir = join(root, "build", target);
  rmSync(buildDir, { recursive: true, force: true });
  mkdirSync(buildDir, { recursive: true });
  const { archive, files } = await runtimeArchive(target, buildDir);
  const result = await Bun.build({
    entrypoints: [join(root, "src/cli.ts"), archive],
    // The unpacked node-llama-cpp resolves its dependencies through their package.json files.
    compile: { outfile, autoloadPackageJson: true, target: TARGETS[target]!.bun as Bun.Build.CompileTarget },
    naming: { asset: "[name].[ext]" },
    minify: true,
    // ssh2's optional native speed-ups: it falls back to JavaScript when they are absent (they are not built here).
    external: ["cpu-features", "*/sshcrypto.node"],
    sourcemap: "none",
  });
  if (!result.success) {
    for (const log of result.logs) console.error(log);
    process.exit(1);
  }
  const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
  console.log(`${relative(root, outfile)}: ${mb(statSync(outfile).size)} (runtime archive ${mb(statSync(archive).size)}, ${files} files, node-llama-cpp prebuilts: ${TARGETS[target]!.prebuilts.join(", ")})`);
}

const targetList = args.has("--all") ? Object.keys(TARGETS) : argv.includes("--target") ? (argv[argv.indexOf("--target") + 1] ?? "").split(",").filter(Boolean) : [];
for (const t of targetList) if (!TARGETS[t]) throw new Error(`unknown target "${t}": one of ${Object.keys(TARGETS).join(", ")}`);
if (!targetList.length) {
  if (!TARGETS[hostTarget]) throw new Error(`no build for this machine (${hostTarget}): use --target`);
  await build(hostTarget, join(root, "dist", args.has("--cuda") ? "rbee-cuda" : "rbee"));
} else {
  const missing: string[] = [];
  for (const t of targetList) {
    try {
      await build(t, join(root, "dist", `rbee-${t}`));
    } catch (err) {
      // --all builds every target there are prebuilts for; a target named on its own must build.
      if (!(err instanceof UnpublishedPrebuilt) || !args.has("--all")) throw err;
      missing.push(`${t}: ${err.message}`);
    }
  }
  for (const line of missing) console.log(`not built: ${line}`);
}
