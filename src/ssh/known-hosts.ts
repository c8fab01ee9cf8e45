// Host keys rbee trusts, in RBEE_HOME/known_hosts (OpenSSH's format): unknown hosts are refused unless the user says
// to accept a new key; a changed key is always refused.
import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { RbeeError } from "../errors";

export function hostPattern(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** The key's algorithm name is the first string inside its wire blob. */
export function keyLine(key: Buffer): string {
  const length = key.readUInt32BE(0);
  return `${key.subarray(4, 4 + length).toString("ascii")} ${key.toString("base64")}`;
}

export function checkHostKey({ file, host, port, key, acceptNew }: { file: string; host: string; port: number; key: Buffer; acceptNew: boolean }): void {
  const pattern = hostPattern(host, port);
  const offered = keyLine(key);
  const known = existsSync(file)
    ? readFileSync(file, "utf8").split("\n").map((l) => l.trim().split(/\s+/)).filter((f) => f.length >= 3 && f[0]!.split(",").includes(pattern))
    : [];
  const algorithm = offered.split(" ")[0];
  const sameAlgorithm = known.filter((f) => f[1] === algorithm);
  if (sameAlgorithm.some((f) => `${f[1]} ${f[2]}` === offered)) return;
  if (sameAlgorithm.length)
    throw new RbeeError("HOST_KEY_MISMATCH", `the host key of ${pattern} has CHANGED since it was recorded in ${file}; refusing to connect (remove its line there only if you know why it changed)`);
  if (!acceptNew) throw new RbeeError("HOST_KEY_UNKNOWN", `the host key of ${pattern} is unknown; check it and re-run with --accept-new-host-key to record it`);
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, `${pattern} ${offered}\n`, { mode: 0o600 });
}
