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
  let info: Awaited<ReturnType<typeof readGgufFileInfo>>;
  try {
    info = await readGgufFileInfo(path, { readTensorInfo: true, logWarnings: false });
  } catch (err) {
    throw new RbeeError("INVALID_MODEL", `${path} is not a readable GGUF file (${err instanceof Error ? err.message : err})`);
  }
  const architecture = (info.metadata as { general?: { architecture?: string } } | undefined)?.general?.architecture;
  const tensors = info.tensorInfo ?? [];
  if (!architecture || tensors.length !== Number(info.tensorCount))
    throw new RbeeError("INVALID_MODEL", `${path} is not a readable GGUF file (its header is incomplete: truncated?)`);
  const lastTensorStart = tensors.reduce((max, t) => Math.max(max, Number(t.fileOffset)), 0);
  if (lastTensorStart >= bytes) throw new RbeeError("INVALID_MODEL", `${path} is truncated: its tensor data runs past the end of the file`);
  return { bytes, architecture };
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
