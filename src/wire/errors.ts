// rbee's error codes in each dialect's own error shape, from one table: OpenAI's {error: {message, type, param, code}}
// (OpenAI's type, and its code where it has one: LiteLLM and LangChain trim a conversation on context_length_exceeded,
// retry on rate_limit_exceeded), with rbee's code beside it; Anthropic's {type: "error", error: {type, message}};
// Ollama's {error}; llama-server's {error: {code: HTTP status, message, type}}. rbee's own routes keep {error: {code, message}}.
import type { ErrorCode, RbeeError } from "../errors";
import { LLAMACPP_PATHS } from "./llamacpp";
import { OPENAI_PATHS } from "./openai";

interface DialectCodes {
  /** OpenAI's error type. */
  openaiType: "invalid_request_error" | "authentication_error" | "permission_error" | "not_found_error" | "rate_limit_error" | "server_error";
  /** OpenAI's error code, where it has one for this; else rbee's own goes there too. */
  openaiCode?: string;
  /** The request field at fault, as OpenAI names it. */
  param?: string;
  anthropicType: "invalid_request_error" | "authentication_error" | "permission_error" | "not_found_error" | "request_too_large" | "rate_limit_error" | "api_error" | "overloaded_error";
}

const invalid = { openaiType: "invalid_request_error", anthropicType: "invalid_request_error" } as const;
const server = { openaiType: "server_error", anthropicType: "api_error" } as const;
const overloaded = { openaiType: "server_error", anthropicType: "overloaded_error" } as const;

export const ERROR_DIALECTS: Record<ErrorCode, DialectCodes> = {
  BAD_REQUEST: invalid,
  UNAUTHORIZED: { openaiType: "authentication_error", openaiCode: "invalid_api_key", anthropicType: "authentication_error" },
  NOT_FOUND: { openaiType: "not_found_error", anthropicType: "not_found_error" },
  MODEL_NOT_FOUND: { openaiType: "invalid_request_error", openaiCode: "model_not_found", param: "model", anthropicType: "not_found_error" },
  CONTEXT_OVERFLOW: { ...invalid, openaiCode: "context_length_exceeded", param: "messages" },
  PAYLOAD_TOO_LARGE: { openaiType: "invalid_request_error", anthropicType: "request_too_large" },
  FORBIDDEN: { openaiType: "permission_error", anthropicType: "permission_error" },
  RATE_LIMITED: { openaiType: "rate_limit_error", openaiCode: "rate_limit_exceeded", anthropicType: "rate_limit_error" },
  INVALID_MODEL: invalid,
  NOT_READY: overloaded,
  QUEUE_FULL: { openaiType: "rate_limit_error", openaiCode: "rate_limit_exceeded", anthropicType: "overloaded_error" },
  INSUFFICIENT_VRAM: server,
  INSUFFICIENT_MEMORY: server,
  DISK_FULL: server,
  UPSTREAM_UNREACHABLE: overloaded,
  UPSTREAM_REFUSED: server,
  CHECKSUM_MISMATCH: server,
  MODEL_MISSING: invalid,
  MODEL_KEPT: invalid,
  WORKER_FAILED: server,
  TIMEOUT: server,
  UNREACHABLE: server,
  AUTH_FAILED: server,
  HOST_KEY_UNKNOWN: server,
  HOST_KEY_MISMATCH: server,
  RBEE_MISSING: server,
  INTERRUPTED: invalid,
  BACKEND_UNAVAILABLE: overloaded,
  SHUTTING_DOWN: overloaded,
  INTERNAL: server,
};

export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string; rbee_code: ErrorCode };
}

export function openAiError(err: Pick<RbeeError, "code" | "message">): OpenAiErrorBody {
  const d = ERROR_DIALECTS[err.code];
  return { error: { message: err.message, type: d.openaiType, param: d.param ?? null, code: d.openaiCode ?? err.code, rbee_code: err.code } };
}

export function anthropicError(err: Pick<RbeeError, "code" | "message">) {
  return { type: "error" as const, error: { type: ERROR_DIALECTS[err.code].anthropicType, message: err.message } };
}

/** llama-server's shape: OpenAI's fields with the HTTP status as the code (rbee's beside it). */
export function llamaCppError(err: Pick<RbeeError, "code" | "message" | "status">) {
  const type = err.code === "NOT_READY" || err.code === "SHUTTING_DOWN" ? "unavailable_error" : ERROR_DIALECTS[err.code].openaiType;
  return { error: { code: err.status, message: err.message, type, rbee_code: err.code } };
}

export function ollamaError(err: Pick<RbeeError, "code" | "message">) {
  return { error: err.message, code: err.code };
}

/** An error as the route's clients read it, by the dialect its path belongs to; rbee's own shape elsewhere. */
export function errorBodyFor(path: string, err: RbeeError): object {
  if (OPENAI_PATHS.has(path) || path.startsWith("/v1/responses/") || path.startsWith("/responses/")) return openAiError(err);
  if (LLAMACPP_PATHS.has(path)) return llamaCppError(err);
  if (path === "/v1/messages" || path.startsWith("/v1/messages/")) return anthropicError(err);
  if (path.startsWith("/api/")) return ollamaError(err);
  return err.toJSON();
}

/** rbee's code from an error body of any of these shapes (rbee_code where OpenAI's code stands in `code`). */
export function rbeeCodeOf(body: unknown): string | undefined {
  const error = (body as { error?: { rbee_code?: unknown; code?: unknown } } | null)?.error;
  const code = error?.rbee_code ?? error?.code;
  return typeof code === "string" ? code : undefined;
}
