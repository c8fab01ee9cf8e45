// `rbee doctor [--node N] [--json]`: what rbee sees on this machine, or on a node (its own doctor, run over SSH), as a
// table that ends with one line: ready or not, and why. Exit code 0 when ready, 1 when not.
import { defineCommand } from "citty";
import { z } from "zod";
import { parseArgs } from "../../cli-args";
import { rbeeHome } from "../../config";
import { RbeeError } from "../../errors";
import { formatBytes } from "../../format";
import { describeEngine } from "../../inference/engine-info";
import { NodeRegistry } from "../../nodes/registry";
import { shellQuote } from "../../ssh/connection";
import { connectToNode, remoteRbeePath } from "../../ssh/nodes";
import { formatTable } from "../../table";
import { DoctorReport } from "../../wire/doctor";
import { examineThisMachine } from "./doctor-report";

const DoctorArgs = z.object({ node: z.string().min(1).optional(), json: z.boolean().default(false), home: z.string().optional() });

/** A node's own `rbee doctor --json`, run over its SSH connection. */
async function examineNode(name: string, homeFlag?: string): Promise<DoctorReport> {
  const home = rbeeHome(homeFlag);
  const nodes = new NodeRegistry(home);
  try {
    const node = nodes.get(name);
    if (!node) throw new RbeeError("NOT_FOUND", `unknown node "${name}" (see \`rbee setup list-nodes\`)`);
    if (!node.sshHost) throw new RbeeError("BAD_REQUEST", `node ${name} is not reached over SSH: run \`rbee doctor\` there`);
    const conn = await connectToNode(node, home);
    try {
      const run = await conn.exec(`${shellQuote(remoteRbeePath(node))} doctor --json`);
      const answer = run.stdout.split("\n").find((line) => line.startsWith("{"));
      if (!answer) {
        const missing = run.code === 127 || /not found|No such file/.test(run.stderr);
        throw new RbeeError("RBEE_MISSING", missing ? `rbee is not installed on ${name} at ${remoteRbeePath(node)}: \`rbee setup install --node ${name}\`` : `rbee doctor on ${name} answered no report: ${run.stderr.trim().split("\n").at(-1) ?? `exit code ${run.code}`}`);
      }
      return { ...DoctorReport.parse(JSON.parse(answer)), node: name };
    } finally {
      conn.close();
    }
  } finally {
    nodes.close();
  }
}

export function renderDoctor(r: DoctorReport): string {
  const rows: (string | number)[][] = [
    ["platform", `${r.platform} (${r.os})`],
    ["rbee", `${r.rbee_version} (${r.compiled ? "compiled binary" : "from source"})`],
    ["engine", r.engine ? describeEngine(r.engine) : "none: no backend works"],
    ...r.backends.map((b) => [`backend ${b.backend}`, b.ok ? `passed (${b.device})` : `failed: ${b.reason}`]),
    ...r.gpus.map((g) => [`gpu ${g.index}`, `${g.name}: ${formatBytes(g.vram_free_bytes)} free of ${formatBytes(g.vram_total_bytes)}${g.unified ? " (unified with the RAM)" : ""}`]),
    ["ram", `${formatBytes(r.ram_free_bytes)} free of ${formatBytes(r.ram_total_bytes)}, ${r.cpu_cores} cores`],
    ["disk", r.disk_free_bytes === null ? `${r.home} cannot be created` : `${formatBytes(r.disk_free_bytes)} free under ${r.home}${r.home_writable ? "" : " (not writable)"}`],
    ...r.ports.map((p) => [`port ${p.port}`, p.state === "free" ? `free (the ${p.role}'s)` : p.state === "rbee" ? `an rbee ${p.answered_role} answers there` : "taken by another program"]),
    ...r.warnings.map((w) => ["warning", w]),
  ];
  return `${formatTable([r.node.toUpperCase(), "WHAT RBEE SEES"], rows)}\n${r.ready ? "ready" : "not ready"}: ${r.reason}`;
}

export default defineCommand({
  meta: { name: "doctor", description: "What rbee sees on this machine (or on a node, over SSH): platform, engine, backends, GPUs, disk, ports; ready or not" },
  args: {
    node: { type: "string", description: "A registered node to examine over SSH (its own rbee doctor)" },
    json: { type: "boolean", description: "Print JSON" },
    home: { type: "string", description: "rbee's home (default $RBEE_HOME or ~/.rbee)" },
  },
  run: async ({ args }) => {
    const a = parseArgs(DoctorArgs, args);
    const report = a.node ? await examineNode(a.node, a.home) : await examineThisMachine(a.home);
    console.log(a.json ? JSON.stringify(report) : renderDoctor(report));
    if (!report.ready) process.exitCode = 1;
  },
});
