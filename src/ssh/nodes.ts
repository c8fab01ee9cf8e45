// Reaching a registered node over SSH, and what rbee needs to know about it there: is rbee installed, which version.
import { join } from "node:path";
import { RbeeError } from "../errors";
import type { NodeRow } from "../nodes/registry";
import { SshConnection, shellQuote } from "./connection";
import { type Platform, platformOfUname } from "../platforms";

/** Where `rbee setup install` puts the binary on a node, relative to the SSH user's home. */
export const DEFAULT_REMOTE_RBEE_PATH = ".rbee/bin/rbee";

export function knownHostsFile(home: string): string {
  return join(home, "known_hosts");
}

export function remoteRbeePath(node: NodeRow): string {
  return node.rbeePath ?? DEFAULT_REMOTE_RBEE_PATH;
}

export function connectToNode(node: NodeRow, home: string, acceptNewHostKey = false): Promise<SshConnection> {
  if (!node.sshHost || !node.sshUser) throw new RbeeError("BAD_REQUEST", `node ${node.name} is not reached over SSH`);
  return SshConnection.connect({ host: node.sshHost, port: node.sshPort ?? 22, user: node.sshUser, keyPath: node.keyPath }, { knownHostsFile: knownHostsFile(home), acceptNewHostKey });
}

/** The version `rbee --version` prints on the node, or null when there is no rbee at that path. */
export async function remoteRbeeVersion(conn: SshConnection, rbeePath: string): Promise<string | null> {
  const result = await conn.exec(`${shellQuote(rbeePath)} --version`);
  if (result.code !== 0) return null;
  return result.stdout.trim().split("\n").at(-1) ?? null;
}

/** The node's platform from `uname -sm`; a machine rbee has no build for is one clear error. */
export async function remotePlatform(conn: SshConnection, nodeName: string): Promise<Platform> {
  const result = await conn.exec("uname -sm");
  const uname = result.stdout.trim();
  const platform = result.code === 0 ? platformOfUname(uname) : undefined;
  if (!platform) throw new RbeeError("BAD_REQUEST", `node ${nodeName} is "${uname || result.stderr.trim()}" (uname -sm): rbee has no build for it`);
  return platform;
}
