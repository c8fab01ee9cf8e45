// llama.cpp reads its switches (GGML_CUDA_GRAPH_OPT) with getenv(), which does not see Bun's process.env: the worker
// sets them in the C library's environment, and never over what the user set.
import { expect, test } from "bun:test";
import { CString, dlopen, FFIType } from "bun:ffi";
import { wantsCudaGraphOpt } from "../../src/inference/backend";
import { setNativeEnvDefault } from "../../src/inference/native-env";

const libc = dlopen("libc.so.6", { getenv: { args: [FFIType.cstring], returns: FFIType.ptr } });
const nativeGetenv = (name: string) => {
  const value = libc.symbols.getenv(Buffer.from(`${name}\0`));
  return value ? new CString(value).toString() : undefined;
};

test("a default set for native code is what getenv() reads there", () => {
  const name = `RBEE_TEST_NATIVE_${process.pid}`;
  process.env[`${name}_BUN`] = "1";
  expect(nativeGetenv(`${name}_BUN`)).toBeUndefined(); // why the helper exists
  expect(setNativeEnvDefault(name, "1")).toBe(true);
  expect(nativeGetenv(name)).toBe("1");
});

test("the user's own value wins", () => {
  expect(process.env.PATH).toBeDefined();
  expect(setNativeEnvDefault("PATH", "/nowhere")).toBe(false);
  expect(nativeGetenv("PATH")).toBe(process.env.PATH);
});

test("the CUDA graph option is wanted only where its parallel part ends before the KV cache writes", () => {
  // One KV buffer per slot, several slots: the layout measured to give the same greedy text every run.
  expect(wantsCudaGraphOpt({ slots: 4, unifiedKv: false })).toBe(true);
  expect(wantsCudaGraphOpt({ slots: 32, unifiedKv: false })).toBe(true);
  // One KV buffer for everything: greedy text changed from run to run with it on the H100.
  expect(wantsCudaGraphOpt({ slots: 1, unifiedKv: false })).toBe(false);
  expect(wantsCudaGraphOpt({ slots: 32, unifiedKv: true })).toBe(false);
});
