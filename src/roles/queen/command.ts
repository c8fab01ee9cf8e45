// `rbee queen`: the orchestrator daemon every client talks to.
import { defineCommand } from "citty";
import { z } from "zod";
import { commonServerArgs, parseArgs } from "../../cli-args";
import { checkExposure } from "../../http/exposure";
import { apiToken, DEFAULT_QUEEN_PORT, rbeeHome } from "../../config";
import { createSshHiveLauncher } from "../../ssh/hive-launcher";
import { keepAliveMs } from "../../duration";
import { parseCorsOrigins } from "../../http/cors";
import { ApiKeys } from "../../auth/api-keys";
import { KV_TYPES } from "../../inference/memory-plan";
import { runQueen } from "./run";

const QueenArgs = z.object({
  port: z.coerce.number().int().min(0).max(65535).default(DEFAULT_QUEEN_PORT),
  host: z.string().default("127.0.0.1"),
  "insecure-no-auth": z.boolean().default(false),
  home: z.string().optional(),
  "api-token": z.string().optional(),
  ephemeral: z.boolean().default(false),
  "ephemeral-idle": z.coerce.number().positive().default(5),
  queue: z.coerce.number().int().min(0).default(64),
  "queue-timeout": z.coerce.number().positive().default(300),
  "worker-slots": z.coerce.number().int().min(1).max(256).default(4),
  "hive-check-interval": z.coerce.number().positive().default(5),
  "watch-stdin": z.boolean().default(false),
  "url-file": z.string().optional(),
  "keep-alive": z.string().optional(),
  "allow-cpu": z.boolean().default(false),
  "cors-origins": z.string().optional(),
  /** Falls back to RBEE_KV_CACHE_TYPE (as Ollama's OLLAMA_KV_CACHE_TYPE). */
  "kv-type": z.enum(KV_TYPES, { message: `must be one of ${KV_TYPES.join(", ")} (from --kv-type or RBEE_KV_CACHE_TYPE)` }).optional(),
});

export default defineCommand({
  meta: { name: "queen", description: "Orchestrator: one API in front of every machine (daemon on :8080)" },
  args: {
    ...commonServerArgs(String(DEFAULT_QUEEN_PORT)),
    home: { type: "string", description: "rbee's home: queen.db, and the local hive's models (default $RBEE_HOME or ~/.rbee)" },
    ephemeral: { type: "boolean", description: "Exit (with hives and workers) once idle" },
    "ephemeral-idle": { type: "string", description: "Seconds idle before an ephemeral queen exits (default 5)" },
    queue: { type: "string", description: "Requests that may wait per model before 429 (default 64)" },
    "queue-timeout": { type: "string", description: "Seconds a request may wait for a worker (default 300)" },
    "worker-slots": { type: "string", description: "Slots of the workers the queen spawns (default 4)" },
    "hive-check-interval": { type: "string", description: "Seconds between hive health checks (default 5)" },
    "watch-stdin": { type: "boolean", description: "Exit when standard input closes (set by `rbee infer`)" },
    "url-file": { type: "string", description: "Write the queen's URL to this file once it listens (for `rbee infer`)" },
    "allow-cpu": { type: "boolean", description: "Let workers run on the CPU of nodes that have GPUs when no GPU has room (nodes without GPUs always may)" },
    "keep-alive": { type: "string", description: "How long a model stays loaded after its last request: 5m, 1h, 300 (seconds), -1 always (default: config.toml's keep_alive, else 5m)" },
    "cors-origins": { type: "string", description: "Web pages of these origins may call the queen from a browser: ORIGIN[,ORIGIN…] or * (default: config.toml's cors_origins, else pages on this machine)" },
    "kv-type": { type: "string", description: "The KV cache's type of the workers it starts: f16 | q8_0 | q4_0 (default $RBEE_KV_CACHE_TYPE, else f16; config.toml's kv_type per model wins)" },
  },
  run: async ({ args }) => {
    const a = parseArgs(QueenArgs, { ...args, "kv-type": args["kv-type"] ?? (process.env.RBEE_KV_CACHE_TYPE || undefined) });
    const given = apiToken(a["api-token"]);
    // Client keys (rbee keys) guard it as a token does.
    const keys = new ApiKeys(rbeeHome(a.home));
    const hasKeys = keys.anyActive();
    keys.close();
    checkExposure("queen", { host: a.host, token: given ?? (hasKeys ? "keys" : undefined), insecureNoAuth: a["insecure-no-auth"] });
    // The cluster secret between the queen, its hives and their workers: the token given, else (with client keys) one
    // made for this run, since keys are for clients only.
    const token = given ?? (hasKeys ? `rbee-cluster-${Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString("base64url")}` : undefined);
    await runQueen({
      home: rbeeHome(a.home),
      host: a.host,
      port: a.port,
      apiToken: token,
      clientsNeedCredential: given !== undefined,
      ephemeral: a.ephemeral,
      ephemeralIdleMs: a["ephemeral-idle"] * 1000,
      queueLimit: a.queue,
      queueTimeoutMs: a["queue-timeout"] * 1000,
      workerSlots: a["worker-slots"],
      hiveCheckIntervalMs: a["hive-check-interval"] * 1000,
      watchStdin: a["watch-stdin"],
      urlFile: a["url-file"],
      keepAliveMs: keepAliveMs(a["keep-alive"]),
      allowCpu: a["allow-cpu"],
      kvType: a["kv-type"],
      corsOrigins: a["cors-origins"] === undefined ? undefined : parseCorsOrigins(a["cors-origins"].split(",")),
      remote: createSshHiveLauncher(rbeeHome(a.home), token, a["insecure-no-auth"]),
    });
  },
});
