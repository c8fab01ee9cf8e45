// The compiled dist/rbee that end-to-end tests run, rebuilt when any source file is newer than it.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "./paths";

export const BINARY = join(REPO, "dist", "rbee");

export function ensureBinary(): string {
  const built = existsSync(BINARY) ? statSync(BINARY).mtimeMs : 0;
  const stale = !built || [...new Bun.Glob("src/**/*.ts").scanSync({ cwd: REPO })].some((f) => statSync(join(REPO, f)).mtimeMs > built);
  if (stale) {
    const build = Bun.spawnSync([process.execPath, "scripts/build.ts"], { cwd: REPO, stdout: "inherit", stderr: "inherit" });
    if (build.exitCode !== 0) throw new Error("bun run build failed");
  }
  return BINARY;
}
