// JSON over HTTP to another rbee process: bearer token, timeouts, and rbee's error shape turned back into RbeeError.
import { type ErrorCode, ERROR_STATUS, RbeeError } from "../errors";
import { rbeeCodeOf } from "../wire/errors";

export interface RequestOptions {
  timeoutMs?: number;
  /** The caller's own cancellation (Ctrl-C): its abort is passed through, not turned into "cannot reach". */
  signal?: AbortSignal;
}

export class RbeeHttpClient {
  constructor(
    readonly baseUrl: string,
    private readonly token?: string,
  ) {}

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { "content-type": "application/json", ...(this.token && { authorization: `Bearer ${this.token}` }), ...extra };
  }

  async request(method: string, path: string, body?: unknown, { timeoutMs, signal }: RequestOptions = {}): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: this.headers(),
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: timeoutMs ? (signal ? AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs)) : signal,
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new RbeeError("UPSTREAM_UNREACHABLE", `cannot reach ${this.baseUrl}: ${err instanceof Error ? err.message : err}`);
    }
    if (!res.ok) throw await errorFrom(res);
    return res;
  }

  async json<T>(method: string, path: string, body?: unknown, options?: RequestOptions): Promise<T> {
    return (await (await this.request(method, path, body, options)).json()) as T;
  }

  async isUp(timeoutMs = 1000): Promise<boolean> {
    try {
      return (await fetch(`${this.baseUrl}/v1/health`, { signal: AbortSignal.timeout(timeoutMs) })).ok;
    } catch {
      return false;
    }
  }
}

export async function errorFrom(res: Response): Promise<RbeeError> {
  const text = await res.text();
  try {
    const body = JSON.parse(text) as { error: { message: string } };
    // rbee's code, also where an OpenAI route put OpenAI's code in `code` (wire/errors.ts).
    const given = rbeeCodeOf(body) ?? "INTERNAL";
    const code = (given in ERROR_STATUS ? given : "INTERNAL") as ErrorCode;
    return new RbeeError(code, body.error.message);
  } catch {
    return new RbeeError("INTERNAL", `HTTP ${res.status}: ${text.slice(0, 200)}`);
  }
}
