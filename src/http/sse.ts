// Server-sent events: typed events written straight into the response stream, and an abort signal for client disconnects.
// Events are formatted here and enqueued without awaiting: a token is one short line, and hono's writeSSE
// (an async formatting pass and a writer round trip per event) cost a quarter of single-stream throughput.
import type { Context } from "hono";

export interface EventSink {
  /** Queues one event; never blocks the caller. */
  send(event: string | undefined, data: unknown): void;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

/** Settles once the client has gone: for streams that only follow something (a log, the cluster) until then. */
export function clientGone(sink: EventSink): Promise<void> {
  return new Promise((resolve) => (sink.signal.aborted ? resolve() : sink.signal.addEventListener("abort", () => resolve(), { once: true })));
}

const encoder = new TextEncoder();
const SSE_HEADERS = { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" };

/** `event:` + `data:` records (rbee's own streams). */
export function sseResponse(c: Context, body: (sink: EventSink) => Promise<void>): Response {
  return streamEvents(c, body, (event, data) => `event: ${event}\ndata: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`);
}

/** OpenAI's flavour: unnamed `data:` records, ending with `data: [DONE]`. */
export function dataOnlySseResponse(c: Context, body: (sink: EventSink) => Promise<void>): Response {
  return streamEvents(c, body, (_event, data) => `data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`);
}

function streamEvents(c: Context, body: (sink: EventSink) => Promise<void>, format: (event: string | undefined, data: unknown) => string): Response {
  const aborter = new AbortController();
  const requestSignal = c.req.raw.signal;
  if (requestSignal.aborted) aborter.abort();
  else requestSignal.addEventListener("abort", () => aborter.abort(), { once: true });
  let open = true;
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      const sink: EventSink = {
        signal: aborter.signal,
        send(event, data) {
          if (!open) return;
          try {
            controller.enqueue(encoder.encode(format(event, data)));
          } catch {
            open = false;
            aborter.abort();
          }
        },
      };
      void body(sink)
        .catch((err) => sink.send("error", { code: "INTERNAL", message: err instanceof Error ? err.message : String(err) }))
        .finally(() => {
          if (open) controller.close();
          open = false;
        });
    },
    cancel() {
      open = false;
      aborter.abort();
    },
  });
  return c.body(stream, 200, SSE_HEADERS);
}

/** Where a translated stream writes: each piece goes to the client at once; `signal` aborts when the client goes. */
export interface StreamWriter {
  write(text: string): void;
  signal: AbortSignal;
}

/**
 * A response whose body `body` writes piece by piece (a dialect's translated events or NDJSON lines), through Bun's
 * direct stream: each write is sent at once, with no queue and no promise per piece (hono's stream helpers await each
 * write, which cost a relayed token several microseconds more).
 */
export function writtenResponse(c: Context, contentType: string, body: (out: StreamWriter) => Promise<void>): Response {
  const aborter = new AbortController();
  const requestSignal = c.req.raw.signal;
  if (requestSignal.aborted) aborter.abort();
  else requestSignal.addEventListener("abort", () => aborter.abort(), { once: true });
  const source = {
    type: "direct",
    async pull(controller: { write(text: string): unknown; flush(): unknown; close(): void }) {
      const out: StreamWriter = {
        signal: aborter.signal,
        write(text) {
          if (aborter.signal.aborted) return;
          try {
            controller.write(text);
            controller.flush();
          } catch {
            aborter.abort();
          }
        },
      };
      try {
        await body(out);
      } finally {
        controller.close();
      }
    },
    cancel() {
      aborter.abort();
    },
  };
  return new Response(new ReadableStream(source as unknown as UnderlyingDefaultSource<Uint8Array>), { headers: { "content-type": contentType, "cache-control": "no-cache" } });
}
