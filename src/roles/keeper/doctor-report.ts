// `rbee doctor`'s look at this machine: platform, the engine and each backend's probe, GPUs and memory, disk under rbee's
// home, the default ports; ready when some backend runs a model and the home can hold models.
import { accessSync, constants, mkdirSync, statfsSync } from "node:fs";
import { hostname, release, totalmem, type as osType } from "node:os";
import { DEFAULT_QUEEN_PORT, hivePort, rbeeHome } from "../../config";
import { autoOrder, probeBackendCached } from "../../inference/backend-probe";
import { availableRamBytes, probeDevices } from "../../inference/devices";
import { usableCores } from "../../inference/threads";
import { formatBytes } from "../../format";
import { thisPlatform } from "../../platforms";
import { isCompiled } from "../../self";
import { VERSION } from "../../version";
import type { DoctorReport } from "../../wire/doctor";

/** Less free disk than this under rbee's home is worth a warning: a small model and its download need about that. */
const LOW_DISK_BYTES = 4 * 2 ** 30;
const PORT_ANSWER_MS = 1_000;

export async function examineThisMachine(homeFlag?: string): Promise<DoctorReport> {
  const home = rbeeHome(homeFlag);
  const backends = [];
  for (const backend of [...autoOrder(process.platform), "cpu" as const]) {
    const probe = await probeBackendCached(backend);
    backends.push(probe.ok ? { backend, ok: true, device: probe.device } : { backend, ok: false, reason: probe.reason });
  }
  const working = backends.find((b) => b.ok);
  // The hive's own probe: the backend `auto` comes to (the first that works) and its engine.
  const devices = working ? await probeDevices() : { gpus: [], ram_total_bytes: totalmem(), ram_free_bytes: availableRamBytes(), cpu_cores: usableCores(), engine: undefined };
  const engine = devices.engine ?? null;
  const disk = homeDisk(home);
  const ports = await Promise.all([portState(DEFAULT_QUEEN_PORT, "queen"), portState(hivePort(), "hive")]);
  const warnings = [
    ...ports.filter((p) => p.state === "taken").map((p) => `port ${p.port} (the ${p.role}'s default) is taken by another program: start the ${p.role} with --port`),
    ...(disk.freeBytes !== null && disk.freeBytes < LOW_DISK_BYTES ? [`only ${formatBytes(disk.freeBytes)} free under ${home}`] : []),
    ...(engine?.features_off.length ? [`the engine lacks ${engine.features_off.join(", ")}: those paths are off (slower, or refused)`] : []),
  ];
  const stop = !working ? "no backend can run a model here (see the backends above)" : !disk.writable ? `rbee's home ${home} cannot be written` : undefined;
  return {
    node: hostname(),
    platform: thisPlatform(),
    os: `${osType()} ${release()}`,
    rbee_version: VERSION,
    compiled: isCompiled(),
    engine,
    backends,
    gpus: devices.gpus.map(({ index, name, vram_total_bytes, vram_free_bytes, unified }) => ({ index, name, vram_total_bytes, vram_free_bytes, ...(unified && { unified }) })),
    ram_total_bytes: devices.ram_total_bytes,
    ram_free_bytes: devices.ram_free_bytes,
    cpu_cores: devices.cpu_cores,
    home,
    disk_free_bytes: disk.freeBytes,
    home_writable: disk.writable,
    ports,
    ready: stop === undefined,
    reason: stop ?? `models run here on ${working!.backend}${working!.device && working!.device !== "cpu" ? ` (${working!.device})` : ""}`,
    warnings,
  };
}

/** Free bytes where rbee's home is (made if missing), and whether it can be written. */
function homeDisk(home: string): { freeBytes: number | null; writable: boolean } {
  try {
    mkdirSync(home, { recursive: true });
    accessSync(home, constants.W_OK);
    const fs = statfsSync(home);
    return { freeBytes: fs.bavail * fs.bsize, writable: true };
  } catch {
    return { freeBytes: null, writable: false };
  }
}

/** Whether the port is free on loopback, held by an rbee (its /v1/health says which role), or by another program. */
async function portState(port: number, role: "queen" | "hive"): Promise<DoctorReport["ports"][number]> {
  try {
    const server = Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } });
    server.stop(true);
    return { port, role, state: "free" };
  } catch {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/v1/health`, { signal: AbortSignal.timeout(PORT_ANSWER_MS) });
      const body = (await res.json()) as { ok?: boolean; role?: string };
      if (body.ok && body.role) return { port, role, state: "rbee", answered_role: body.role };
    } catch {
      // not rbee
    }
    return { port, role, state: "taken" };
  }
}
