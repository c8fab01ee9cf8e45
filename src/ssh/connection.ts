// One SSH connection to a node through ssh2: key or agent authentication only, host keys checked, timeouts on connect
// and on every command, and failures turned into one clear error each.
import { readFileSync } from "node:fs";
import { Client, type ConnectConfig } from "ssh2";
import { RbeeError } from "../errors";
import { checkHostKey } from "./known-hosts";

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  keyPath?: string | null;
}

export interface SshOptions {
  knownHostsFile: string;
  acceptNewHostKey?: boolean;
  connectTimeoutMs?: number;
}

export const CONNECT_TIMEOUT_MS = 10_000;
export const COMMAND_TIMEOUT_MS = 30_000;
/** Keepalives let a dead link be noticed (and its session closed) within about 10 s. */
const KEEPALIVE_INTERVAL_MS = 3000;
const KEEPALIVE_COUNT_MAX = 3;

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export class SshConnection {
  private constructor(
    readonly client: Client,
    readonly target: SshTarget,
  ) {}

  get label(): string {
    return `${this.target.user}@${this.target.host}:${this.target.port}`;
  }

  /** This side's address as the node sees it: where the node can reach us back. */
  get localAddress(): string | undefined {
    return (this.client as unknown as { _sock?: { localAddress?: string } })._sock?.localAddress?.replace(/^::ffff:/, "");
  }

  static connect(target: SshTarget, options: SshOptions): Promise<SshConnection> {
    const label = `${target.user}@${target.host}:${target.port}`;
    const config: ConnectConfig = {
      host: target.host,
      port: target.port,
      username: target.user,
      readyTimeout: options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
      keepaliveInterval: KEEPALIVE_INTERVAL_MS,
      keepaliveCountMax: KEEPALIVE_COUNT_MAX,
      tryKeyboard: false,
    };
    if (target.keyPath) {
      try {
        config.privateKey = readFileSync(target.keyPath);
      } catch {
        return Promise.reject(new RbeeError("AUTH_FAILED", `cannot read the SSH key ${target.keyPath}`));
      }
    } else if (process.env.SSH_AUTH_SOCK) config.agent = process.env.SSH_AUTH_SOCK;
    else return Promise.reject(new RbeeError("AUTH_FAILED", `no SSH key for ${label}: pass --key or run an ssh-agent`));

    let hostKeyError: RbeeError | undefined;
    config.hostVerifier = (key: Buffer) => {
      try {
        checkHostKey({ file: options.knownHostsFile, host: target.host, port: target.port, key, acceptNew: options.acceptNewHostKey ?? false });
        return true;
      } catch (err) {
        hostKeyError = err as RbeeError;
        return false;
      }
    };
    return new Promise((resolve, reject) => {
      const client = new Client();
      client.once("ready", () => {
        // Tunnels carry request-and-answer traffic (llama.cpp's RPC): no waiting to fill packets.
        (client as unknown as { _sock?: { setNoDelay?: (on: boolean) => void } })._sock?.setNoDelay?.(true);
        resolve(new SshConnection(client, target));
      });
      client.once("error", (err: Error & { level?: string; code?: string }) => {
        client.end();
        if (hostKeyError) return reject(hostKeyError);
        if (err.level === "client-authentication") {
          const why = config.agent ? "no key the ssh-agent holds is authorised there" : "the key is not authorised there";
          return reject(new RbeeError("AUTH_FAILED", `SSH authentication to ${label} failed (${why})`));
        }
        if (err.level === "client-timeout" || err.code === "ETIMEDOUT") return reject(new RbeeError("UNREACHABLE", `${label} did not answer within ${(config.readyTimeout ?? 0) / 1000} s`));
        reject(new RbeeError("UNREACHABLE", `cannot reach ${label}: ${err.code ?? err.message}`));
      });
      client.connect(config);
    });
  }

  exec(command: string, { timeoutMs = COMMAND_TIMEOUT_MS }: { timeoutMs?: number } = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (err, stream) => {
        if (err) return reject(new RbeeError("UNREACHABLE", `${this.label}: cannot run a command: ${err.message}`));
        let stdout = "";
        let stderr = "";
        const timer = setTimeout(() => {
          stream.close();
          reject(new RbeeError("TIMEOUT", `${this.label}: \`${command.split(" ")[0]}\` did not finish within ${timeoutMs / 1000} s`));
        }, timeoutMs);
        stream.on("data", (d: Buffer) => (stdout += d.toString()));
        stream.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        stream.on("close", (code: number | null) => {
          clearTimeout(timer);
          resolve({ code, stdout, stderr });
        });
      });
    });
  }

  /** Starts a long-running command whose session stays open; closing it closes the command's stdin. */
  spawn(command: string): Promise<import("ssh2").ClientChannel> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (err, stream) => (err ? reject(new RbeeError("UNREACHABLE", `${this.label}: cannot start \`${command.split(" ")[0]}\`: ${err.message}`)) : resolve(stream)));
    });
  }

  upload(localPath: string, remotePath: string, mode: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.sftp((err, sftp) => {
        if (err) return reject(new RbeeError("UNREACHABLE", `${this.label}: no SFTP: ${err.message}`));
        const partial = `${remotePath}.partial-${process.pid}`;
        sftp.fastPut(localPath, partial, { mode }, (putErr) => {
          if (putErr) return (sftp.end(), reject(new RbeeError("UNREACHABLE", `${this.label}: upload to ${remotePath} failed: ${putErr.message}`)));
          sftp.rename(partial, remotePath, (renameErr) => {
            if (!renameErr) return (sftp.end(), resolve());
            // SFTP's rename refuses to replace a file: use the POSIX extension when the server has it.
            sftp.ext_openssh_rename(partial, remotePath, (extErr) => {
              sftp.end();
              if (extErr) reject(new RbeeError("UNREACHABLE", `${this.label}: cannot move the upload into ${remotePath}: ${extErr.message}`));
              else resolve();
            });
          });
        });
      });
    });
  }

  close(): void {
    this.client.end();
  }
}

/** Quotes one argument for a POSIX shell. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}
