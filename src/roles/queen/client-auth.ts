// Who may use the queen: the cluster token (hives, workers, the operator's own tools: everything), or a client key
// (rbee keys) within its scopes and limits; health checks, the root probe and the dashboard's page and files stay open
// (the page asks for a key before it reads anything). With neither a token nor a key configured the queen is open (it
// then listens on loopback only: http/exposure.ts).
import type { Context, MiddlewareHandler } from "hono";
import { type ApiKeys, scopesOf } from "../../auth/api-keys";
import { getConnInfo } from "hono/bun";
import { RbeeError } from "../../errors";
import { isLoopback } from "../../http/exposure";
import { withCredential } from "./request-credential";

const OPEN = new Set(["/v1/health", "/health", "/metrics", "/"]);
/** What hives tell their queen: a queen with no cluster secret trusts its own machine for these. */
const FROM_HIVES = new Set(["/v1/hives/ready", "/v1/workers/ready", "/v1/workers/gone"]);
const WINDOW_MS = 60_000;

/** Routes a client key with the "inference" scope may use; everything else needs "operator". */
function isInference(method: string, path: string): boolean {
  const response = /^\/(v1\/)?responses\/[^/]+(\/input_items)?$/.test(path);
  if (method === "GET") return ["/v1/models", "/models", "/api/tags", "/api/ps", "/api/version", "/props", "/slots"].includes(path) || path.startsWith("/v2/tasks/") || response;
  if (method === "DELETE") return path.startsWith("/v2/tasks/") || response;
  return [
    "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/rerank", "/v1/responses", "/v1/messages", "/v1/messages/count_tokens", "/v2/tasks",
    "/chat/completions", "/completions", "/embeddings", "/rerank", "/responses",
    "/completion", "/tokenize", "/detokenize", "/apply-template",
    "/api/chat", "/api/generate", "/api/embed", "/api/embeddings", "/api/show",
  ].includes(path);
}

function credentialOf(c: Context): string | undefined {
  const bearer = /^Bearer\s+(.+)$/i.exec(c.req.header("authorization") ?? "")?.[1];
  return bearer ?? c.req.header("x-api-key");
}

/** `required`: a credential is needed even while no key exists (an operator's token); else only once keys exist. */
export function clientAuth({ clusterToken, required, keys }: { clusterToken?: string; required: boolean; keys: ApiKeys }): MiddlewareHandler {
  const inflight = new Map<string, number>();
  const recent = new Map<string, number[]>();
  return async (c, next) => {
    if (OPEN.has(c.req.path) || c.req.path.startsWith("/dashboard/")) return next();
    const credential = credentialOf(c);
    if (clusterToken && credential === clusterToken) return next();
    if (!clusterToken && FROM_HIVES.has(c.req.path) && isLoopback(getConnInfo(c).remote.address ?? "")) return next();
    // Open (loopback only, or --insecure-no-auth by choice): what its own machine's users may do.
    if (!required && !keys.anyActive()) return next();
    if (!credential) throw new RbeeError("UNAUTHORIZED", "missing API key: send Authorization: Bearer KEY (or x-api-key)");
    const key = keys.find(credential);
    if (!key) throw new RbeeError("UNAUTHORIZED", "invalid API key");
    const needed = isInference(c.req.method, c.req.path) ? "inference" : "operator";
    if (!scopesOf(key).includes(needed)) throw new RbeeError("FORBIDDEN", `key ${key.id} (${key.name}) has no ${needed} scope for ${c.req.method} ${c.req.path}`);
    const now = Date.now();
    const times = (recent.get(key.id) ?? []).filter((t) => t > now - WINDOW_MS);
    recent.set(key.id, times);
    if (key.perMinute !== null && times.length >= key.perMinute)
      throw new RbeeError("RATE_LIMITED", `key ${key.id} may make ${key.perMinute} requests a minute`, { retryAfterSeconds: Math.max(1, Math.ceil((times[0]! + WINDOW_MS - now) / 1000)) });
    const running = inflight.get(key.id) ?? 0;
    if (key.maxConcurrent !== null && running >= key.maxConcurrent)
      throw new RbeeError("RATE_LIMITED", `key ${key.id} may have ${key.maxConcurrent} requests at once`, { retryAfterSeconds: 1 });
    times.push(now);
    inflight.set(key.id, running + 1);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      inflight.set(key.id, (inflight.get(key.id) ?? 1) - 1);
    };
    try {
      await withCredential({ pathsAllowed: scopesOf(key).includes("operator") }, () => next());
    } catch (err) {
      finish();
      throw err;
    }
    // A streamed answer counts as running until its stream ends (or the client goes away).
    const body = c.res.body;
    if (!body) return finish();
    const counted = body.pipeThrough(new TransformStream({ flush: finish }));
    c.req.raw.signal.addEventListener("abort", finish, { once: true });
    c.res = new Response(counted, c.res);
  };
}
