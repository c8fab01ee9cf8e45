// Reads a server-sent event stream into {event, data} records, as a client would.
export interface SseEvent {
  event: string;
  data: string;
}

export async function* readSse(res: Response): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of res.body!) {
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf("\n\n")) !== -1) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      yield { event, data: data.join("\n") };
    }
  }
}

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
