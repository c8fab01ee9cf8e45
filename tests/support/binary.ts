// The compiled binaries end-to-end tests run: dist/rbee, rebuilt when any source file is newer than it, and one on an
// older engine (node-llama-cpp 3.21's stock addon, laid out as the macOS binary's Metal engine is).
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "./paths";

export const BINARY = join(REPO, "dist", "rbee");
/** The newest engine the registry has for Metal, and so the one the darwin-arm64 binary carries (scripts/build.ts). */
export const OLDER_ENGINE = "3.21.1";
export const OLDER_ENGINE_BINARY = join(REPO, "dist", `rbee-linux-x64-engine-${OLDER_ENGINE}`);

function staleSince(binary: string): boolean {
  const built = existsSync(binary) ? statSync(binary).mtimeMs : 0;
  return !built || [...new Bun.Glob("src/**/*.ts").scanSync({ cwd: REPO }), "scripts/build.ts"].some((f) => statSync(join(REPO, f)).mtimeMs > built);
}

function build(args: string[]): void {
  const run = Bun.spawnSync([process.execPath, "scripts/build.ts", ...args], { cwd: REPO, stdout: "inherit", stderr: "inherit" });
  if (run.exitCode !== 0) throw new Error(`bun scripts/build.ts ${args.join(" ")} failed`);
}

export function ensureBinary(): string {
  if (staleSince(BINARY)) build([]);
  return BINARY;
}

export function ensureOlderEngineBinary(): string {
  if (staleSince(OLDER_ENGINE_BINARY)) build(["--target", "linux-x64", "--no-vulkan", "--engine", OLDER_ENGINE]);
  return OLDER_ENGINE_BINARY;
}
