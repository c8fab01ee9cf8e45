// Paths the tests share: the repository, the real test model, the CLI entry.
import { join } from "node:path";

export const REPO = join(import.meta.dir, "..", "..");
export const STORIES_MODEL = join(REPO, "..", "shared", "models", "stories260K.gguf");
export const CLI = join(REPO, "src", "cli.ts");
