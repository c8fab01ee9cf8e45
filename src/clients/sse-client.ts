// Reads a server-sent event stream from a fetch Response: the client side of src/http/sse.ts, for rbee's own clients and
// the dashboard in the browser (a reader, not async iteration of the body, which not every browser has).
export interface SseMessage {
  event: string;
  data: string;
}

export async function* readEvents(res: Response): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder();
  const reader = res.body!.getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
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
