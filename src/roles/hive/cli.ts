// `rbee hive models …` and `rbee hive worker …`: through the local hive daemon when one answers; the model commands
// fall back to the catalog itself when none runs.
import { defineCommand } from "citty";
import { z } from "zod";
import { KV_TYPES, kvTypesOf } from "../../inference/memory-plan";
import { GPU_CHOICES } from "../../inference/backend";
import { parseArgs } from "../../cli-args";
import { Catalog } from "../../catalog/catalog";
import { HiveClient } from "../../clients/hive-client";
import { apiToken, hivePort, rbeeHome } from "../../config";
import { RbeeError } from "../../errors";
import { formatBytes } from "../../format";
import { byteProgressReporter } from "../../progress";
import { formatTable } from "../../table";
import { type ModelJson, modelJson } from "../../wire/hive";
import { Downloads, hubOptionsFromEnv } from "./downloads";

const ConnectionArgs = z.object({
  port: z.coerce.number().int().min(1).max(65535).optional(),
  host: z.string().default("127.0.0.1"),
  home: z.string().optional(),
  "api-token": z.string().optional(),
  json: z.boolean().default(false),
});
type Connection = z.infer<typeof ConnectionArgs>;

const connectionArgs = {
  port: { type: "string", description: "Port of the local hive (default 9200)" },
  host: { type: "string", description: "Address of the local hive (default 127.0.0.1)" },
  home: { type: "string", description: "rbee's home when no hive runs (default $RBEE_HOME or ~/.rbee)" },
  "api-token": { type: "string", description: "Bearer token of the hive" },
  json: { type: "boolean", description: "Print JSON" },
} as const;

function client(c: Connection): HiveClient {
  return new HiveClient(`http://${c.host}:${hivePort(c.port)}`, apiToken(c["api-token"]));
}

async function runningHive(c: Connection): Promise<HiveClient | undefined> {
  const hive = client(c);
  return (await hive.isUp()) ? hive : undefined;
}

async function requireHive(c: Connection): Promise<HiveClient> {
  const hive = await runningHive(c);
  if (!hive) throw new RbeeError("UPSTREAM_UNREACHABLE", `no hive answers at ${client(c).baseUrl}; start one with \`rbee hive\``);
  return hive;
}

/** Runs against the daemon if it is up, else against the catalog in --home. */
async function withCatalog<T>(c: Connection, viaHive: (hive: HiveClient) => Promise<T>, direct: (catalog: Catalog) => Promise<T>): Promise<T> {
  const hive = await runningHive(c);
  if (hive) return viaHive(hive);
  const catalog = new Catalog(rbeeHome(c.home));
  try {
    return await direct(catalog);
  } finally {
    catalog.close();
  }
}

function printModels(models: ModelJson[], json: boolean): void {
  if (json) return void console.log(JSON.stringify(models, null, 2));
  if (!models.length) return void console.log("no models");
  console.log(formatTable(["ID", "NAME", "REF", "SIZE", "QUANT", "STATUS"], models.map((m) => [m.id, m.name, m.ref, formatBytes(m.size_bytes), m.quantization, m.status])));
}

const download = defineCommand({
  meta: { name: "download", description: "Download a model (hf:ORG/REPO/FILE.gguf[@REV]) or add a local .gguf file" },
  args: { ref: { type: "positional", description: "Model reference", required: true }, ...connectionArgs },
  run: async ({ args }) => {
    const c = parseArgs(ConnectionArgs, args);
    const ref = String(args.ref);
    const progress = byteProgressReporter(`downloading ${ref}`);
    try {
      const model = await withCatalog(
        c,
        (hive) => hive.download(ref, (p) => progress.update(p)),
        async (catalog) => {
          const d = await new Downloads(catalog, hubOptionsFromEnv()).startNamed(ref);
          d.subscribe((p) => progress.update(p));
          return modelJson(await d.done);
        },
      );
      progress.stop();
      if (c.json) console.log(JSON.stringify(model, null, 2));
      else console.log(`${model.ref}: ${formatBytes(model.size_bytes)}, sha256 ${model.sha256} (${model.id})`);
    } finally {
      progress.stop();
    }
  },
});

