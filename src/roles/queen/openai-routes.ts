// The queen's OpenAI-compatible routes: validated here, relayed to a worker of the model, streamed back unchanged.
import type { Context, Hono } from "hono";
import { z } from "zod";
import { openAiError } from "../../wire/errors";
import { modelList } from "../../dialects/openai";
import { readJson } from "../../http/validate";
import { ChatRequest, CompletionRequest, EmbeddingsRequest, openAiPaths, RerankRequest, reportedCompletionTokens } from "../../wire/openai";
import { ensureHiveToAsk } from "./models";
import { type RelayDeps, relayAsIs } from "./relay-as-is";

const Routed = { model: z.string().min(1, "must name a model"), node: z.string().min(1).optional() };
const QueenCompletion = CompletionRequest.extend(Routed);
const QueenChat = ChatRequest.extend(Routed);
const QueenEmbeddings = EmbeddingsRequest.extend(Routed);
const QueenRerank = RerankRequest.extend(Routed);

export function addQueenOpenAiRoutes(app: Hono, deps: RelayDeps): void {
  // Every model by its reference, then every name (config.toml's, names.db's) as a model of its own, as clients list.
  app.on("GET", openAiPaths("/models"), async (c) => {
    // This machine's catalog counts before its hive has started: start it (as a request for a model would).
    await ensureHiveToAsk(deps.registry, deps.hives).catch(() => {});
    const listing = deps.registry.modelListing();
    const named = deps.names.list().flatMap(({ name, ref }) => {
      const target = listing.find((m) => m.ref === ref);
      return target ? [{ ...target, ref: name, aliasOf: ref }] : [];
    });
    return c.json(modelList([...listing, ...named]));
  });
  // With /v1 and without: the worker is always asked on its /v1 path.
  app.on("POST", openAiPaths("/completions"), async (c) => relayOpenAi(c, deps, "/v1/completions", await readJson(c, QueenCompletion)));
  app.on("POST", openAiPaths("/chat/completions"), async (c) => relayOpenAi(c, deps, "/v1/chat/completions", await readJson(c, QueenChat)));
  app.on("POST", openAiPaths("/embeddings"), async (c) => relayOpenAi(c, deps, "/v1/embeddings", await readJson(c, QueenEmbeddings)));
  app.on("POST", openAiPaths("/rerank"), async (c) => relayOpenAi(c, deps, "/v1/rerank", await readJson(c, QueenRerank)));
}

/** OpenAI's answers as the worker wrote them; a stream cut by a lost worker ends with OpenAI's error record. */
function relayOpenAi(c: Context, deps: RelayDeps, path: string, body: { model: string; node?: string; stream?: boolean }): Promise<Response> {
  return relayAsIs(c, deps, {
    path,
    body,
    errorRecord: (message) => `data: ${JSON.stringify(openAiError({ code: "WORKER_FAILED", message }))}\n\n`,
    generated: reportedCompletionTokens,
  });
}
