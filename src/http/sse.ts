// Server-sent events on top of hono's streamSSE: typed events, and an abort signal for client disconnects.
import type { Context } from "hono";
import { streamSSE, type SSEStreamingApi } from "hono/streaming";

export interface EventSink {
  send(event: string, data: unknown): Promise<void>;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

export function sseResponse(c: Context, body: (sink: EventSink) => Promise<void>): Response {
  return streamSSE(c, async (stream) => {
    await body(sinkFor(stream, c.req.raw.signal));
  });
}

/** OpenAI's flavour: unnamed `data:` lines ending with `data: [DONE]`. */
export function dataOnlySseResponse(c: Context, body: (sink: EventSink) => Promise<void>): Response {
  return streamSSE(c, async (stream) => {
    const signal = linkedAbort(stream, c.req.raw.signal);
    await body({ signal, send: (_event, data) => stream.writeSSE({ data: typeof data === "string" ? data : JSON.stringify(data) }) });
  });
}

function sinkFor(stream: SSEStreamingApi, requestSignal: AbortSignal): EventSink {
  const signal = linkedAbort(stream, requestSignal);
  return { signal, send: (event, data) => stream.writeSSE({ event, data: JSON.stringify(data) }) };
}

function linkedAbort(stream: SSEStreamingApi, requestSignal: AbortSignal): AbortSignal {
  const controller = new AbortController();
  const abort = () => controller.abort();
  stream.onAbort(abort);
  if (requestSignal.aborted) abort();
  else requestSignal.addEventListener("abort", abort, { once: true });
  return controller.signal;
}
