// Settings resolved once at start: flags first, then RBEE_* environment variables, then defaults.
import { homedir } from "node:os";
import { join, resolve } from "node:path";

export const DEFAULT_HIVE_PORT = 9200;
export const DEFAULT_QUEEN_PORT = 8080;

export function rbeeHome(flag?: string): string {
  return resolve(flag ?? process.env.RBEE_HOME ?? join(homedir(), ".rbee"));
}

export function apiToken(flag?: string): string | undefined {
  return flag ?? (process.env.RBEE_API_TOKEN || undefined);
}

export function hivePort(flag?: number): number {
  return flag ?? (process.env.RBEE_HIVE_PORT ? Number(process.env.RBEE_HIVE_PORT) : DEFAULT_HIVE_PORT);
}

/** Request bodies larger than this are refused with 413: RBEE_MAX_BODY_MB, default 4 MiB. */
export function maxBodyBytes(): number {
  const mb = Number(process.env.RBEE_MAX_BODY_MB);
  return Math.round((Number.isFinite(mb) && mb > 0 ? mb : 4) * 1024 * 1024);
}

/** The Responses API's stored responses the queen keeps, newest first: RBEE_STORED_RESPONSES, default 10,000. */
export function storedResponsesLimit(): number {
  const n = Number(process.env.RBEE_STORED_RESPONSES);
  return Number.isInteger(n) && n > 0 ? n : 10_000;
}
