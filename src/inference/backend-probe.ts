// Proves a compute backend works before a model is loaded on it: a child process loads a tiny synthetic model on that
// backend and decodes a few tokens. A backend that crashes (the npm CUDA build on a too-old driver dies at its first
// kernel with "the provided PTX was compiled with an unsupported toolchain") takes only the child down.
// Results are remembered per runtime and driver in the cache folder (a failure only for a while), so only the first
// start pays for the probe; a proven backend then loads without node-llama-cpp's own test of its binary (createLlama).
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RbeeError } from "../errors";
import { logger } from "../log";
import { selfCommand } from "../self";
import type { Backend, GpuChoice } from "./backend";
import { loadNodeLlamaCpp, runtimeCacheRoot, withoutBinaryTest } from "./runtime";
import { writeSyntheticGguf } from "./synth-gguf";

export type ProbeResult = { ok: true; backend: Backend; device: string } | { ok: false; backend: Backend; reason: string };

const PROBE_TIMEOUT_MS = 120_000;
const PROBE_COMMAND = "__probe-backend";
const PROBE_TOKENS = 4;
/**
 * A remembered failure is believed this long, then the backend is probed again: a passing failure (the GPU's memory
 * taken by another program, a child killed) must not keep a GPU unused until the driver changes.
 */
export const FAILED_PROBE_KEPT_MS = 10 * 60_000;
/** Device names of Vulkan drivers that run on the CPU. */
const SOFTWARE_RENDERER = /llvmpipe|lavapipe|softpipe|swiftshader/i;
const log = logger("llama");

/** The GPU backends `auto` tries, in order, before the CPU: Metal on macOS (node-llama-cpp's), else CUDA then Vulkan. */
export function autoOrder(platform: string): Backend[] {
  return platform === "darwin" ? ["metal"] : ["cuda", "vulkan"];
}

/** Picks the backend to load a model on: the one asked for, or for `auto` the first of autoOrder's, then the CPU. */
export async function chooseBackend(choice: GpuChoice): Promise<Backend> {
  const gpus = choice === "auto" ? autoOrder(process.platform) : choice === "cpu" ? [] : [choice];
  for (const backend of gpus) {
    const result = await probeBackendCached(backend);
    if (result.ok) return backend;
    if (choice !== "auto") throw new RbeeError("BACKEND_UNAVAILABLE", `--gpu ${backend} does not work here: ${result.reason}`);
    // On a machine without a GPU an absent backend is no news; with a GPU, say why it is not used.
    if (gpuPresent()) log.warn(`${backend} does not work here (${result.reason}); trying the next backend`);
    else log.debug(`${backend} is not available here (${result.reason})`);
  }
  const cpu = await probeBackendCached("cpu");
  if (cpu.ok) return "cpu";
  throw new RbeeError("BACKEND_UNAVAILABLE", `the CPU backend does not work here: ${cpu.reason}`);
}

function gpuPresent(): boolean {
  if (process.platform === "darwin") return process.arch === "arm64";
  return existsSync("/proc/driver/nvidia/version") || existsSync("/dev/dri") || existsSync("/dev/kfd");
}

export async function probeBackendCached(backend: Backend): Promise<ProbeResult> {
  const file = join(runtimeCacheRoot(), "probes", `${backend}-${await probeKey()}.json`);
  if (existsSync(file)) {
    try {
      const remembered = JSON.parse(readFileSync(file, "utf8")) as ProbeResult;
      if (remembered.ok || Date.now() - statSync(file).mtimeMs < FAILED_PROBE_KEPT_MS) return remembered;
    } catch {
      // probe again
    }
  }
  const result = await probeBackend(backend);
  // A failed CPU probe is not remembered: with no backend after it, a passing failure (memory, a killed child) would
  // otherwise stop every later start.
  if (result.ok || backend !== "cpu") {
    mkdirSync(join(file, ".."), { recursive: true });
    writeFileSync(file, JSON.stringify(result));
  }
  return result;
}

