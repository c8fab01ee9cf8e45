// llama-server's own routes on the worker: /completion (whole or streamed), /tokenize, /detokenize, /apply-template,
// /props, /health and /slots. The dialect's translation is dialects/llamacpp.ts; here its requests meet the engine.
import type { Hono } from "hono";
import type { Token } from "node-llama-cpp";
import { final, health, maxTokensOf, partial, probabilitiesOf, promptTokensOf, props, samplingOf, slotsOf, constraintOf, tokenizeResponse } from "../../dialects/llamacpp";
import { chatMessagesOf, toolsOf } from "../../dialects/openai";
import { RbeeError } from "../../errors";
import { dataOnlySseResponse } from "../../http/sse";
import { readJson } from "../../http/validate";
import { tokenPiece } from "../../inference/addon";
import type { GenerationRequest } from "../../inference/engine";
import { grammarStopStrings } from "../../inference/grammars";
import { chatTokens, completionTokens } from "../../inference/prompt";
import { llamaCppError } from "../../wire/errors";
import { ApplyTemplateRequest, DetokenizeRequest, LlamaCompletionRequest, TokenizeRequest } from "../../wire/llamacpp";
import { stopList } from "../../wire/worker";
import { throwIfFailed, type WorkerService } from "./service";

export function addLlamaCppRoutes(app: Hono, service: WorkerService): void {
  app.get("/health", (c) => {
    const ready = service.readiness().ready;
    return c.json(health(ready), ready ? 200 : 503);
  });

  app.get("/props", (c) => {
    const engine = service.requireEngine();
    const model = service.model;
    const piece = (token: Token | null) => (token === null ? "" : model.detokenize([token], true));
    return c.json(
      props({
        model: service.config.modelRef,
        modelPath: service.config.modelPath,
        ctxPerSlot: engine.ctxPerSlot,
        slots: engine.slotsTotal,
        chatTemplate: service.chatTemplate,
        bosToken: piece(model.tokens.bos),
        eosToken: piece(model.tokens.eos),
        engineRelease: service.readiness().engine?.release ?? "unknown",
      }),
    );
  });

  app.get("/slots", (c) => {
    const engine = service.requireEngine();
    return c.json(slotsOf(engine.slots(), engine.ctxPerSlot));
  });

  app.post("/tokenize", async (c) => {
    const body = await readJson(c, TokenizeRequest);
    const model = service.model;
    const tokenize = (text: string, first: boolean) => (first && body.add_special ? completionTokens(model, text, body.parse_special) : model.tokenize(text, body.parse_special));
    const tokens = typeof body.content === "string" && body.content === "" ? [] : promptTokensOf(body.content, tokenize, service.shape.vocab, "content");
    return c.json(tokenizeResponse(tokens, body.with_pieces, (token) => Buffer.from(tokenPiece(model, token), "utf8")));
  });

  app.post("/detokenize", async (c) => {
    const body = await readJson(c, DetokenizeRequest);
    const vocab = service.shape.vocab;
    const bad = body.tokens.find((t) => t >= vocab);
    if (bad !== undefined) throw new RbeeError("BAD_REQUEST", `tokens: token ${bad} is not in the model's vocabulary of ${vocab} tokens`);
    return c.json({ content: service.model.detokenize(body.tokens as Token[], true) });
  });

  app.post("/apply-template", async (c) => {
    const body = await readJson(c, ApplyTemplateRequest);
    const { tools, mode } = toolsOf(body);
    const chat = await chatTokens(service.model, chatMessagesOf(body.messages), { tools, mode });
    return c.json({ prompt: service.model.detokenize(chat.tokens, true) });
  });

  app.post("/completion", async (c) => {
    const body = await readJson(c, LlamaCompletionRequest);
    const engine = service.requireEngine();
    const model = service.model;
    if (typeof body.prompt === "string") service.checkTextFits(body.prompt.length, "the prompt");
    const promptTokens = promptTokensOf(body.prompt, (text, first) => (first ? completionTokens(model, text) : model.tokenize(text, false)), service.shape.vocab);
    if (!promptTokens.length) throw new RbeeError("BAD_REQUEST", "prompt: must not be empty");
    const maxTokens = maxTokensOf(body, promptTokens.length, engine.ctxPerSlot);
    engine.check({ promptTokens, maxTokens });
    const constraint = constraintOf(body);
    const grammar = constraint && (await service.grammars.for(constraint));
    const logprobs = body.n_probs ? { top: body.n_probs } : undefined;
    if (logprobs && engine.sampling !== "batched") throw new RbeeError("BAD_REQUEST", "n_probs needs rbee's rebuilt addon, which this worker does not have (bun scripts/build-addon.ts)");
    const pieceOf = (token: number) => tokenPiece(model, token);
    let slot = -1;
    const request: GenerationRequest = {
      ...samplingOf(body),
      grammar,
      promptTokens,
      maxTokens,
      stop: [...stopList(body.stop), ...grammarStopStrings(grammar)],
      trimEnd: grammar?.trimWhitespaceSuffix,
      ignoreEos: body.ignore_eos,
      cachePrompt: body.cache_prompt,
      logprobs,
      onStart: (info) => (slot = info.slot),
    };
    const head = () => ({ model: body.model ?? service.config.modelRef, prompt: typeof body.prompt === "string" ? body.prompt : model.detokenize(promptTokens, true), slot, maxTokens });

    if (!body.stream) {
      const result = await engine.submit({ ...request, signal: c.req.raw.signal });
      throwIfFailed(result);
      return c.json(final(body, head(), result, { content: result.text, probs: result.logprobs && probabilitiesOf(result.logprobs, pieceOf) }));
    }
    return dataOnlySseResponse(c, async (sink) => {
      const progress = { tokensOut: 0, promptTokens: promptTokens.length };
      const result = await engine.submit({
        ...request,
        signal: sink.signal,
        onText: (text, index, lp) => {
          progress.tokensOut = index + 1;
          sink.send(undefined, partial(text, slot, progress, lp && probabilitiesOf(lp, pieceOf)));
        },
      });
      if (result.stopReason === "cancelled") {
        if (!sink.signal.aborted) sink.send(undefined, llamaCppError(new RbeeError("SHUTTING_DOWN", "the worker stopped before the answer was complete")));
        return;
      }
      if (result.stopReason === "error") return sink.send(undefined, llamaCppError(new RbeeError("INTERNAL", result.error ?? "generation failed")));
      sink.send(undefined, final(body, head(), result, { content: "" }));
    });
  });
}
