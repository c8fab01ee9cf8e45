// How this program starts another copy of itself: the compiled binary alone, or bun with the TypeScript entry.
import { join } from "node:path";

export function isCompiled(): boolean {
  return Bun.main.startsWith("/$bunfs/") || Bun.main.startsWith("B:/~BUN/");
}

export function selfCommand(): string[] {
  return isCompiled() ? [process.execPath] : [process.execPath, join(import.meta.dir, "cli.ts")];
}
