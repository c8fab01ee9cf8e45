// Rebuilds node-llama-cpp's llama-addon.node with rbee's sample-then-decode step (src/inference/native/) and
// puts it beside the prebuilt llama.cpp libraries it links to. Only the addon is compiled (about 20 s on two cores):
// llama.cpp itself stays the prebuilt one, so every installed backend (CPU, CUDA, and Vulkan where its headers are
// installed) gets rbee's calls.
//   bun scripts/build-addon.ts          every installed prebuilt that can take it
//   bun scripts/build-addon.ts --check  exit 1 unless every such prebuilt already has it
//   bun scripts/build-addon.ts --into DIR   link into another prebuilt's unpacked bins folder (a GPU build to copy over)
// Without this step the worker still runs, sampling one sequence per call and waiting for each decode
// (src/inference/addon.ts says which).
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { basename, join } from "node:path";

const root = join(import.meta.dir, "..");
const nativeDir = join(root, "src", "inference", "native");
const nlcDir = join(root, "node_modules", "node-llama-cpp");
const MARKER = "rbee-addon.json";

function run(cmd: string[]): void {
  const result = Bun.spawnSync(cmd, { cwd: root, stdout: "inherit", stderr: "inherit" });
  if (result.exitCode !== 0) throw new Error(`${cmd.slice(0, 3).join(" ")}… failed (exit ${result.exitCode})`);
}

/** Vulkan's addon also reads GPU memory through Vulkan itself, so rebuilding it needs Vulkan's C++ headers. */
const VULKAN_HEADER = "/usr/include/vulkan/vulkan.hpp";
const isVulkan = (dir: string) => existsSync(join(dir, "libggml-vulkan.so"));

/** The prebuilt binary folders of this platform that a rebuilt addon can replace. */
function prebuiltDirs(): string[] {
  const scope = join(root, "node_modules", "@node-llama-cpp");
  const platform = `${process.platform}-${process.arch}`;
  if (!existsSync(scope)) return [];
  const dirs = readdirSync(scope)
    .filter((pkg) => pkg === platform || pkg.startsWith(`${platform}-`))
    .flatMap((pkg) => {
      const bins = join(scope, pkg, "bins");
      return existsSync(bins) ? readdirSync(bins).map((d) => join(bins, d)) : [];
    })
    .filter((dir) => existsSync(join(dir, "llama-addon.node")));
  if (existsSync(VULKAN_HEADER)) return dirs;
  if (dirs.some(isVulkan)) console.log("build-addon: the Vulkan addon stays the stock one (no vulkan/vulkan.hpp: install libvulkan-dev)");
  return dirs.filter((dir) => !isVulkan(dir));
}

/** Identifies what goes into the addon: node-llama-cpp's version and rbee's native sources. */
function sourceHash(): string {
  const hash = createHash("sha256").update(JSON.parse(readFileSync(join(nlcDir, "package.json"), "utf8")).version);
  for (const file of readdirSync(nativeDir).sort()) hash.update(file).update(readFileSync(join(nativeDir, file)));
  return hash.digest("hex").slice(0, 16);
}

/** Built from these sources, and still ours: a reinstall may have put the stock addon back beside our marker. */
function isCurrent(dir: string, hash: string): boolean {
  const marker = join(dir, MARKER);
  if (!existsSync(marker) || JSON.parse(readFileSync(marker, "utf8")).hash !== hash) return false;
  return readFileSync(join(dir, "llama-addon.node")).includes("rbeeSampleThenDecode") && existsSync(join(dir, "rpc", "rpc-server"));
}

