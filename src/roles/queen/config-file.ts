// $RBEE_HOME/config.toml, read by the queen at start: the default keep-alive and, per model name, what it points at
// and how it is served (slots, context, keep-alive, preload at start, pinned). A bad file is one error naming its line.
//   keep_alive = "5m"
//   [models."llama3:8b"]
//   model = "hf.co/bartowski/Meta-Llama-3-8B-Instruct-GGUF:Q4_K_M"   # a reference, a path, a catalog name
//   slots = 8
//   ctx = 8192
//   keep_alive = "1h"
//   preload = true
//   pinned = true      # never unloaded (by keep-alive, or for memory)
//   max_replicas = 2   # workers of it at once, over every node
//   min_replicas = 1   # workers of it kept loaded at all times (started with the queen, restarted when one goes)
//   split_mode = "row" # where it spans several GPUs (default "layer")
//   nodes = ["localhost", "pc", "mac"]   # split over these nodes' devices (the worker on the queen's machine)
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse, TomlError } from "smol-toml";
import { z } from "zod";
import { withTag } from "../../catalog/aliases";
import { keepAliveMs } from "../../duration";
import { RbeeError } from "../../errors";
import { SPLIT_MODES } from "../../inference/backend";
import { KV_TYPES } from "../../inference/memory-plan";
import { CORS_ORIGIN_FORM, isCorsOrigin } from "../../http/cors";

const Duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return keepAliveMs(v)!;
  } catch (err) {
    ctx.addIssue({ code: "custom", message: err instanceof Error ? err.message.replace(/^keep_alive: /, "") : String(err) });
    return z.NEVER;
  }
});

const ModelEntry = z.strictObject({
  model: z.string().min(1, "must name a model"),
  slots: z.number().int().min(1).max(256).optional(),
  ctx: z.number().int().min(16).optional(),
  keep_alive: Duration.optional(),
  preload: z.boolean().default(false),
  pinned: z.boolean().default(false),
  /** At most this many workers of the model at once, over every node (default: one per GPU, one per CPU-only node). */
  max_replicas: z.number().int().min(1).optional(),
  /** At least this many workers, kept loaded whatever the keep-alive (default 0: the model scales to zero). */
  min_replicas: z.number().int().min(0).max(64).default(0),
  /** Where it is split over several GPUs: by layer (default), row or tensor (llama.cpp's split modes). */
  split_mode: z.enum(SPLIT_MODES).optional(),
  /** Its layers over these nodes' devices (llama.cpp's RPC backend): the worker on the queen's own node, the others lending theirs. */
  nodes: z.array(z.string().min(1)).min(1).max(16).optional(),
  /** The KV cache's type (keys and values), or each apart (default: the queen's --kv-type, else f16). */
  kv_type: z.enum(KV_TYPES).optional(),
  kv_type_k: z.enum(KV_TYPES).optional(),
  kv_type_v: z.enum(KV_TYPES).optional(),
}).refine((m) => m.max_replicas === undefined || m.min_replicas <= m.max_replicas, { message: "min_replicas is more than max_replicas", path: ["min_replicas"] });
export type ModelConfig = z.infer<typeof ModelEntry> & { name: string };

const ConfigFile = z.strictObject({
  keep_alive: Duration.optional(),
  /** Web pages of these origins may call the queen from a browser ("*": any); default: pages on this machine. */
  cors_origins: z.array(z.string().refine(isCorsOrigin, CORS_ORIGIN_FORM)).optional(),
  models: z.record(z.string(), ModelEntry).default({}),
});

export interface QueenConfig {
  keepAliveMs?: number;
  corsOrigins?: string[];
  models: ModelConfig[];
}

/** The config of this home; none there is an empty one. */
export function readQueenConfig(home: string): QueenConfig {
  const path = join(home, "config.toml");
  if (!existsSync(path)) return { models: [] };
  const text = readFileSync(path, "utf8");
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (err) {
    if (err instanceof TomlError) throw new RbeeError("BAD_REQUEST", `${path} line ${err.line}: ${err.message.split("\n")[0]}`);
    throw err;
  }
  const parsed = ConfigFile.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    // An unknown key is reported on its table: point at the key itself.
    const keyPath = [...issue.path.map(String), ...(issue.code === "unrecognized_keys" ? [issue.keys[0]!] : [])];
    const where = lineOf(text, keyPath);
    throw new RbeeError("BAD_REQUEST", `${path}${where ? ` line ${where}` : ""}: ${keyPath.join(".") || "file"}: ${issue.message}`);
  }
  return {
    keepAliveMs: parsed.data.keep_alive,
    corsOrigins: parsed.data.cors_origins,
    models: Object.entries(parsed.data.models).map(([name, entry]) => ({ ...entry, name: withTag(name) })),
  };
}

/** The line of a key (["models", NAME, KEY] or [KEY]), for errors: its table's header, then the key below it. */
function lineOf(text: string, path: string[]): number | undefined {
  const lines = text.split("\n");
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  let header = -1;
  if (path[0] === "models" && path[1] !== undefined) {
    const pattern = new RegExp(`^\\s*\\[\\s*models\\s*\\.\\s*("${escape(path[1])}"|'${escape(path[1])}'|${escape(path[1])})\\s*\\]`);
    header = lines.findIndex((l) => pattern.test(l));
    if (header < 0) return undefined;
    if (path.length === 2) return header + 1;
  }
  const key = path.at(-1)!;
  const keyLine = new RegExp(`^\\s*("${escape(key)}"|${escape(key)})\\s*=`);
  for (let i = header + 1; i < lines.length; i++) {
    if (header >= 0 && /^\s*\[/.test(lines[i]!)) break;
    if (keyLine.test(lines[i]!)) return i + 1;
  }
  // A key that is missing: its table's header.
  return header >= 0 ? header + 1 : undefined;
}
