// --devices: the GPUs a worker may use reach the C environment that CUDA and Vulkan read (Bun's process.env alone does
// not: oven-sh/bun#42891). Checked in a child process, so that this test process keeps every device.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { parseDevices } from "../../src/inference/visible-devices";

const MODULE = join(import.meta.dir, "..", "..", "src", "inference", "visible-devices.ts");

test("useOnlyDevices sets CUDA's and Vulkan's lists where libc's getenv reads them", () => {
  const script = `
    import { dlopen, FFIType, CString } from "bun:ffi";
    import { useOnlyDevices } from ${JSON.stringify(MODULE)};
    const libc = dlopen("libc.so.6", { getenv: { args: [FFIType.ptr], returns: FFIType.ptr } });
    const read = (name) => { const p = libc.symbols.getenv(Buffer.from(name + "\\0")); return p ? new CString(p).toString() : null; };
    const before = read("CUDA_VISIBLE_DEVICES");
    useOnlyDevices([1, 0]);
    console.log(JSON.stringify([before, read("CUDA_VISIBLE_DEVICES"), read("GGML_VK_VISIBLE_DEVICES")]));`;
  const env = { ...process.env };
  delete env.CUDA_VISIBLE_DEVICES;
  const run = Bun.spawnSync([process.execPath, "-e", script], { env });
  expect(run.stderr.toString()).toBe("");
  expect(JSON.parse(run.stdout.toString())).toEqual([null, "1,0", "1,0"]);
});

test("--devices takes GPU indexes, and says what is wrong otherwise", () => {
  expect(parseDevices("0")).toEqual([0]);
  expect(parseDevices("1, 0")).toEqual([1, 0]);
  for (const bad of ["", "a", "0,,1", "-1", "0,0"]) expect(() => parseDevices(bad)).toThrow(/--devices/);
});
