// llama.cpp reads some of its switches with getenv(), which does not see what Bun puts in process.env: those go into
// the C library's environment, before llama.cpp first reads them.
import { dlopen, FFIType } from "bun:ffi";

/** Sets `name` for native code unless the user set it; returns whether it did. Linux (glibc) only; elsewhere a no-op. */
export function setNativeEnvDefault(name: string, value: string): boolean {
  if (process.env[name] !== undefined) return false;
  try {
    const libc = dlopen("libc.so.6", { setenv: { args: [FFIType.cstring, FFIType.cstring, FFIType.i32], returns: FFIType.i32 } });
    const ok = libc.symbols.setenv(Buffer.from(`${name}\0`), Buffer.from(`${value}\0`), 0) === 0;
    libc.close();
    return ok;
  } catch {
    return false;
  }
}
