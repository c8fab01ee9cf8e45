// OpenAI's Responses API on the queen: POST /v1/responses (whole, or streamed as the Responses API's events), relayed to
// workers as chat through the dialect's translation (dialects/responses.ts); responses kept in responses.db unless
// store is false, continued by previous_response_id, read and deleted by id. Each route also without /v1.
import type { Context, Hono } from "hono";
import { chatRequest, inputItemsOf, type ResponsesEvent, ResponsesStream } from "../../dialects/responses";
import { asRbeeError } from "../../errors";
import { writtenResponse } from "../../http/sse";
import { readJson } from "../../http/validate";
import { openAiError } from "../../wire/errors";
import { openAiPaths } from "../../wire/openai";
import { ResponsesRequest } from "../../wire/responses";
import type { ResponseStore } from "./response-store";
import type { QueenDeps } from "./server";
import { openAiChunks } from "./worker-calls";

export function addResponsesRoutes(app: Hono, deps: QueenDeps & { responses: ResponseStore }): void {
  const store = deps.responses;

  app.on("POST", openAiPaths("/responses"), async (c: Context) => {
    const body = await readJson(c, ResponsesRequest);
    const history = body.previous_response_id ? store.conversation(body.previous_response_id) : [];
    const items = inputItemsOf(body.input);
    const translated = new ResponsesStream(body);
    const chunks = openAiChunks(deps, { model: body.model, node: body.node, path: "/v1/chat/completions", body: chatRequest(body, history, items), signal: c.req.raw.signal });
    const keep = () => body.store && store.save(translated.response(), items, [...history, ...items, ...translated.items()]);
    if (!body.stream) {
      for await (const chunk of chunks) translated.push(chunk);
      translated.end();
      keep();
      return c.json(translated.response());
    }
    // The first chunk before the headers: a request the worker refuses gets its error as an HTTP status.
    const first = await chunks.next();
    return writtenResponse(c, "text/event-stream", async (out) => {
      const send = (events: ResponsesEvent[]) => {
        for (const e of events) out.write(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
      };
      try {
        send(translated.start());
        if (!first.done) send(translated.push(first.value));
        for await (const chunk of chunks) send(translated.push(chunk));
        const ending = translated.end();
        keep();
        send(ending);
      } catch (err) {
        const { error } = openAiError(asRbeeError(err));
        send([translated.failure(error)]);
      }
    });
  });

  for (const path of openAiPaths("/responses/:id")) {
    app.get(path, (c) => c.json(store.get(c.req.param("id")!)));
    app.delete(path, (c) => {
      const id = c.req.param("id")!;
      store.delete(id);
      return c.json({ id, object: "response", deleted: true });
    });
    app.get(`${path}/input_items`, (c) => {
      const data = store.input(c.req.param("id")!);
      return c.json({ object: "list", data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: false });
    });
  }
}
