// Which web pages may call a role from a browser (CORS): by default only pages served from this machine (loopback
// origins: a self-hosted chat UI on localhost); else the origins the operator lists (--cors-origins, config.toml's
// cors_origins), "*" for any. Preflights are answered on every route, before authentication.
import { cors } from "hono/cors";
import type { MiddlewareHandler } from "hono";
import { RbeeError } from "../errors";

const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

export const CORS_ORIGIN_FORM = "expected * or an origin such as https://chat.example.com or http://localhost:3000 (scheme, host and port only)";

/** "*", or an http(s) origin with nothing after it. */
export function isCorsOrigin(raw: string): boolean {
  const origin = raw.trim();
  if (origin === "*") return true;
  try {
    const url = new URL(origin);
    return ["http:", "https:"].includes(url.protocol) && url.origin === origin.replace(/\/$/, "");
  } catch {
    return false;
  }
}

/** Each listed origin as the browser sends it; one clear error for the first that is no origin. */
export function parseCorsOrigins(list: string[]): string[] {
  return list.map((raw) => {
    if (!isCorsOrigin(raw)) throw new RbeeError("BAD_REQUEST", `cors origin "${raw}": ${CORS_ORIGIN_FORM}`);
    return raw.trim() === "*" ? "*" : new URL(raw.trim()).origin;
  });
}

/** The origin to allow for a request's Origin header, or null: loopback pages by default, else the listed ones. */
export function allowedOrigin(origin: string, listed?: string[]): string | null {
  if (!origin) return null;
  if (listed === undefined) {
    try {
      return LOOPBACK_HOSTS.has(new URL(origin).hostname) ? origin : null;
    } catch {
      return null;
    }
  }
  return listed.includes("*") || listed.includes(origin) ? origin : null;
}

export function corsMiddleware(listed?: string[]): MiddlewareHandler {
  return cors({ origin: (origin) => allowedOrigin(origin, listed), allowMethods: ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"], maxAge: 600 });
}
