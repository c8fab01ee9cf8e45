// The queen's OpenAI-compatible routes: validated here, relayed to a worker of the model, streamed back unchanged.
import type { Context, Hono } from "hono";
import { z } from "zod";
import { RbeeError } from "../../errors";
import { openAiError } from "../../wire/errors";
import { modelList } from "../../dialects/openai";
import { readJson } from "../../http/validate";
import { ChatRequest, CompletionRequest, EmbeddingsRequest, RerankRequest, reportedCompletionTokens } from "../../wire/openai";
import { ensureHiveToAsk, resolveModel } from "./models";
import type { QueenDeps } from "./server";
import { passThrough } from "./stream-out";

const Routed = { model: z.string().min(1, "must name a model"), node: z.string().min(1).optional() };
const QueenCompletion = CompletionRequest.extend(Routed);
const QueenChat = ChatRequest.extend(Routed);
const QueenEmbeddings = EmbeddingsRequest.extend(Routed);
const QueenRerank = RerankRequest.extend(Routed);

export function addQueenOpenAiRoutes(app: Hono, deps: Pick<QueenDeps, "registry" | "hives" | "relay" | "metrics" | "onActivity" | "names">): void {
  // Every model by its reference, then every name (config.toml's, names.db's) as a model of its own, as clients list.
  app.get("/v1/models", async (c) => {
    // This machine's catalog counts before its hive has started: start it (as a request for a model would).
    await ensureHiveToAsk(deps.registry, deps.hives).catch(() => {});
    const listing = deps.registry.modelListing();
    const named = deps.names.list().flatMap(({ name, ref }) => {
      const target = listing.find((m) => m.ref === ref);
      return target ? [{ ...target, ref: name, aliasOf: ref }] : [];
    });
    return c.json(modelList([...listing, ...named]));
  });
  app.post("/v1/completions", async (c) => relayOpenAi(c, deps, "/v1/completions", await readJson(c, QueenCompletion)));
  app.post("/v1/chat/completions", async (c) => relayOpenAi(c, deps, "/v1/chat/completions", await readJson(c, QueenChat)));
  app.post("/v1/embeddings", async (c) => relayOpenAi(c, deps, "/v1/embeddings", await readJson(c, QueenEmbeddings)));
  app.post("/v1/rerank", async (c) => relayOpenAi(c, deps, "/v1/rerank", await readJson(c, QueenRerank)));
}

async function relayOpenAi(c: Context, deps: Parameters<typeof addQueenOpenAiRoutes>[1], path: string, body: { model: string; node?: string; stream?: boolean }): Promise<Response> {
  const startedAt = performance.now();
  const modelRef = await resolveModel(deps.registry, deps.hives, body.model, body.node, deps.names);
  const { node, ...forwarded } = body;
  deps.onActivity(+1);
  let relayed;
  try {
    relayed = await deps.relay.start({ modelRef, node, path, body: { ...forwarded, model: body.model }, signal: c.req.raw.signal });
  } catch (err) {
    deps.onActivity(-1);
    throw err;
  }
  let ended = false;
  const done = () => {
    if (!ended) deps.onActivity(-1);
    ended = true;
  };
  if (!body.stream) {
    const chunks: Uint8Array[] = relayed.first ? [relayed.first] : [];
    try {
      for (;;) {
        const { value, done: end } = await relayed.reader.read();
        if (end) break;
        chunks.push(value);
      }
    } catch (err) {
      throw new RbeeError("WORKER_FAILED", `the worker was lost while answering: ${err instanceof Error ? err.message : err}`);
    } finally {
      relayed.lease.release();
      done();
    }
    deps.metrics.ttft.observe((performance.now() - startedAt) / 1000);
    const answer = Buffer.concat(chunks);
    deps.metrics.generated(relayed.lease.worker, completionTokens(answer));
    return new Response(answer, { status: relayed.status, headers: { "content-type": "application/json" } });
  }
  const stream = passThrough(relayed, deps.metrics, startedAt, (message) => `data: ${JSON.stringify(openAiError({ code: "WORKER_FAILED", message }))}\n\n`, done);
  return new Response(stream, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
}

/** The tokens a whole (not streamed) answer reports in its usage; 0 where it has none (embeddings, an error). */
function completionTokens(answer: Buffer): number {
  try {
    return reportedCompletionTokens(JSON.parse(answer.toString("utf8"))) ?? 0;
  } catch {
    return 0;
  }
}
