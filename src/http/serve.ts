// Starts a Hono app on Bun.serve; port 0 picks a free port.
import type { Hono } from "hono";

export function serve(app: Hono, { host, port }: { host: string; port: number }) {
  return Bun.serve({ hostname: host, port, fetch: app.fetch, idleTimeout: 0 });
}

/** The URL others use to reach a server listening on `host`. */
export function httpUrl(host: string, port: number): string {
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
}
