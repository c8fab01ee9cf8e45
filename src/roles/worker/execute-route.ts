// rbee's own task call: POST /v1/execute (alias /execute) streams `started`, `token`, `end` or `error` events.
import type { Context, Hono } from "hono";
import { sseResponse } from "../../http/sse";
import { readJson } from "../../http/validate";
import { completionTokens } from "../../inference/prompt";
import { ExecuteRequest, stopList } from "../../wire/worker";
import type { WorkerService } from "./service";

export function addExecuteRoutes(app: Hono, service: WorkerService): void {
  const execute = async (c: Context) => {
    const body = await readJson(c, ExecuteRequest);
    const engine = service.requireEngine();
    service.checkTextFits(body.prompt.length, "the prompt");
    const promptTokens = completionTokens(service.model, body.prompt);
    engine.check({ promptTokens, maxTokens: body.max_tokens });
    const requestId = crypto.randomUUID();
    return sseResponse(c, async (sink) => {
      const result = await engine.submit({
        promptTokens,
        maxTokens: body.max_tokens,
        temperature: body.temperature,
        topP: body.top_p,
        seed: body.seed,
        stop: stopList(body.stop),
        ignoreEos: body.ignore_eos,
        cachePrompt: body.cache_prompt,
        signal: sink.signal,
        onStart: ({ slot, queuedMs, cachedTokens }) =>
          sink.send("started", { request_id: requestId, slot, queued_ms: queuedMs, prompt_tokens: promptTokens.length, cached_tokens: cachedTokens }),
        onText: (t, i) => sink.send("token", { t, i }),
      });
      if (result.stopReason === "error") sink.send("error", { code: "INTERNAL", message: result.error ?? "generation failed" });
      // Cancelled while the client still listens: the worker is going away, and says so.
      else if (result.stopReason === "cancelled") {
        if (!sink.signal.aborted) sink.send("error", { code: "SHUTTING_DOWN", message: "the worker stopped before the answer was complete" });
      } else
        sink.send("end", { tokens_out: result.tokensOut, stop_reason: result.stopReason, ttft_ms: result.ttftMs, tokens_per_s: result.tokensPerS });
    });
  };
  app.post("/v1/execute", execute);
  app.post("/execute", execute);
}