const list = defineCommand({
  meta: { name: "list", description: "List the models in the catalog" },
  args: connectionArgs,
  run: async ({ args }) => {
    const c = parseArgs(ConnectionArgs, args);
    printModels(await withCatalog(c, (hive) => hive.models(), async (catalog) => catalog.list().map(modelJson)), c.json);
  },
});

const rm = defineCommand({
  meta: { name: "rm", description: "Remove a model from the catalog (and its downloaded file)" },
  args: { ref: { type: "positional", description: "Model id, reference or name", required: true }, ...connectionArgs },
  run: async ({ args }) => {
    const c = parseArgs(ConnectionArgs, args);
    const removed = await withCatalog(c, (hive) => hive.removeModel(String(args.ref)), async (catalog) => modelJson(catalog.remove(String(args.ref))));
    console.log(`removed ${removed.ref}`);
  },
});

export const modelsCommand = defineCommand({ meta: { name: "models", description: "The model catalog" }, subCommands: { download, list, rm } });

const SpawnArgs = ConnectionArgs.extend({
  model: z.string().min(1, "--model is required"),
  gpu: z.enum(GPU_CHOICES).default("auto"),
  slots: z.coerce.number().int().min(1).max(256).default(4),
  ctx: z.coerce.number().int().min(16).optional(),
  "kv-type": z.enum(KV_TYPES, { message: `must be one of ${KV_TYPES.join(", ")}` }).optional(),
});

const spawn = defineCommand({
  meta: { name: "spawn", description: "Start a worker for a model in the catalog" },
  args: {
    model: { type: "string", description: "Model id, reference or name", required: true },
    gpu: { type: "string", description: "auto | cuda | vulkan | cpu" },
    slots: { type: "string", description: "Parallel sequences (default 4)" },
    ctx: { type: "string", description: "Context tokens per slot" },
    "kv-type": { type: "string", description: "The KV cache's type: f16 | q8_0 | q4_0 (default f16)" },
    ...connectionArgs,
  },
  run: async ({ args }) => {
    const a = parseArgs(SpawnArgs, args);
    const worker = await (await requireHive(a)).spawn({ model: a.model, gpu: a.gpu, slots: a.slots, ctx: a.ctx, ...(a["kv-type"] && { kv: kvTypesOf({ both: a["kv-type"] }) }) });
    console.log(a.json ? JSON.stringify(worker, null, 2) : `${worker.id} ready at ${worker.url} (${worker.backend} on ${worker.device})`);
  },
});

const workerList = defineCommand({
  meta: { name: "list", description: "List the workers of the local hive" },
  args: connectionArgs,
  run: async ({ args }) => {
    const c = parseArgs(ConnectionArgs, args);
    const workers = await (await requireHive(c)).workers();
    if (c.json) return void console.log(JSON.stringify(workers, null, 2));
    if (!workers.length) return void console.log("no workers");
    console.log(formatTable(["ID", "MODEL", "STATE", "URL", "BACKEND", "PID"], workers.map((w) => [w.id, w.model_ref, w.state, w.url, w.backend, w.pid])));
  },
});

const StopArgs = ConnectionArgs.extend({ all: z.boolean().default(false) });

const stop = defineCommand({
  meta: { name: "stop", description: "Stop one worker, or all of them with --all" },
  args: { id: { type: "positional", description: "Worker id", required: false }, all: { type: "boolean", description: "Stop every worker" }, ...connectionArgs },
  run: async ({ args }) => {
    const a = parseArgs(StopArgs, args);
    const id = args.id ? String(args.id) : undefined;
    if (!id === !a.all) throw new RbeeError("BAD_REQUEST", "name one worker id, or --all");
    const hive = await requireHive(a);
    const ids = a.all ? (await hive.workers()).map((w) => w.id) : [id!];
    for (const w of ids) {
      await hive.stopWorker(w);
      console.log(`stopped ${w}`);
    }
  },
});

export const workerCommand = defineCommand({ meta: { name: "worker", description: "The workers of the local hive" }, subCommands: { spawn, list: workerList, stop } });
