// Loads node-llama-cpp. From source it is a plain import; the compiled binary carries node-llama-cpp and its
// native addon as an embedded archive (see scripts/build.ts), unpacked once into a cache folder and imported from there,
// because the addon and its shared libraries must be real files on disk.
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export type NodeLlamaCpp = typeof import("node-llama-cpp");

export const RUNTIME_ARCHIVE_PREFIX = "nlc-runtime-";
const NODE_LLAMA_CPP: string = ["node", "llama", "cpp"].join("-");

let loaded: Promise<NodeLlamaCpp> | undefined;

export function loadNodeLlamaCpp(): Promise<NodeLlamaCpp> {
  loaded ??= importRuntime();
  return loaded;
}

async function importRuntime(): Promise<NodeLlamaCpp> {
  // A runtime a binary unpacked (another engine): rbee's source run on it, as the tests of older engines do.
  const unpacked = process.env.RBEE_RUNTIME_DIR;
  if (unpacked) return import(join(unpacked, "node_modules", "node-llama-cpp", "dist", "index.js"));
  const archive = embeddedRuntimeArchive();
  // A computed specifier keeps the bundler from pulling node-llama-cpp into the compiled binary.
  if (!archive) return import(NODE_LLAMA_CPP);
  const dir = await unpackOnce(archive);
  return import(join(dir, "node_modules", "node-llama-cpp", "dist", "index.js"));
}

/**
 * Runs `load` (a getLlama call) without node-llama-cpp's load test of its prebuilt binary, a forked child process
 * (H100 host, CUDA: getLlama 1.0-1.5 s with it, 0.5 s without): for a backend that rbee's probe has proven in a child
 * of its own, and in that probe child itself. The switch is read by patches/node-llama-cpp@3.22.1.patch.
 */
export async function withoutBinaryTest<T>(load: () => Promise<T>): Promise<T> {
  process.env.NODE_LLAMA_CPP_SKIP_BINARY_TEST = "1";
  try {
    return await load();
  } finally {
    delete process.env.NODE_LLAMA_CPP_SKIP_BINARY_TEST;
  }
}

function embeddedRuntimeArchive(): (Blob & { name: string }) | undefined {
  return (Bun.embeddedFiles as (Blob & { name: string })[]).find((f) => f.name.startsWith(RUNTIME_ARCHIVE_PREFIX));
}

export function runtimeCacheRoot(): string {
  return process.env.RBEE_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "rbee");
}

async function unpackOnce(archive: Blob & { name: string }): Promise<string> {
  const root = runtimeCacheRoot();
  const dir = join(root, archive.name.replace(/\.tar\.gz$/, ""));
  if (existsSync(join(dir, ".complete"))) return dir;
  const staging = `${dir}.partial-${process.pid}`;
  mkdirSync(staging, { recursive: true });
  const file = join(staging, "..", `${archive.name}.${process.pid}`);
  await Bun.write(file, archive);
  try {
    // The system tar: present on every Linux and macOS, and far faster than unpacking in JavaScript.
    const tar = Bun.spawnSync(["tar", "--extract", "--gzip", "--file", file, "--directory", staging], { stderr: "pipe" });
    if (tar.exitCode !== 0) throw new Error(`cannot unpack the runtime: ${tar.stderr.toString().trim()}`);
    await Bun.write(join(staging, ".complete"), "");
    try {
      renameSync(staging, dir);
    } catch {
      // Another process unpacked the same runtime first; its copy is identical.
      if (!existsSync(join(dir, ".complete"))) throw new Error(`cannot unpack the runtime into ${dir}`);
    }
  } finally {
    rmSync(file, { force: true });
    rmSync(staging, { recursive: true, force: true });
  }
  return dir;
}
