// The dashboard's calls to its queen: the API key kept in this browser, JSON errors as messages, and server-sent
// events read from a fetch body (EventSource cannot send the key).
const KEY = "rbee-api-key";

export const apiKey = {
  get: () => localStorage.getItem(KEY) ?? "",
  set: (key: string) => (key ? localStorage.setItem(KEY, key) : localStorage.removeItem(KEY)),
};

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function api(path: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (apiKey.get()) headers.set("authorization", `Bearer ${apiKey.get()}`);
  if (init.json !== undefined) headers.set("content-type", "application/json");
  const res = await fetch(path, { ...init, headers, body: init.json !== undefined ? JSON.stringify(init.json) : init.body });
  if (!res.ok) throw new ApiError(res.status, await messageOf(res));
  return res;
}

export async function apiJson<T>(path: string, init: RequestInit & { json?: unknown } = {}): Promise<T> {
  return (await api(path, init)).json() as Promise<T>;
}

async function messageOf(res: Response): Promise<string> {
  const text = await res.text();
  try {
    const parsed = JSON.parse(text);
    return parsed?.error?.message ?? parsed?.error ?? text;
  } catch {
    return text || `HTTP ${res.status}`;
  }
}

export interface ServerEvent {
  event: string;
  data: string;
}

/** Calls `onEvent` for each event of the body until it ends or `signal` aborts. */
export async function readEvents(res: Response, onEvent: (e: ServerEvent) => void): Promise<void> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf("\n\n")) !== -1) {
      const record = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data: string[] = [];
      for (const line of record.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent({ event, data: data.join("\n") });
    }
  }
}
