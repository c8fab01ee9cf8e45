// `rbee worker`: serve one GGUF model over HTTP until told to stop.
import { defineCommand } from "citty";
import { z } from "zod";
import { GPU_CHOICES, SPLIT_MODES } from "../../inference/backend";
import { KV_TYPES, kvTypesOf } from "../../inference/memory-plan";
import { commonServerArgs, parseArgs } from "../../cli-args";
import { checkExposure } from "../../http/exposure";
import { parseDevices, useOnlyDevices } from "../../inference/visible-devices";
import { parseRpcEndpoint } from "../../inference/rpc-probe";
import { promptCacheBytes } from "../../inference/host-prompt-cache";
import { runWorker } from "./run";

const kvType = z.enum(KV_TYPES, { message: `must be one of ${KV_TYPES.join(", ")}` }).optional();

const WorkerArgs = z.object({
  model: z.string().min(1, "--model is required"),
  "model-ref": z.string().optional(),
  port: z.coerce.number().int().min(0).max(65535).default(8001),
  host: z.string().default("127.0.0.1"),
  "insecure-no-auth": z.boolean().default(false),
  slots: z.coerce.number().int().min(1).max(256).default(4),
  ctx: z.coerce.number().int().min(16).optional(),
  gpu: z.enum(GPU_CHOICES).default("auto"),
  threads: z.coerce.number().int().min(1).max(1024).optional(),
  queue: z.coerce.number().int().min(0).default(64),
  "hive-url": z.string().url().optional(),
  "worker-id": z.string().optional(),
  "api-token": z.string().optional(),
  "watch-stdin": z.boolean().default(false),
  "advertise-host": z.string().optional(),
  devices: z.string().optional(),
  "split-mode": z.enum(SPLIT_MODES, { message: `must be one of ${SPLIT_MODES.join(", ")}` }).optional(),
  "tensor-split": z
    .string()
    .transform((v, ctx) => {
      const shares = v.split(",").map(Number);
      if (shares.some((n) => !Number.isFinite(n) || n < 0) || !shares.some((n) => n > 0)) {
        ctx.addIssue({ code: "custom", message: `takes each GPU's share, such as 3,1 (got "${v}")` });
        return z.NEVER;
      }
      return shares;
    })
    .optional(),
  "prompt-cache-mb": z.coerce.number().int().min(0).optional(),
  "kv-type": kvType,
  "kv-type-k": kvType,
  "kv-type-v": kvType,
  rpc: z
    .string()
    .transform((v, ctx) => {
      const servers = v.split(",").map((s) => s.trim());
      try {
        for (const server of servers) parseRpcEndpoint(server);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: err instanceof Error ? err.message : String(err) });
        return z.NEVER;
      }
      return servers;
    })
    .optional(),
});

export default defineCommand({
  meta: { name: "worker", description: "Serve one GGUF model over HTTP (rbee's execute call and OpenAI routes)" },
  args: {
    model: { type: "string", description: "Path to the .gguf file", required: true },
    "model-ref": { type: "string", description: "Name the model is reported under (default: the file name)" },
    ...commonServerArgs("8001"),
    slots: { type: "string", description: "Parallel sequences (default 4)" },
    ctx: { type: "string", description: "Context tokens per slot, exactly (default: the model's training context up to 8192, halved while it does not fit)" },
    gpu: { type: "string", description: "auto | cuda | vulkan | cpu (default auto)" },
    threads: { type: "string", description: "CPU threads (default: chosen from cores and model size)" },
    queue: { type: "string", description: "Requests that may wait for a slot before 503 (default 64)" },
    "hive-url": { type: "string", description: "Hive to call back once ready" },
    "worker-id": { type: "string", description: "Id to report to the hive" },
    "advertise-host": { type: "string", description: "Address the hive and clients reach this worker at (when listening on 0.0.0.0)" },
    "watch-stdin": { type: "boolean", description: "Exit when standard input closes (set by the hive, so no worker outlives it)" },
    devices: { type: "string", description: "Use only these GPUs, by index: 0, or 0,1 to split the model over both (default: every GPU)" },
    "split-mode": { type: "string", description: "How a model over several GPUs is split: layer | row | tensor (default layer)" },
    "tensor-split": { type: "string", description: "Each device's share of the model, such as 3,1 (default: by each one's free memory); with --rpc the servers' devices come first" },
    "prompt-cache-mb": { type: "string", description: "Host memory for prompts kept beyond the slots, in MiB (default: a quarter of the free RAM, at most 8192; 0: none)" },
    "kv-type": { type: "string", description: "The KV cache's type, keys and values: f16 | q8_0 | q4_0 (default f16; q8_0 halves it, q4_0 quarters it)" },
    "kv-type-k": { type: "string", description: "The keys' type alone (f16 | q8_0 | q4_0)" },
    "kv-type-v": { type: "string", description: "The values' type alone (f16 | q8_0 | q4_0; quantized values need flash attention: where the model cannot have it they stay f16)" },
    rpc: { type: "string", description: "Other machines' devices, through their rpc-servers: HOST:PORT[,HOST:PORT…] (every layer goes to them and this machine's GPUs)" },
  },
  run: async ({ args }) => {
    const a = parseArgs(WorkerArgs, args);
    if (a["hive-url"] && !a["worker-id"]) throw new Error("--hive-url needs --worker-id");
    const devices = a.devices === undefined ? undefined : parseDevices(a.devices);
    if (devices) useOnlyDevices(devices);
    checkExposure("worker", { host: a.host, token: a["api-token"] ?? process.env.RBEE_API_TOKEN, insecureNoAuth: a["insecure-no-auth"] });
    await runWorker({
      modelPath: a.model,
      modelRef: a["model-ref"] ?? a.model.split("/").pop()!,
      gpu: a.gpu,
      slots: a.slots,
      ctx: a.ctx,
      threads: a.threads,
      queueLimit: a.queue,
      host: a.host,
      port: a.port,
      apiToken: a["api-token"] ?? process.env.RBEE_API_TOKEN,
      hive: a["hive-url"] ? { url: a["hive-url"], workerId: a["worker-id"]! } : undefined,
      watchStdin: a["watch-stdin"],
      advertiseHost: a["advertise-host"],
      devices,
      splitMode: a["split-mode"],
      tensorSplit: a["tensor-split"],
      rpcServers: a.rpc,
      kv: kvTypesOf({ both: a["kv-type"], k: a["kv-type-k"], v: a["kv-type-v"] }),
      promptCacheBytes: promptCacheBytes(a["prompt-cache-mb"]),
    });
  },
});
