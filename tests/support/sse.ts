// Reads a server-sent event stream into {event, data} records, as a client would.
export type { SseMessage as SseEvent } from "../../src/clients/sse-client";
import { readEvents, type SseMessage as SseEvent } from "../../src/clients/sse-client";

export const readSse = readEvents;

export async function collectSse(res: Response): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  for await (const e of readSse(res)) events.push(e);
  return events;
}

export function postJson(url: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), ...init });
}

/** Reads events until one named `name` (keeping the stream open, unlike breaking out of for-await). */
export async function until(events: AsyncGenerator<SseEvent>, name: string): Promise<SseEvent> {
  for (;;) {
    const { value, done } = await events.next();
    if (done) throw new Error(`the stream ended before a "${name}" event`);
    if (value.event === name) return value;
  }
}
