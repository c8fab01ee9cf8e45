// The one error type every role throws: a stable code, mapped once to HTTP status and to CLI exit codes.
export const ERROR_STATUS = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  MODEL_NOT_FOUND: 404,
  CONTEXT_OVERFLOW: 400,
  PAYLOAD_TOO_LARGE: 413,
  FORBIDDEN: 403,
  RATE_LIMITED: 429,
  INVALID_MODEL: 422,
  NOT_READY: 503,
  QUEUE_FULL: 503,
  INSUFFICIENT_VRAM: 507,
  INSUFFICIENT_MEMORY: 507,
  DISK_FULL: 507,
  UPSTREAM_UNREACHABLE: 503,
  UPSTREAM_REFUSED: 502,
  CHECKSUM_MISMATCH: 502,
  MODEL_MISSING: 409,
  MODEL_KEPT: 409,
  WORKER_FAILED: 502,
  TIMEOUT: 504,
  UNREACHABLE: 502,
  AUTH_FAILED: 502,
  HOST_KEY_UNKNOWN: 502,
  HOST_KEY_MISMATCH: 502,
  RBEE_MISSING: 502,
  INTERRUPTED: 499,
  BACKEND_UNAVAILABLE: 503,
  SHUTTING_DOWN: 503,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class RbeeError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extra: { retryAfterSeconds?: number; status?: number; exitCode?: number } = {},
  ) {
    super(message);
    this.name = "RbeeError";
  }

  get status(): number {
    return this.extra.status ?? ERROR_STATUS[this.code];
  }

  toJSON() {
    return { error: { code: this.code, message: this.message } };
  }
}

export function asRbeeError(err: unknown): RbeeError {
  if (err instanceof RbeeError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new RbeeError("INTERNAL", message);
}

/**
 * Exit codes of the CLI: 2 for bad usage, 3 for what was asked but is not there, 4 for a file that is no model, 5 for
 * memory that is not there (a hive tells its queen so, which may then make room), 1 for the rest.
 */
export const OUT_OF_MEMORY_EXIT = 5;

export function exitCodeFor(err: unknown): number {
  if (!(err instanceof RbeeError)) return (err as { code?: string })?.code?.startsWith?.("E") ? 2 : 1;
  if (err.extra.exitCode !== undefined) return err.extra.exitCode;
  if (err.code === "BAD_REQUEST") return 2;
  if (err.code === "MODEL_NOT_FOUND" || err.code === "NOT_FOUND") return 3;
  if (err.code === "INVALID_MODEL") return 4;
  if (err.code === "INSUFFICIENT_VRAM" || err.code === "INSUFFICIENT_MEMORY") return OUT_OF_MEMORY_EXIT;
  return 1;
}
