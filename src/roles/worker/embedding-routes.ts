// POST /v1/embeddings (OpenAI) and POST /v1/rerank (llama-server's and Jina's shape) on this worker's model.
import type { Hono } from "hono";
import type { Token } from "node-llama-cpp";
import { checkDimensions, embeddingInputs, embeddingsResponse } from "../../dialects/openai";
import { readJson } from "../../http/validate";
import { EMBED_MAX_TOKENS } from "../../inference/embeddings";
import { completionTokens } from "../../inference/prompt";
import { EmbeddingsRequest, openAiPaths, RerankRequest } from "../../wire/openai";
import type { WorkerService } from "./service";

export function addEmbeddingRoutes(app: Hono, service: WorkerService): void {
  app.on("POST", openAiPaths("/embeddings"), async (c) => {
    const body = await readJson(c, EmbeddingsRequest);
    service.requireEngine();
    checkDimensions(body, service.shape.embedding);
    for (const [i, text] of (typeof body.input === "string" ? [body.input] : body.input).entries())
      if (typeof text === "string") service.checkTextFits(text.length, `input ${i}`, EMBED_MAX_TOKENS);
    const inputs = embeddingInputs(body, (text) => completionTokens(service.model, text), service.shape.vocab);
    const vectors = await (await service.embedder()).embed(inputs as Token[][]);
    const tokens = inputs.reduce((sum, t) => sum + t.length, 0);
    return c.json(embeddingsResponse(body, body.model ?? service.config.modelRef, vectors, tokens));
  });

  app.on("POST", openAiPaths("/rerank"), async (c) => {
    const body = await readJson(c, RerankRequest);
    service.requireEngine();
    const scores = await (await service.ranker()).rankAll(body.query, body.documents);
    const results = scores
      .map((relevance_score, index) => ({ index, relevance_score, ...(body.return_documents && { document: { text: body.documents[index]! } }) }))
      .sort((a, b) => b.relevance_score - a.relevance_score)
      .slice(0, body.top_n ?? scores.length);
    return c.json({ model: body.model ?? service.config.modelRef, object: "list", results });
  });
}