/** llama.cpp's headers come from the source bundle node-llama-cpp ships; the addon's sources from its llama/addon. */
function prepareSources(workDir: string): string {
  const llamaCpp = join(workDir, "llama.cpp");
  if (!existsSync(join(llamaCpp, "include", "llama.h"))) {
    rmSync(llamaCpp, { recursive: true, force: true });
    run(["git", "-c", "advice.detachedHead=false", "clone", "--quiet", join(nlcDir, "llama", "gitRelease.bundle"), llamaCpp]);
  }
  const addonDir = join(workDir, "addon");
  rmSync(addonDir, { recursive: true, force: true });
  cpSync(join(nlcDir, "llama", "addon"), addonDir, { recursive: true });
  registerNativeCalls(addonDir);
  for (const file of readdirSync(nativeDir).filter((f) => /\.(cpp|h)$/.test(f))) cpSync(join(nativeDir, file), join(addonDir, file));
  return llamaCpp;
}

/** Edits one of the addon's sources in place; throws if the text to replace is not there (node-llama-cpp changed?). */
function edit(file: string, edits: [anchor: string, replacement: string][]): void {
  let source = readFileSync(file, "utf8");
  for (const [anchor, replacement] of edits) {
    if (!source.includes(anchor)) throw new Error(`${file}: cannot find ${JSON.stringify(anchor)} to hook into (node-llama-cpp changed?)`);
    source = source.replace(anchor, replacement);
  }
  writeFileSync(file, source);
}

/** Hooks rbee's calls into the addon: registered at module init, the unified-KV switch read by new contexts, the split. */
function registerNativeCalls(addonDir: string): void {
  const include = '#include "addonGlobals.h"\n';
  edit(join(addonDir, "addon.cpp"), [
    [include, `${include}void rbeeRegisterSampleThenDecode(Napi::Object exports);\nvoid rbeeRegisterKvUnified(Napi::Object exports);\nvoid rbeeRegisterGraphKeys(Napi::Object exports);\nvoid rbeeRegisterLogprobs(Napi::Object exports);\nvoid rbeeRegisterEmbeddings(Napi::Object exports);\nvoid rbeeRegisterModelSplit(Napi::Object exports);\nvoid rbeeRegisterMicroBatch(Napi::Object exports);\nvoid rbeeRegisterRpc(Napi::Object exports);\nvoid rbeeRegisterSeqState(Napi::Object exports);\n`],
    ["    AddonSampler::init(exports);\n", "    AddonSampler::init(exports);\n    rbeeRegisterSampleThenDecode(exports);\n    rbeeRegisterKvUnified(exports);\n    rbeeRegisterGraphKeys(exports);\n    rbeeRegisterLogprobs(exports);\n    rbeeRegisterEmbeddings(exports);\n    rbeeRegisterModelSplit(exports);\n    rbeeRegisterMicroBatch(exports);\n    rbeeRegisterRpc(exports);\n    rbeeRegisterSeqState(exports);\n"],
  ]);
  edit(join(addonDir, "AddonContext.cpp"), [
    ['#include "AddonContext.h"\n', '#include "AddonContext.h"\n\nbool rbeeKvUnified();\nuint32_t rbeeMicroBatch(uint32_t batch);\n'],
    ["    context_params.kv_unified = false;\n", "    context_params.kv_unified = rbeeKvUnified();\n"],
    ["            context_params.n_ubatch = context_params.n_batch;", "            context_params.n_ubatch = rbeeMicroBatch(context_params.n_batch);"],
  ]);
  // The model's split over several GPUs (native/model-split.cpp): options node-llama-cpp's JavaScript passes on.
  // And its layers on other machines' devices (native/rpc-devices.cpp): the RPC servers' devices first.
  edit(join(addonDir, "AddonModel.h"), [["        std::vector<llama_model_kv_override> kv_overrides;\n", "        std::vector<llama_model_kv_override> kv_overrides;\n        std::vector<float> rbeeTensorSplit;\n        std::vector<ggml_backend_dev_t> rbeeRpcDevices;\n"]]);
  edit(join(addonDir, "AddonModel.cpp"), [
    ['#include "AddonModel.h"\n', '#include "AddonModel.h"\n\nvoid rbeeApplyModelSplit(llama_model_params& params, const Napi::Object& options, std::vector<float>& storage);\nbool rbeeApplyRpcServers(llama_model_params& params, const Napi::Object& options, std::vector<ggml_backend_dev_t>& storage, std::string& error);\n'],
    ['        if (options.Has("vocabOnly")) {\n', '        rbeeApplyModelSplit(model_params, options, rbeeTensorSplit);\n        std::string rbeeRpcError;\n        if (!rbeeApplyRpcServers(model_params, options, rbeeRpcDevices, rbeeRpcError)) {\n            Napi::Error::New(info.Env(), rbeeRpcError).ThrowAsJavaScriptException();\n            return;\n        }\n\n        if (options.Has("vocabOnly")) {\n'],
  ]);
}