/** What a probe's answer depends on: the llama.cpp build and the GPU driver. */
async function probeKey(): Promise<string> {
  const { getModuleVersion } = await loadNodeLlamaCpp();
  const driver = ["/proc/driver/nvidia/version", "/sys/module/nvidia/version"].map((f) => (existsSync(f) ? readFileSync(f, "utf8") : "")).join("|");
  return createHash("sha256").update(`${await getModuleVersion()}|${process.execPath}|${Bun.main}|${driver}|${process.env.CUDA_VISIBLE_DEVICES ?? ""}`).digest("hex").slice(0, 16);
}

export async function probeBackend(backend: Backend): Promise<ProbeResult> {
  const proc = Bun.spawn([...selfCommand(), PROBE_COMMAND, backend], { stdout: "pipe", stderr: "pipe", stdin: "ignore", env: { ...process.env, RBEE_LOG_FORMAT: "json" } });
  const timer = setTimeout(() => proc.kill("SIGKILL"), PROBE_TIMEOUT_MS);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  const answer = stdout.split("\n").find((l) => l.startsWith("{"));
  if (code === 0 && answer) return { ok: true, backend, device: JSON.parse(answer).device };
  return { ok: false, backend, reason: failureReason(stderr, code, proc.signalCode === null ? null : String(proc.signalCode)) };
}

function failureReason(stderr: string, code: number | null, signal: string | null): string {
  const lines = stderr.split("\n").map((l) => l.trim()).filter(Boolean);
  const known = lines.find((l) => /PTX|unsupported toolchain|CUDA error|no CUDA|vk|Vulkan|NoBinaryFound|not supported|error/i.test(l) && !l.startsWith("{"));
  const last = known ?? lines.filter((l) => !l.startsWith("{")).at(-1) ?? "";
  const reason = last.replace(/^rbee: /, "").replace(/^NoBinaryFoundError$/, "NoBinaryFoundError: no usable build of it here");
  return `${reason.slice(0, 300) || "no output"}${signal ? ` (killed by ${signal})` : code ? ` (exit code ${code})` : ""}`;
}

/** The child's side: `rbee __probe-backend cuda|vulkan|cpu`. */
export async function runProbe(backend: string): Promise<void> {
  const { getLlama, LlamaLogLevel } = await loadNodeLlamaCpp();
  const gpu = backend === "cpu" ? false : (backend as "cuda" | "vulkan" | "metal");
  // This child is the test: node-llama-cpp's own (another child) would only repeat it.
  const llama = await withoutBinaryTest(() => getLlama({ gpu, build: "never", usePrebuiltBinaries: true, progressLogs: false, skipDownload: true, logLevel: LlamaLogLevel.error }));
  if (llama.gpu !== gpu) throw new Error(`${backend} is not available (node-llama-cpp chose ${llama.gpu || "cpu"})`);
  // Mesa's lavapipe (a Vulkan driver running on the CPU) works but is slower than llama.cpp's CPU backend; node-llama-cpp
  // lists no device and no VRAM for it.
  const devices = gpu ? (await llama.getGpuDeviceNames()).filter((name) => !SOFTWARE_RENDERER.test(name)) : ["cpu"];
  if (gpu && (devices.length === 0 || (await llama.getVramState()).total === 0))
    throw new Error(`${backend} has no GPU device here, only software or none (the CPU backend is faster)`);
  const dir = mkdtempSync(join(tmpdir(), "rbee-probe-"));
  try {
    const modelPath = join(dir, "probe.gguf");
    writeSyntheticGguf(modelPath, "probe");
    const model = await llama.loadModel({ modelPath, gpuLayers: gpu ? "max" : 0 });
    const context = await model.createContext({ contextSize: 64, sequences: 1 });
    const sequence = context.getSequence();
    let n = 0;
    for await (const _ of sequence.evaluate([1, 300, 301, 302] as never[], { temperature: 0 })) if (++n >= PROBE_TOKENS) break;
    const device = devices[0]!;
    await context.dispose();
    await model.dispose();
    console.log(JSON.stringify({ backend, device }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}


