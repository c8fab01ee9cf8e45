// `rbee setup …`: the node list (in the queen's SQLite registry, usable with no queen running) and putting the binary
// for a node's platform (uname -sm) onto it over SFTP.
import { defineCommand } from "citty";
import { z } from "zod";
import { parseArgs } from "../../cli-args";
import { rbeeHome } from "../../config";
import { RbeeError } from "../../errors";
import { checkNodeName, NodeRegistry, type NodeRow, sshLabel } from "../../nodes/registry";
import { isCompiled } from "../../self";
import { shellQuote } from "../../ssh/connection";
import { connectToNode, remotePlatform, remoteRbeePath, remoteRbeeVersion } from "../../ssh/nodes";
import { type Platform, thisPlatform } from "../../platforms";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { formatTable } from "../../table";
import { VERSION } from "../../version";

const homeArg = { home: { type: "string", description: "rbee's home (default $RBEE_HOME or ~/.rbee)" } } as const;

function withNodes<T>(home: string | undefined, fn: (nodes: NodeRegistry, home: string) => Promise<T> | T): Promise<T> {
  const dir = rbeeHome(home);
  const nodes = new NodeRegistry(dir);
  return Promise.resolve(fn(nodes, dir)).finally(() => nodes.close());
}

export function parseSshTarget(text: string): { user: string; host: string; port: number } {
  const match = /^([A-Za-z0-9._-]+)@(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(text);
  if (!match) throw new RbeeError("BAD_REQUEST", `invalid --ssh "${text}": expected user@host[:port]`);
  const port = match[3] ? Number(match[3]) : 22;
  if (port < 1 || port > 65535) throw new RbeeError("BAD_REQUEST", `invalid --ssh "${text}": port ${port} is out of range`);
  return { user: match[1]!, host: match[2]!.replace(/^\[|\]$/g, ""), port };
}

function requireNode(nodes: NodeRegistry, name: string): NodeRow {
  const node = nodes.get(name);
  if (!node) throw new RbeeError("NOT_FOUND", `unknown node "${name}" (see \`rbee setup list-nodes\`)`);
  if (!node.sshHost) throw new RbeeError("BAD_REQUEST", `node ${name} is not reached over SSH`);
  return node;
}

const AddNodeArgs = z.object({
  name: z.string(),
  ssh: z.string().min(1, "--ssh user@host[:port] is required"),
  key: z.string().optional(),
  "rbee-path": z.string().optional(),
  "hive-port": z.coerce.number().int().min(1).max(65535).optional(),
  "accept-new-host-key": z.boolean().default(false),
  home: z.string().optional(),
});

const addNode = defineCommand({
  meta: { name: "add-node", description: "Register a node reached over SSH (checks its host key and its rbee)" },
  args: {
    name: { type: "positional", description: "Node name", required: true },
    ssh: { type: "string", description: "user@host[:port]", required: true },
    key: { type: "string", description: "Private key file (default: the ssh-agent)" },
    "rbee-path": { type: "string", description: "rbee on the node (default ~/.rbee/bin/rbee)" },
    "hive-port": { type: "string", description: "Port of the node's hive (default 9200)" },
    "accept-new-host-key": { type: "boolean", description: "Record the host key of a host seen for the first time" },
    ...homeArg,
  },
  run: async ({ args }) => {
    const a = parseArgs(AddNodeArgs, args);
    checkNodeName(a.name);
    const target = parseSshTarget(a.ssh);
    await withNodes(a.home, async (nodes, home) => {
      const row = { name: a.name, sshHost: target.host, sshPort: target.port, sshUser: target.user, keyPath: a.key ?? null, rbeePath: a["rbee-path"] ?? null, hivePort: a["hive-port"] ?? null, hiveUrl: null, platform: null };
      const conn = await connectToNode({ ...row, addedAt: new Date() }, home, a["accept-new-host-key"]);
      try {
        const platform = await remotePlatform(conn, a.name);
        const version = await remoteRbeeVersion(conn, remoteRbeePath({ ...row, addedAt: new Date() }));
        nodes.upsert({ ...row, platform });
        if (version === VERSION) console.log(`added ${a.name} (${conn.label}, ${platform}), rbee ${version}`);
        else {
          console.log(`added ${a.name} (${conn.label}, ${platform})`);
          console.log(`${version ? `rbee there is ${version}, this is ${VERSION}` : "rbee is not installed there"}: \`rbee setup install --node ${a.name}\` fixes it`);
        }
      } finally {
        conn.close();
      }
    });
  },
});

const install = defineCommand({
  meta: { name: "install", description: "Copy the rbee binary for the node's platform there over SFTP and check it runs" },
  args: {
    node: { type: "string", description: "Node name", required: true },
    from: { type: "string", description: "Folder with rbee-PLATFORM binaries (default: the one this rbee is in, as dist/ after bun run build --all)" },
    ...homeArg,
  },
  run: async ({ args }) => {
    const a = parseArgs(z.object({ node: z.string().min(1), from: z.string().min(1).optional(), home: z.string().optional() }), args);
    if (!isCompiled() && !a.from) throw new RbeeError("BAD_REQUEST", "run `rbee setup install` from the compiled binary (bun run build → dist/rbee), or name the folder of binaries with --from");
    await withNodes(a.home, async (nodes, home) => {
      const node = requireNode(nodes, a.node);
      const conn = await connectToNode(node, home);
      try {
        const platform = await remotePlatform(conn, node.name);
        const binary = binaryFor(platform, node.name, a.from);
        const path = remoteRbeePath(node);
        const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : ".";
        const mkdir = await conn.exec(`mkdir -p ${shellQuote(dir)}`);
        if (mkdir.code !== 0) throw new RbeeError("UNREACHABLE", `cannot create ${dir} on ${node.name}: ${mkdir.stderr.trim()}`);
        await conn.upload(binary, path, 0o755);
        const version = await remoteRbeeVersion(conn, path);
        if (version !== VERSION) throw new RbeeError("RBEE_MISSING", `rbee was copied to ${node.name}:${path} but does not run there (${version ?? "no output"})`);
        nodes.upsert({ ...node, platform });
        console.log(`installed rbee ${version} (${platform}) on ${node.name} at ${path}`);
      } finally {
        conn.close();
      }
    });
  },
});

/**
 * The binary for a node's platform: this very binary where the node is of its own platform (never an older build lying
 * beside it), else rbee-PLATFORM in the folder named (--from) or beside this binary (dist/ after `bun run build --all`).
 */
function binaryFor(platform: Platform, nodeName: string, from?: string): string {
  if (!from && platform === thisPlatform()) return process.execPath;
  const folder = from ?? dirname(process.execPath);
  const named = join(folder, `rbee-${platform}`);
  if (existsSync(named)) return named;
  throw new RbeeError("NOT_FOUND", `node ${nodeName} is ${platform} and ${folder} has no rbee-${platform}: build it with \`bun run build --target ${platform}\` (or --all), or name a folder that has it with --from`);
}

const listNodes = defineCommand({
  meta: { name: "list-nodes", description: "List the registered nodes" },
  args: { ...homeArg, json: { type: "boolean", description: "Print JSON" } },
  run: async ({ args }) =>
    withNodes(args.home as string | undefined, (nodes) => {
      const rows = nodes.list();
      if (args.json) return console.log(JSON.stringify(rows, null, 2));
      if (!rows.length) return console.log("no nodes");
      console.log(formatTable(["NAME", "SSH", "PLATFORM", "KEY", "RBEE", "HIVE PORT"], rows.map((n) => [n.name, sshLabel(n) ?? "(local)", n.platform ?? (n.sshHost ? "?" : thisPlatform()), n.keyPath, remoteRbeePath(n), n.hivePort ?? 9200])));
    }),
});

const removeNode = defineCommand({
  meta: { name: "remove-node", description: "Forget a node" },
  args: { name: { type: "positional", description: "Node name", required: true }, ...homeArg },
  run: async ({ args }) =>
    withNodes(args.home as string | undefined, (nodes) => {
      if (!nodes.remove(String(args.name))) throw new RbeeError("NOT_FOUND", `unknown node "${args.name}"`);
      console.log(`removed ${args.name}`);
    }),
});

export default defineCommand({
  meta: { name: "setup", description: "Nodes: add, install rbee, list, remove" },
  subCommands: { "add-node": addNode, install, "list-nodes": listNodes, "remove-node": removeNode },
});