interface Objects {
  common: string[];
  /** The one source that differs for Vulkan's addon, compiled both ways. */
  gpuInfo: string;
  gpuInfoVulkan?: string;
}

async function compileObjects(workDir: string, llamaCpp: string, withVulkan: boolean): Promise<Objects> {
  const addonDir = join(workDir, "addon");
  const sources = [...new Bun.Glob("**/*.cpp").scanSync({ cwd: addonDir })].map((f) => join(addonDir, f));
  const objDir = join(workDir, "obj");
  rmSync(objDir, { recursive: true, force: true });
  mkdirSync(objDir, { recursive: true });
  const includes = [
    join(root, "node_modules", "node-addon-api"),
    join(root, "node_modules", "node-api-headers", "include"),
    llamaCpp,
    join(llamaCpp, "include"),
    join(llamaCpp, "src"),
    join(llamaCpp, "common"),
    join(llamaCpp, "ggml", "include"),
  ].map((dir) => `-I${dir}`);
  const flags = ["-O2", "-std=c++17", "-fPIC", "-fexceptions", "-DNDEBUG", "-DNAPI_VERSION=7", ...includes];
  const jobs = sources.map((src, i) => ({ src, obj: join(objDir, `${i}-${basename(src, ".cpp")}.o`), extra: [] as string[] }));
  const gpuInfoJob = jobs.find((j) => basename(j.src) === "getGpuInfo.cpp");
  if (!gpuInfoJob) throw new Error(`${addonDir}: no globals/getGpuInfo.cpp (node-llama-cpp changed?)`);
  if (withVulkan) jobs.push({ src: gpuInfoJob.src, obj: join(objDir, "getGpuInfo-vulkan.o"), extra: ["-DGPU_INFO_USE_VULKAN"] });
  const pending = jobs.map((job) => () => compile(["g++", ...flags, ...job.extra, "-c", job.src, "-o", job.obj]));
  const lanes = Array.from({ length: Math.max(1, availableParallelism()) }, async () => {
    for (let job = pending.shift(); job; job = pending.shift()) await job();
  });
  await Promise.all(lanes);
  return {
    common: jobs.filter((j) => j.src !== gpuInfoJob.src).map((j) => j.obj),
    gpuInfo: gpuInfoJob.obj,
    gpuInfoVulkan: withVulkan ? join(objDir, "getGpuInfo-vulkan.o") : undefined,
  };
}

async function compile(cmd: string[]): Promise<void> {
  const child = Bun.spawn(cmd, { stdout: "inherit", stderr: "inherit" });
  if ((await child.exited) !== 0) throw new Error(`g++ failed on ${cmd.at(-3)}`);
}

/**
 * llama.cpp's RPC backend and its rpc-server (ggml/src/ggml-rpc, tools/rpc), compiled once against ggml's headers; each
 * prebuilt folder gets them linked against its own libggml in rpc/ (so node-llama-cpp does not load the backend into
 * every process: native/rpc-devices.cpp loads it where a worker takes remote devices).
 */
async function compileRpc(workDir: string, llamaCpp: string): Promise<string[]> {
  const objDir = join(workDir, "obj-rpc");
  rmSync(objDir, { recursive: true, force: true });
  mkdirSync(objDir, { recursive: true });
  const flags = ["-O2", "-std=c++17", "-fPIC", "-DNDEBUG", "-DGGML_BACKEND_DL", "-DGGML_BACKEND_BUILD", "-DGGML_BACKEND_SHARED", `-I${join(llamaCpp, "ggml", "include")}`, `-I${join(llamaCpp, "ggml", "src")}`];
  const sources = ["ggml/src/ggml-rpc/ggml-rpc.cpp", "ggml/src/ggml-rpc/transport.cpp", "tools/rpc/rpc-server.cpp"];
  const objects = sources.map((src) => join(objDir, `${basename(src, ".cpp")}.o`));
  await Promise.all(sources.map((src, i) => compile(["g++", ...flags, "-c", join(llamaCpp, src), "-o", objects[i]!])));
  return objects;
}

