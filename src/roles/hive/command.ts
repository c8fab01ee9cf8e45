// `rbee hive`: the pool manager daemon of one machine, and the commands that drive it (or its catalog directly).
import { defineCommand } from "citty";
import { z } from "zod";
import { commonServerArgs, parseArgs } from "../../cli-args";
import { checkExposure } from "../../http/exposure";
import { apiToken, DEFAULT_HIVE_PORT, hivePort, rbeeHome } from "../../config";
import { RbeeError } from "../../errors";
import { watchStdin } from "../../stdin-watch";
import { runHive } from "./run";
import { modelsCommand, workerCommand } from "./cli";

const HiveArgs = z.object({
  port: z.coerce.number().int().min(0).max(65535).optional(),
  host: z.string().default("127.0.0.1"),
  "insecure-no-auth": z.boolean().default(false),
  home: z.string().optional(),
  "api-token": z.string().optional(),
  "queen-url": z.string().url().optional(),
  "health-interval": z.coerce.number().positive().default(30),
  "idle-timeout": z.coerce.number().positive().default(300),
  "ready-timeout": z.coerce.number().positive().default(300),
  "node-name": z.string().default("localhost"),
  "advertise-host": z.string().optional(),
  "watch-stdin": z.boolean().default(false),
  "api-token-stdin": z.boolean().default(false),
});

export const hiveConnectionArgs = {
  ...commonServerArgs(String(DEFAULT_HIVE_PORT)),
  home: { type: "string", description: "rbee's home: models.db and models/ (default $RBEE_HOME or ~/.rbee)" },
} as const;

export default defineCommand({
  meta: { name: "hive", description: "Manage the models and workers of this machine (daemon on :9200)" },
  args: {
    ...hiveConnectionArgs,
    "queen-url": { type: "string", description: "Queen to announce this hive to" },
    "health-interval": { type: "string", description: "Seconds between worker health checks (default 30)" },
    "idle-timeout": { type: "string", description: "Seconds without requests before a worker is stopped (default 300)" },
    "ready-timeout": { type: "string", description: "Seconds a new worker may take to load (default 300)" },
    "node-name": { type: "string", description: "Name this hive reports to the queen (default localhost)" },
    "advertise-host": { type: "string", description: "Address others reach this machine at, when listening on 0.0.0.0" },
    "watch-stdin": { type: "boolean", description: "Exit when standard input closes (set by a queen that starts this hive)" },
    "api-token-stdin": { type: "boolean", description: "Read the bearer token from the first line of standard input (set by a queen over SSH)" },
  },
  subCommands: { models: modelsCommand, worker: workerCommand },
  run: async ({ args }) => {
    if (args._.length) return; // a subcommand ran
    const a = parseArgs(HiveArgs, args);
    const stdin = a["watch-stdin"] || a["api-token-stdin"] ? watchStdin() : undefined;
    const token = a["api-token-stdin"] ? await stdin!.firstLine : apiToken(a["api-token"]);
    if (a["api-token-stdin"] && !token) throw new RbeeError("BAD_REQUEST", "--api-token-stdin: no token line on standard input");
    checkExposure("hive", { host: a.host, token, insecureNoAuth: a["insecure-no-auth"] });
    await runHive({
      home: rbeeHome(a.home),
      host: a.host,
      port: hivePort(a.port),
      apiToken: token,
      healthIntervalMs: a["health-interval"] * 1000,
      idleTimeoutMs: a["idle-timeout"] * 1000,
      readyTimeoutMs: a["ready-timeout"] * 1000,
      queenUrl: a["queen-url"],
      nodeName: a["node-name"],
      advertiseHost: a["advertise-host"],
      stdin: a["watch-stdin"] ? stdin : undefined,
      insecureNoAuth: a["insecure-no-auth"],
    });
  },
});
