// Compiles rbee into one file, dist/rbee: Bun's runtime, rbee's code, and node-llama-cpp with this platform's native
// addon as an embedded archive (unpacked once to ~/.cache/rbee on first use; see src/inference/runtime.ts).
//   bun scripts/build.ts            CPU + Vulkan addons -> dist/rbee
//   bun scripts/build.ts --no-vulkan   CPU only
//   bun scripts/build.ts --cuda     CPU + Vulkan + CUDA -> dist/rbee-cuda
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { RUNTIME_ARCHIVE_PREFIX } from "../src/inference/runtime";

const root = join(import.meta.dir, "..");
const args = new Set(process.argv.slice(2));
const platform = `${process.platform}-${process.arch}`;
const backends = ["", ...(args.has("--no-vulkan") ? [] : ["-vulkan"]), ...(args.has("--cuda") ? ["-cuda"] : [])];
const outfile = join(root, "dist", args.has("--cuda") ? "rbee-cuda" : "rbee");

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

function filesOf(pkgDir: string): string[] {
  const glob = new Bun.Glob("**/*");
  return [...glob.scanSync({ cwd: join(root, pkgDir), dot: true, onlyFiles: true })]
    .map((f) => join(pkgDir, f))
    .filter((f) => !SKIP.some((re) => re.test(f)));
}

const addons = backends.map((b) => join("node_modules", "@node-llama-cpp", `${platform}${b}`));
for (const dir of addons) if (!existsSync(join(root, dir))) throw new Error(`missing ${dir}: run bun install`);
const packages = [...dependencyClosure(join("node_modules", "node-llama-cpp")), ...addons];
const files = [...new Set(packages.flatMap(filesOf))];

const buildDir = join(root, "build");
rmSync(buildDir, { recursive: true, force: true });
mkdirSync(buildDir, { recursive: true });
const staging = join(buildDir, "runtime.tar.gz");
const listFile = join(buildDir, "files.txt");
await Bun.write(listFile, files.join("\n"));
const tar = Bun.spawnSync(["tar", "--create", "--gzip", "--file", staging, "--owner=0", "--group=0", "--mtime=@0", "--files-from", listFile], { cwd: root, stderr: "inherit" });
if (tar.exitCode !== 0) throw new Error("tar failed");
const hash = createHash("sha256").update(readFileSync(staging)).digest("hex").slice(0, 12);
const archive = join(buildDir, `${RUNTIME_ARCHIVE_PREFIX}${platform}-${hash}.tar.gz`);
await Bun.write(archive, Bun.file(staging));
rmSync(staging);

const result = await Bun.build({
  entrypoints: [join(root, "src/cli.ts"), archive],
  // The unpacked node-llama-cpp resolves its dependencies through their package.json files.
  compile: { outfile, autoloadPackageJson: true },
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
console.log(`${relative(root, outfile)}: ${mb(statSync(outfile).size)} (runtime archive ${mb(statSync(archive).size)}, ${files.length} files, backends: cpu${backends.join("").replaceAll("-", ", ")})`);
