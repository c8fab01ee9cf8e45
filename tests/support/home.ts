// A fresh RBEE_HOME per test, removed afterwards.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const made: string[] = [];

export function tempHome(prefix = "rbee-home-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

export function removeTempHomes(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}
