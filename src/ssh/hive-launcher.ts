// Starts a node's hive over SSH and keeps the session open: the hive watches its stdin, so when the session drops
// (the queen dies, the link breaks) the hive and its workers stop. Stops it over SSH (kill by PID) when HTTP fails.
import { settlesWithin } from "../deadline";
import type { ClientChannel } from "ssh2";
import { RbeeError } from "../errors";
import { logger } from "../log";
import type { NodeRow } from "../nodes/registry";
import type { RemoteHiveLauncher } from "../roles/queen/hives";
import { type SshConnection, shellQuote } from "./connection";
import { connectToNode, remoteRbeePath } from "./nodes";
import { openTunnel, type Tunnel } from "./tunnel";

/** Environment a remote hive needs from ours (where to download models from). */
const FORWARDED_ENV = ["RBEE_HF_ENDPOINT", "HF_TOKEN", "RBEE_LOG_LEVEL"];
const DEFAULT_REMOTE_HIVE_PORT = 9200;
const STOP_GRACE_MS = 5000;
const log = logger("queen");

interface Session {
  conn: SshConnection;
  channel: ClientChannel;
  pid: number;
  exited: Promise<void>;
}

/** `apiToken`: the queen's, handed to each hive on its stdin (a command line would show it to every user there). */
/** `insecureNoAuth`: the queen runs without a token on purpose, and so may its remote hives (else they need its token). */
export function createSshHiveLauncher(home: string, apiToken?: string, insecureNoAuth = false): RemoteHiveLauncher {
  const sessions = new Map<string, Session>();
  return {
    async start(node: NodeRow, queenUrl: string): Promise<void> {
      if (!apiToken && !insecureNoAuth)
        throw new RbeeError("BAD_REQUEST", `node ${node.name}: a remote hive listens on the network, so the queen needs a token to give it (--api-token or RBEE_API_TOKEN), or --insecure-no-auth`);
      sessions.get(node.name)?.conn.close();
      const conn = await connectToNode(node, home);
      const url = new URL(queenUrl);
      if (conn.localAddress) url.hostname = conn.localAddress;
      const env = FORWARDED_ENV.filter((k) => process.env[k]).map((k) => `${k}=${shellQuote(process.env[k]!)}`);
      const args = ["hive", "--port", String(node.hivePort ?? DEFAULT_REMOTE_HIVE_PORT), "--host", "0.0.0.0", "--advertise-host", node.sshHost!, "--queen-url", url.toString().replace(/\/$/, ""), "--node-name", node.name, "--watch-stdin", ...(apiToken ? ["--api-token-stdin"] : ["--insecure-no-auth"])];
      const command = `echo $$; exec env RBEE_LOG_FORMAT=json ${env.join(" ")} ${shellQuote(remoteRbeePath(node))} ${args.map(shellQuote).join(" ")}`;
      const channel = await conn.spawn(command);
      if (apiToken) channel.write(`${apiToken}\n`);
      const pid = await new Promise<number>((resolve, reject) => {
        let out = "";
        let err = "";
        const onData = (d: Buffer) => {
          out += d.toString();
          const line = out.split("\n")[0];
          if (out.includes("\n")) {
            channel.off("data", onData);
            resolve(Number(line));
          }
        };
        channel.on("data", onData);
        channel.stderr.on("data", (d: Buffer) => {
          err += d.toString();
          for (const line of d.toString().split("\n")) if (line.trim()) process.stderr.write(`${line}\n`);
        });
        channel.once("close", (code: number | null) => reject(new RbeeError("RBEE_MISSING", `the hive on ${node.name} exited at once (code ${code}): ${err.trim().split("\n").at(-1) ?? ""}`)));
      });
      const exited = new Promise<void>((resolve) => channel.once("close", () => resolve()));
      conn.client.once("close", () => {
        if (sessions.get(node.name)?.conn === conn) sessions.delete(node.name);
        log.warn(`the SSH session to ${node.name} closed`);
      });
      sessions.set(node.name, { conn, channel, pid, exited });
      log.info(`started the hive of ${node.name} over SSH`, { pid });
    },

    async tunnel(node: NodeRow, port: number): Promise<Tunnel> {
      // The hive's own session where the queen started it; a hive found again after a restart gets a connection of its own.
      const session = sessions.get(node.name)?.conn;
      if (session) return openTunnel(session, port);
      const own = await connectToNode(node, home);
      const tunnel = await openTunnel(own, port).catch((err) => {
        own.close();
        throw err;
      });
      return { ...tunnel, close: () => (tunnel.close(), own.close()) };
    },

    async stop(node: NodeRow): Promise<void> {
      const session = sessions.get(node.name);
      if (!session) return;
      const gone = await settlesWithin(session.exited, STOP_GRACE_MS);
      if (!gone) {
        log.warn(`the hive of ${node.name} did not stop over HTTP; killing PID ${session.pid} over SSH`);
        await session.conn.exec(`kill -TERM ${session.pid}`).catch(() => {});
        const killed = await settlesWithin(session.exited, STOP_GRACE_MS);
        if (!killed) await session.conn.exec(`kill -KILL ${session.pid}`).catch(() => {});
      }
      session.conn.close();
      sessions.delete(node.name);
    },
  };
}
