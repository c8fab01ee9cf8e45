// What `rbee doctor` finds on a machine, as JSON (--json): the shape a node's doctor sends back over SSH.
import { z } from "zod";
import { EngineInfo } from "./worker";

export const BackendProbe = z.object({ backend: z.string(), ok: z.boolean(), device: z.string().optional(), reason: z.string().optional() });

export const PortState = z.object({
  port: z.number(),
  /** Whose default port it is. */
  role: z.enum(["queen", "hive"]),
  /** free; rbee: an rbee of that role answers there; taken: another program holds it. */
  state: z.enum(["free", "rbee", "taken"]),
  answered_role: z.string().optional(),
});

export const DoctorReport = z.object({
  node: z.string(),
  platform: z.string(),
  os: z.string(),
  rbee_version: z.string(),
  compiled: z.boolean(),
  /** The engine on the backend a worker would take (null: no backend works). */
  engine: EngineInfo.nullable(),
  backends: z.array(BackendProbe),
  gpus: z.array(z.object({ index: z.number(), name: z.string(), vram_total_bytes: z.number(), vram_free_bytes: z.number(), unified: z.boolean().optional() })),
  ram_total_bytes: z.number(),
  ram_free_bytes: z.number(),
  cpu_cores: z.number(),
  home: z.string(),
  /** Bytes free on the file system that holds rbee's home (null: it cannot be created). */
  disk_free_bytes: z.number().nullable(),
  home_writable: z.boolean(),
  ports: z.array(PortState),
  ready: z.boolean(),
  /** Why it is ready (which backend models run on), or what stops it. */
  reason: z.string(),
  /** What works but deserves a look (a port taken, little disk). */
  warnings: z.array(z.string()),
});
export type DoctorReport = z.infer<typeof DoctorReport>;
