// The Hono app every role starts from: JSON error shape, optional bearer auth, health route.
import { Hono, type MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { bodyLimit } from "hono/body-limit";
import { maxBodyBytes } from "../config";
import { HTTPException } from "hono/http-exception";
import { asRbeeError, RbeeError } from "../errors";
import { logger } from "../log";
import { corsMiddleware } from "./cors";
import { errorBodyFor as errorJson } from "../wire/errors";

export interface AppOptions {
  role: string;
  apiToken?: string;
  /** Routes reachable without the token (health probes). */
  publicPaths?: string[];
  /** Who may use it, where a role decides more than one token does (the queen's client keys); replaces apiToken. */
  authenticate?: MiddlewareHandler;
  /** Web pages of these origins may call it from a browser (default: loopback ones; see http/cors.ts). */
  corsOrigins?: string[];
}

export function createApp({ role, apiToken, publicPaths = ["/v1/health"], authenticate, corsOrigins }: AppOptions): Hono {
  const log = logger(role);
  const app = new Hono();
  // First: a browser's preflight carries no credentials, and an error answer needs the header too.
  app.use("*", corsMiddleware(corsOrigins));

  // `status` is llama-server's field (its /v1/health answers {status: "ok"}).
  app.get("/v1/health", (c) => c.json({ ok: true, role, status: "ok" }));

  // Refused before it is read whole (a 10 MB prompt was tokenized for 4 s before the context check refused it).
  const limit = maxBodyBytes();
  app.use(
    "*",
    bodyLimit({
      maxSize: limit,
      onError: (c) => c.json(errorJson(c.req.path, new RbeeError("PAYLOAD_TOO_LARGE", `the request body is over ${limit} bytes (RBEE_MAX_BODY_MB)`)), 413),
    }),
  );

  if (authenticate) app.use("*", authenticate);
  else if (apiToken) {
    const auth = bearerAuth({ token: apiToken, noAuthenticationHeader: { message: "missing bearer token" } });
    app.use("*", (c, next) => {
      if (publicPaths.includes(c.req.path)) return next();
      // Anthropic's clients send the key as x-api-key: the same token.
      const apiKey = c.req.header("x-api-key");
      if (apiKey !== undefined && c.req.header("authorization") === undefined) {
        if (apiKey === apiToken) return next();
        throw new HTTPException(401, { message: "invalid x-api-key" });
      }
      return auth(c, next);
    });
  }

  app.notFound((c) => c.json(errorJson(c.req.path, new RbeeError("NOT_FOUND", `no route ${c.req.method} ${c.req.path}`)), 404));

  app.onError((err, c) => {
    if (err instanceof HTTPException && !(err.cause instanceof RbeeError)) {
      const code = err.status === 401 ? "UNAUTHORIZED" : "BAD_REQUEST";
      return c.json(errorJson(c.req.path, new RbeeError(code, err.message || code.toLowerCase())), err.status);
    }
    const rbee = asRbeeError(err instanceof HTTPException ? err.cause : err);
    if (rbee.code === "INTERNAL") log.error(`${c.req.method} ${c.req.path}: ${rbee.message}`);
    if (rbee.extra.retryAfterSeconds !== undefined) c.header("Retry-After", String(rbee.extra.retryAfterSeconds));
    return c.json(errorJson(c.req.path, rbee), rbee.status as 400);
  });

  return app;
}
