// OpenAI-compatible routes: /v1/completions, /v1/chat/completions (streamed or not) and /v1/models. The dialect's
// translation is dialects/openai.ts; here its requests meet this worker's engine.
import type { Context, Hono } from "hono";
import type { LlamaGrammar, Token } from "node-llama-cpp";
import { callId, chatMessagesOf, chunks, constraintOf, echoOf, logprobsOf, response, samplingOf, toolsOf, type ChoiceKind } from "../../dialects/openai";
import { RbeeError } from "../../errors";
import { openAiError } from "../../wire/errors";
import { dataOnlySseResponse } from "../../http/sse";
import { readJson } from "../../http/validate";
import { type TokenLogprob, tokenPiece } from "../../inference/addon";
import type { GenerationRequest, GenerationResult } from "../../inference/engine";
import { grammarStopStrings } from "../../inference/grammars";
import { chatTokens, completionTokens, type ToolCall } from "../../inference/prompt";
import { type CallSyntax, ToolCallParser } from "../../inference/tool-calls";
import { ChatRequest, CompletionRequest, openAiPaths } from "../../wire/openai";
import { stopList } from "../../wire/worker";
import { throwIfFailed, type WorkerService } from "./service";

interface Job {
  kind: ChoiceKind;
  promptTokens: Token[];
  maxTokens: number;
  stop: string[];
  body: CompletionRequest | ChatRequest;
  /** Where tools were offered: how calls are written, the grammar they must follow, whether the prompt opened one. */
  tools?: { syntax: CallSyntax; grammar: LlamaGrammar; prefilled: boolean };
  /** Text each choice starts with (completions' echo: the prompt). */
  echo?: string;
}

export function addOpenAiRoutes(app: Hono, service: WorkerService): void {
  app.on("GET", openAiPaths("/models"), (c) =>
    c.json({ object: "list", data: [{ id: service.config.modelRef, object: "model", created: STARTED_AT, owned_by: "rbee" }] }),
  );

  app.on("POST", openAiPaths("/completions"), async (c) => {
    const body = await readJson(c, CompletionRequest);
    const prompt = typeof body.prompt === "string" ? body.prompt : body.prompt[0];
    const echo = echoOf(body, prompt);
    service.checkTextFits(prompt.length, "the prompt");
    const promptTokens = completionTokens(service.model, prompt);
    const context = Math.min(service.requireEngine().ctxPerSlot, body.context_tokens ?? Infinity);
    const maxTokens = body.max_tokens ?? (body.context_tokens ? Math.max(1, context - promptTokens.length) : OPENAI_COMPLETION_MAX_TOKENS);
    return respond(c, service, { kind: "text_completion", promptTokens, maxTokens, stop: stopList(body.stop ?? undefined), body, echo });
  });

  // rbee's: how many tokens a chat request's prompt takes through the template (Anthropic's count_tokens asks).
  app.post("/v1/chat/count_tokens", async (c) => {
    const body = await readJson(c, ChatRequest);
    const { tools, mode } = toolsOf(body);
    const chat = await chatTokens(service.model, chatMessagesOf(body.messages), { tools, mode });
    return c.json({ prompt_tokens: chat.tokens.length });
  });

  app.on("POST", openAiPaths("/chat/completions"), async (c) => {
    const body = await readJson(c, ChatRequest);
    const engine = service.requireEngine();
    service.checkTextFits(chatChars(body), "the messages");
    const { tools, mode, parallel } = toolsOf(body);
    const chat = await chatTokens(service.model, chatMessagesOf(body.messages), { tools, mode });
    const context = Math.min(engine.ctxPerSlot, body.context_tokens ?? Infinity);
    const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? Math.max(1, context - chat.tokens.length);
    const stop = [...stopList(body.stop ?? undefined), ...chat.stop];
    const grammar = chat.callSyntax && (await service.grammars.forTools(chat.callSyntax, tools, mode, parallel));
    const toolUse = chat.callSyntax && grammar ? { syntax: chat.callSyntax, grammar, prefilled: chat.prefilled } : undefined;
    return respond(c, service, { kind: "chat.completion", promptTokens: chat.tokens, maxTokens, stop, body, tools: toolUse });
  });
}

const STARTED_AT = Math.floor(Date.now() / 1000);
/** OpenAI's default max_tokens for completions. */
const OPENAI_COMPLETION_MAX_TOKENS = 16;

