// OpenAI-compatible routes: /v1/completions, /v1/chat/completions (streamed or not) and /v1/models.
import type { Context, Hono } from "hono";
import type { Token } from "node-llama-cpp";
import { RbeeError } from "../../errors";
import { dataOnlySseResponse } from "../../http/sse";
import { readJson } from "../../http/validate";
import type { GenerationResult } from "../../inference/engine";
import { chatTokens, completionTokens } from "../../inference/prompt";
import { ChatRequest, CompletionRequest, messageText, usage } from "../../wire/openai";
import { stopList } from "../../wire/worker";
import type { WorkerService } from "./service";

interface Job {
  kind: "text_completion" | "chat.completion";
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

function respond(c: Context, service: WorkerService, job: Job): Response | Promise<Response> {
  const engine = service.requireEngine();
  engine.check({ promptTokens: job.promptTokens, maxTokens: job.maxTokens });
  const id = `${job.kind === "chat.completion" ? "chatcmpl" : "cmpl"}-${crypto.randomUUID()}`;
  const created = Math.floor(Date.now() / 1000);
  const model = job.body.model ?? service.config.modelRef;
  const request = {
    promptTokens: job.promptTokens,
    maxTokens: job.maxTokens,
    temperature: job.body.temperature,
    topP: job.body.top_p,
    seed: job.body.seed,
    stop: job.stop,
    ignoreEos: job.body.ignore_eos,
    cachePrompt: job.body.cache_prompt,
  };
  const chat = job.kind === "chat.completion";

  if (!job.body.stream) {
    return engine.submit({ ...request, signal: c.req.raw.signal }).then((result) => {
      failOnError(result);
      const finish_reason = finishReason(result);
      const choice = chat
        ? { index: 0, message: { role: "assistant", content: result.text }, finish_reason, logprobs: null }
        : { index: 0, text: result.text, finish_reason, logprobs: null };
      return c.json({ id, object: job.kind, created, model, choices: [choice], usage: usage(result) });
    });
  }

  const object = chat ? "chat.completion.chunk" : "text_completion";
  const chunk = (choice: Record<string, unknown>) => ({ id, object, created, model, choices: [{ index: 0, logprobs: null, finish_reason: null, ...choice }] });
  return dataOnlySseResponse(c, async (sink) => {
    const send = (data: unknown) => sink.send(undefined, data);
    if (chat) send(chunk({ delta: { role: "assistant", content: "" } }));
    const result = await engine.submit({
      ...request,
      signal: sink.signal,
      onText: (text) => send(chunk(chat ? { delta: { content: text } } : { text })),
    });
    if (result.stopReason === "cancelled") return;
    if (result.stopReason === "error") {
      send({ error: { code: "INTERNAL", message: result.error ?? "generation failed" } });
      return;
    }
    send(chunk(chat ? { delta: {}, finish_reason: finishReason(result) } : { text: "", finish_reason: finishReason(result) }));
    if (job.body.stream_options?.include_usage) send({ id, object, created, model, choices: [], usage: usage(result) });
    send("[DONE]");
  });
}

function finishReason(result: GenerationResult): "stop" | "length" {
  return result.stopReason === "length" ? "length" : "stop";
}

function failOnError(result: GenerationResult): void {
  if (result.stopReason === "error") throw new RbeeError("INTERNAL", result.error ?? "generation failed");
  if (result.stopReason === "cancelled") throw new RbeeError("SHUTTING_DOWN", "the request was cancelled");
}
