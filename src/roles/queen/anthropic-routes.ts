// Anthropic's Messages API on the queen: /v1/messages (whole or streamed as Anthropic's events) and
// /v1/messages/count_tokens, relayed to workers through the Anthropic dialect's translation (dialects/anthropic.ts).
// Errors in Anthropic's shape; the key may come as x-api-key (http/app.ts).
import { type Context, Hono } from "hono";
import { AnthropicStream, chatRequest, countRequest } from "../../dialects/anthropic";
import { anthropicError } from "../../wire/errors";
import { asRbeeError } from "../../errors";
import { writtenResponse } from "../../http/sse";
import { readJson } from "../../http/validate";
import { CountTokensRequest, MessagesRequest } from "../../wire/anthropic";
import type { QueenDeps } from "./server";
import { openAiChunks, openAiJson } from "./worker-calls";

export function addAnthropicRoutes(app: Hono, deps: QueenDeps): void {
  // Errors in Anthropic's shape: the app's error handler chooses it by the path (wire/errors.ts).
  const messages = new Hono();

  messages.post("/", async (c) => {
    const body = await readJson(c, MessagesRequest);
    const translated = new AnthropicStream(body.model);
    const chunks = openAiChunks(deps, { model: body.model, path: "/v1/chat/completions", body: chatRequest(body), signal: c.req.raw.signal });
    if (!body.stream) {
      for await (const chunk of chunks) translated.push(chunk);
      translated.end();
      return c.json(translated.message());
    }
    // The first chunk before the headers: a request the worker refuses gets its error as an HTTP status.
    const first = await chunks.next();
    return writtenResponse(c, "text/event-stream", async (out) => {
      const send = (events: { event: string; data: unknown }[]) => {
        for (const e of events) out.write(`event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`);
      };
      try {
        send([translated.start()]);
        if (!first.done) send(translated.push(first.value));
        for await (const chunk of chunks) send(translated.push(chunk));
        send(translated.end());
      } catch (err) {
        const rbee = asRbeeError(err);
        send([{ event: "error", data: anthropicError(rbee) }]);
      }
    });
  });

  messages.post("/count_tokens", async (c: Context) => {
    const body = await readJson(c, CountTokensRequest);
    const counted = await openAiJson(deps, { model: body.model, path: "/v1/chat/count_tokens", body: countRequest(body), signal: c.req.raw.signal });
    return c.json({ input_tokens: counted.prompt_tokens });
  });

  app.route("/v1/messages", messages);
}
