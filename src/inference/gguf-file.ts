// Checks that a path names a readable GGUF file before anything tries to load it, so bad input fails with a clear message.
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { RbeeError } from "../errors";
import { loadNodeLlamaCpp } from "./runtime";

const GGUF_MAGIC = "GGUF";

export async function checkGgufFile(path: string): Promise<{ bytes: number; architecture?: string }> {
  let bytes: number;
  try {
    const stat = statSync(path);
    if (!stat.isFile()) throw new RbeeError("INVALID_MODEL", `${path} is not a file`);
    bytes = stat.size;
  } catch (err) {
    if (err instanceof RbeeError) throw err;
    throw new RbeeError("MODEL_NOT_FOUND", `model file not found: ${path}`);
  }
  if (readMagic(path) !== GGUF_MAGIC) throw new RbeeError("INVALID_MODEL", `${path} is not a GGUF file (bad magic)`);
  const { readGgufFileInfo } = await loadNodeLlamaCpp();
  try {
    const info = await readGgufFileInfo(path, { readTensorInfo: true, logWarnings: false });
    const architecture = (info.metadata as { general?: { architecture?: string } }).general?.architecture;
    return { bytes, architecture };
  } catch (err) {
    throw new RbeeError("INVALID_MODEL", `${path} is not a readable GGUF file (${err instanceof Error ? err.message : err})`);
  }
}

function readMagic(path: string): string {
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.alloc(4);
    const n = readSync(fd, buf, 0, 4, 0);
    return buf.subarray(0, n).toString("latin1");
  } finally {
    closeSync(fd);
  }
}