async function respond(c: Context, service: WorkerService, job: Job): Promise<Response> {
  const engine = service.requireEngine();
  engine.check({ promptTokens: job.promptTokens, maxTokens: job.maxTokens });
  const { body } = job;
  if (body.context_tokens !== undefined && job.promptTokens.length + job.maxTokens > body.context_tokens)
    throw new RbeeError("CONTEXT_OVERFLOW", `prompt (${job.promptTokens.length} tokens) + max_tokens (${job.maxTokens}) exceeds the context of ${body.context_tokens} tokens this request allows (context_tokens, Ollama's num_ctx)`);
  const constraint = constraintOf(body);
  const formatGrammar = constraint && (await service.grammars.for(constraint));
  const grammar = job.tools?.grammar ?? formatGrammar;
  const vocabSize = service.shape.vocab;
  const logprobs = logprobsOf(body);
  if (logprobs && engine.sampling !== "batched") throw new RbeeError("BAD_REQUEST", "logprobs need rbee's rebuilt addon, which this worker does not have (bun scripts/build-addon.ts)");
  const pieceOf = (token: number) => tokenPiece(service.model, token);
  // One generation per choice; each samples with its own seed (seed + index) and grammar state.
  const requests = Array.from({ length: body.n }, (_, index): GenerationRequest => ({
    ...samplingOf(body, index, vocabSize),
    grammar,
    promptTokens: job.promptTokens,
    maxTokens: job.maxTokens,
    stop: [...job.stop, ...grammarStopStrings(formatGrammar)],
    trimEnd: formatGrammar?.trimWhitespaceSuffix,
    ignoreEos: body.ignore_eos,
    cachePrompt: body.cache_prompt,
    logprobs,
  }));
  const head = { id: `${job.kind === "chat.completion" ? "chatcmpl" : "cmpl"}-${crypto.randomUUID()}`, created: Math.floor(Date.now() / 1000), model: body.model ?? service.config.modelRef };
  const parsers = requests.map(() => (job.tools ? new ToolCallParser(job.tools.syntax, job.tools.prefilled) : undefined));

  if (!body.stream) {
    const results = await Promise.all(requests.map((r) => engine.submit({ ...r, signal: c.req.raw.signal })));
    results.forEach(throwIfFailed);
    const replies = results.map((result, i) => replyOf((job.echo ?? "") + result.text, parsers[i]));
    return c.json(response(job.kind, head, results, { replies, pieceOf }));
  }

  const chunk = chunks(job.kind, head, pieceOf);
  return dataOnlySseResponse(c, async (sink) => {
    const send = (data: unknown) => sink.send(undefined, data);
    requests.forEach((_, index) => {
      const opening = chunk.opening(index);
      if (opening) send(opening);
      if (job.echo) send(chunk.text(index, job.echo));
    });
    const results = await Promise.all(
      requests.map((r, index) => {
        const parser = parsers[index];
        const ids: string[] = [];
        const sendTool = (events: ReturnType<ToolCallParser["push"]>) => {
          for (const event of events) {
            if (event.kind === "call") ids[event.index] = callId();
            send(chunk.tool(index, event, event.kind === "text" ? "" : ids[event.index]!));
          }
        };
        const onText = parser
          ? (text: string) => sendTool(parser.push(text))
          : (text: string, _token: number, lp?: TokenLogprob[]) => send(chunk.text(index, text, lp));
        return engine.submit({ ...r, signal: sink.signal, onText }).then((result) => {
          if (result.stopReason === "cancelled" || result.stopReason === "error") return result;
          if (parser) sendTool(parser.finish());
          send(chunk.closing(index, result, parser?.calls.length ?? 0));
          return result;
        });
      }),
    );
    if (results.some((r) => r.stopReason === "cancelled")) {
      // Cancelled while the client still listens: the worker is going away, and says so.
      if (!sink.signal.aborted) send(openAiError({ code: "SHUTTING_DOWN", message: "the worker stopped before the answer was complete" }));
      return;
    }
    const failed = results.find((r) => r.stopReason === "error");
    if (failed) {
      send(openAiError({ code: "INTERNAL", message: failed.error ?? "generation failed" }));
      return;
    }
    if (body.stream_options?.include_usage) send(chunk.usage(results));
    send("[DONE]");
  });
}

/** The characters a chat request brings to its prompt (messages and tools), before the template adds its own. */
function chatChars(body: ChatRequest): number {
  const text = (m: ChatRequest["messages"][number]) =>
    typeof m.content === "string" ? m.content.length : (m.content ?? []).reduce((sum, part) => sum + part.text.length, 0);
  const calls = (m: ChatRequest["messages"][number]) => (m.role === "assistant" ? JSON.stringify(m.tool_calls ?? []).length : 0);
  return body.messages.reduce((sum, m) => sum + text(m) + calls(m), 0) + (body.tools ? JSON.stringify(body.tools).length : 0);
}

/** A choice's text as OpenAI's message: plain content, or the calls the model wrote in its tool syntax. */
function replyOf(text: string, parser: ToolCallParser | undefined): { content: string; calls: ToolCall[] } {
  if (!parser) return { content: text, calls: [] };
  const events = [...parser.push(text), ...parser.finish()];
  const content = events.flatMap((e) => (e.kind === "text" ? [e.text] : [])).join("");
  return { content, calls: parser.calls.map((call) => ({ id: callId(), name: call.name, arguments: call.arguments })) };
}