function linkRpcInto(dir: string, [rpc, transport, server]: string[]): void {
  const rpcDir = join(dir, "rpc");
  mkdirSync(rpcDir, { recursive: true });
  // The backend needs ggml's base alone; the server ggml's registry too (libggml.so, named by the variant).
  const ggml = readdirSync(dir).filter((f) => /^libggml[.-].*\.so$/.test(f) && !/^libggml-(cpu|cuda|vulkan|rpc)/.test(f));
  const linking = (libs: string[]) => [`-L${dir}`, ...libs.map((l) => `-l:${l}`), "-Wl,-rpath,$ORIGIN/..", "-pthread"];
  run(["g++", "-shared", "-o", join(rpcDir, "libggml-rpc.so"), rpc!, transport!, ...linking(["libggml-base.so"])]);
  run(["g++", "-o", join(rpcDir, "rpc-server"), server!, ...linking(ggml), "-Wl,--allow-shlib-undefined"]);
}

/** Links against the libraries in `dir` (their names carry the backend variant) and swaps the addon in by rename. */
function linkInto(dir: string, objects: Objects, hash: string): void {
  const libs = readdirSync(dir).filter((f) => /^lib(llama|ggml)[.-].*\.so$/.test(f) && !/^libggml-(cpu|cuda|vulkan)/.test(f));
  const vulkan = isVulkan(dir) ? [objects.gpuInfoVulkan!, "-lvulkan"] : [objects.gpuInfo];
  const staged = join(dir, "llama-addon.node.rbee-new");
  run(["g++", "-shared", "-o", staged, ...objects.common, vulkan[0]!, `-L${dir}`, ...libs.map((l) => `-l:${l}`), ...vulkan.slice(1), "-Wl,-rpath,$ORIGIN:$ORIGIN/../bin"]);
  // A new inode: the old file may be a hard link into the package manager's cache.
  renameSync(staged, join(dir, "llama-addon.node"));
  writeFileSync(join(dir, MARKER), JSON.stringify({ hash, builtAt: new Date().toISOString() }) + "\n");
}

const hash = sourceHash();
const into = process.argv.indexOf("--into");
const targets = into > 0 ? [process.argv[into + 1]!] : prebuiltDirs();
for (const dir of targets) if (!existsSync(join(dir, "llama-addon.node"))) throw new Error(`${dir}: no llama-addon.node there`);
if (targets.length === 0) throw new Error("no node-llama-cpp prebuilt binaries found: run bun install");
const stale = targets.filter((dir) => !isCurrent(dir, hash));
if (process.argv.includes("--check")) {
  for (const dir of stale) console.error(`build-addon: ${dir} has the stock addon`);
  process.exit(stale.length ? 1 : 0);
}
if (stale.length === 0) {
  console.log(`build-addon: up to date (${targets.length} prebuilt folder(s))`);
} else {
  const workDir = join(root, "node_modules", ".cache", "rbee-addon");
  mkdirSync(workDir, { recursive: true });
  const started = performance.now();
  const llamaCpp = prepareSources(workDir);
  const [objects, rpcObjects] = await Promise.all([compileObjects(workDir, llamaCpp, stale.some(isVulkan)), compileRpc(workDir, llamaCpp)]);
  for (const dir of stale) {
    linkRpcInto(dir, rpcObjects);
    linkInto(dir, objects, hash);
  }
  console.log(`build-addon: rebuilt llama-addon.node for ${stale.length} folder(s) in ${((performance.now() - started) / 1000).toFixed(0)} s`);
}
