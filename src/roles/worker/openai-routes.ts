// OpenAI-compatible routes: /v1/completions, /v1/chat/completions (streamed or not) and /v1/models. The dialect's
// translation is dialects/openai.ts; here its requests meet this worker's engine.
import type { Context, Hono } from "hono";
import type { Token } from "node-llama-cpp";
import { chunks, constraintOf, response, samplingOf, type ChoiceKind } from "../../dialects/openai";
import { RbeeError } from "../../errors";
import { dataOnlySseResponse } from "../../http/sse";
import { readJson } from "../../http/validate";
import type { GenerationRequest, GenerationResult } from "../../inference/engine";
import { grammarStopStrings } from "../../inference/grammars";
import { chatTokens, completionTokens } from "../../inference/prompt";
import { ChatRequest, CompletionRequest, messageText } from "../../wire/openai";
import { stopList } from "../../wire/worker";
import type { WorkerService } from "./service";

interface Job {
  kind: ChoiceKind;
  promptTokens: Token[];
  maxTokens: number;
  stop: string[];
  body: CompletionRequest | ChatRequest;
}

export function addOpenAiRoutes(app: Hono, service: WorkerService): void {
  app.get("/v1/models", (c) =>
    c.json({ object: "list", data: [{ id: service.config.modelRef, object: "model", created: STARTED_AT, owned_by: "rbee" }] }),
  );

  app.post("/v1/completions", async (c) => {
    const body = await readJson(c, CompletionRequest);
    const prompt = typeof body.prompt === "string" ? body.prompt : body.prompt[0];
    const promptTokens = completionTokens(service.model, prompt);
    return respond(c, service, { kind: "text_completion", promptTokens, maxTokens: body.max_tokens, stop: stopList(body.stop ?? undefined), body });
  });

  app.post("/v1/chat/completions", async (c) => {
    const body = await readJson(c, ChatRequest);
    const engine = service.requireEngine();
    const messages = body.messages.map((m) => ({ role: m.role === "developer" ? ("system" as const) : m.role, content: messageText(m.content) }));
    const chat = await chatTokens(service.model, messages);
    const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? Math.max(1, engine.ctxPerSlot - chat.tokens.length);
    const stop = [...stopList(body.stop ?? undefined), ...chat.stop];
    return respond(c, service, { kind: "chat.completion", promptTokens: chat.tokens, maxTokens, stop, body });
  });
}

const STARTED_AT = Math.floor(Date.now() / 1000);

async function respond(c: Context, service: WorkerService, job: Job): Promise<Response> {
  const engine = service.requireEngine();
  engine.check({ promptTokens: job.promptTokens, maxTokens: job.maxTokens });
  const { body } = job;
  const constraint = constraintOf(body.response_format);
  const grammar = constraint && (await service.grammars.for(constraint));
  const vocabSize = service.shape.vocab;
  // One generation per choice; each samples with its own seed (seed + index) and grammar state.
  const requests = Array.from({ length: body.n }, (_, index): GenerationRequest => ({
    ...samplingOf(body, index, vocabSize),
    grammar,
    promptTokens: job.promptTokens,
    maxTokens: job.maxTokens,
    stop: grammar ? [...job.stop, ...grammarStopStrings(grammar)] : job.stop,
    trimEnd: grammar?.trimWhitespaceSuffix,
    ignoreEos: body.ignore_eos,
    cachePrompt: body.cache_prompt,
  }));
  const head = { id: `${job.kind === "chat.completion" ? "chatcmpl" : "cmpl"}-${crypto.randomUUID()}`, created: Math.floor(Date.now() / 1000), model: body.model ?? service.config.modelRef };

  if (!body.stream) {
    const results = await Promise.all(requests.map((r) => engine.submit({ ...r, signal: c.req.raw.signal })));
    results.forEach(failOnError);
    return c.json(response(job.kind, head, results));
  }

  const chunk = chunks(job.kind, head);
  return dataOnlySseResponse(c, async (sink) => {
    const send = (data: unknown) => sink.send(undefined, data);
    requests.forEach((_, index) => {
      const opening = chunk.opening(index);
      if (opening) send(opening);
    });
    const results = await Promise.all(
      requests.map((r, index) =>
        engine.submit({ ...r, signal: sink.signal, onText: (text) => send(chunk.text(index, text)) }).then((result) => {
          if (result.stopReason !== "cancelled" && result.stopReason !== "error") send(chunk.closing(index, result));
          return result;
        }),
      ),
    );
    if (results.some((r) => r.stopReason === "cancelled")) return;
    const failed = results.find((r) => r.stopReason === "error");
    if (failed) {
      send({ error: { code: "INTERNAL", message: failed.error ?? "generation failed" } });
      return;
    }
    if (body.stream_options?.include_usage) send(chunk.usage(results));
    send("[DONE]");
  });
}

function failOnError(result: GenerationResult): void {
  if (result.stopReason === "error") throw new RbeeError("INTERNAL", result.error ?? "generation failed");
  if (result.stopReason === "cancelled") throw new RbeeError("SHUTTING_DOWN", "the request was cancelled");
}
