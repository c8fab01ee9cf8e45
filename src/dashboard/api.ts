// The dashboard's calls to its queen: the API key kept in this browser, JSON errors as messages, and server-sent
// events read from a fetch body (EventSource cannot send the key).
import { readEvents as sseMessages, type SseMessage } from "../clients/sse-client";

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

/** Calls `onEvent` for each event of the body until it ends (or its request is aborted, which throws). */
export async function readEvents(res: Response, onEvent: (e: SseMessage) => void): Promise<void> {
  for await (const e of sseMessages(res)) onEvent(e);
}
