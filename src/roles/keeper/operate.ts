// The keeper's commands against a running queen: `rbee status`, `rbee models download`, `rbee workers list|stop`.
import { defineCommand } from "citty";
import { z } from "zod";
import { parseArgs } from "../../cli-args";
import { QueenClient } from "../../clients/queen-client";
import { apiToken, DEFAULT_QUEEN_PORT } from "../../config";
import { RbeeError } from "../../errors";
import { formatBytes } from "../../format";
import { byteProgressReporter } from "../../progress";
import { formatTable } from "../../table";
import { shortEngine } from "../../inference/engine-info";
import { splitLabel } from "../../format";
import { alias } from "./alias";

const queenArgs = {
  "queen-url": { type: "string", description: `Queen to ask (default $RBEE_QUEEN_URL or http://127.0.0.1:${DEFAULT_QUEEN_PORT})` },
  "api-token": { type: "string", description: "Bearer token of the queen" },
  json: { type: "boolean", description: "Print JSON" },
} as const;
const QueenArgs = z.object({ "queen-url": z.string().url().optional(), "api-token": z.string().optional(), json: z.boolean().default(false) });

async function queen(a: z.infer<typeof QueenArgs>): Promise<QueenClient> {
  const client = new QueenClient(a["queen-url"] ?? process.env.RBEE_QUEEN_URL ?? `http://127.0.0.1:${DEFAULT_QUEEN_PORT}`, apiToken(a["api-token"]));
  if (!(await client.isUp())) throw new RbeeError("UPSTREAM_UNREACHABLE", `no queen answers at ${client.baseUrl}; start one with \`rbee queen\``);
  return client;
}

export const status = defineCommand({
  meta: { name: "status", description: "Nodes, hives, workers and models, as tables" },
  args: queenArgs,
  run: async ({ args }) => {
    const a = parseArgs(QueenArgs, args);
    const client = await queen(a);
    const [nodes, workers, models] = await Promise.all([client.nodes(), client.workers(), client.models()]);
    if (a.json) return void console.log(JSON.stringify({ nodes, workers, models }, null, 2));
    console.log(formatTable(["NODE", "SSH", "PLATFORM", "HIVE", "STATE", "BACKENDS", "ENGINE", "CPU", "RAM FREE"], nodes.map((n) => [
      n.name, n.ssh ?? "(local)", n.devices?.platform ?? n.platform, n.hive_url, n.hive_state, n.devices?.backends.join(", "), n.devices?.engine ? shortEngine(n.devices.engine) : null, n.devices?.cpu_cores, n.devices ? formatBytes(n.devices.ram_free_bytes) : null,
    ])));
    // Every GPU of every node, each with its own memory.
    const gpus = nodes.flatMap((n) => (n.devices?.gpus ?? []).map((g) => [n.name, g.index, g.name, formatBytes(g.vram_free_bytes), formatBytes(g.vram_total_bytes), g.uuid ?? g.pci_bus ?? "-"]));
    if (gpus.length) {
      console.log();
      console.log(formatTable(["NODE", "GPU", "NAME", "VRAM FREE", "VRAM TOTAL", "ID"], gpus));
    }
    console.log();
    console.log(workers.length ? workerTable(workers) : "no workers");
    console.log();
    console.log(models.length ? formatTable(["MODEL", "NAME"], models.map((m) => [m.id, m.name])) : "no models");
  },
});

const download = defineCommand({
  meta: { name: "download", description: "Download a model onto a node's hive" },
  args: { ref: { type: "positional", description: "Model reference", required: true }, node: { type: "string", description: "Node (default localhost)" }, ...queenArgs },
  run: async ({ args }) => {
    const a = parseArgs(QueenArgs.extend({ node: z.string().min(1).optional() }), args);
    const progress = byteProgressReporter(`downloading ${args.ref}`);
    try {
      const model = await (await queen(a)).download(String(args.ref), a.node, (p) => progress.update(p));
      console.log(a.json ? JSON.stringify(model, null, 2) : `${model.ref} on ${a.node ?? "localhost"}: ${formatBytes(model.size_bytes)}, sha256 ${model.sha256}`);
    } finally {
      progress.stop();
    }
  },
});

export const models = defineCommand({ meta: { name: "models", description: "Models on the nodes, and their names" }, subCommands: { download, alias } });

const list = defineCommand({
  meta: { name: "list", description: "Workers on every node" },
  args: queenArgs,
  run: async ({ args }) => {
    const a = parseArgs(QueenArgs, args);
    const workers = await (await queen(a)).workers();
    if (a.json) return void console.log(JSON.stringify(workers, null, 2));
    console.log(workers.length ? workerTable(workers) : "no workers");
  },
});

const stop = defineCommand({
  meta: { name: "stop", description: "Stop one worker, or all with --all" },
  args: { id: { type: "positional", description: "Worker id", required: false }, all: { type: "boolean", description: "Stop every worker" }, ...queenArgs },
  run: async ({ args }) => {
    const a = parseArgs(QueenArgs.extend({ all: z.boolean().default(false) }), args);
    const id = args.id ? String(args.id) : undefined;
    if (!id === !a.all) throw new RbeeError("BAD_REQUEST", "name one worker id, or --all");
    const client = await queen(a);
    for (const w of a.all ? (await client.workers()).map((w) => w.id) : [id!]) {
      await client.stopWorker(w);
      console.log(`stopped ${w}`);
    }
  },
});

export const workers = defineCommand({ meta: { name: "workers", description: "Workers on the nodes" }, subCommands: { list, stop } });

/** Workers as a table, with when each stops if no request comes (the queen's keep-alive). */
function workerTable(workers: Awaited<ReturnType<QueenClient["workers"]>>): string {
  const expiry = (at: string | null) => (at ? `${new Date(at).toISOString().slice(11, 19)} (in ${Math.max(0, Math.round((Date.parse(at) - Date.now()) / 1000))} s)` : "never");
  return formatTable(["WORKER", "NODE", "MODEL", "SLOTS", "IN FLIGHT", "STOPS AT", "URL"], workers.map((w) => [w.id, w.split ? splitLabel(w.split) : w.node, w.model_ref, w.slots_total, w.inflight, expiry(w.expires_at), w.url]));
}
