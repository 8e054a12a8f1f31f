import type { SpireStatusCode } from "./types.js";

/** gRPC status codes by number, as SPIRE returns them in batch results and errors. */
export const STATUS_CODES: readonly SpireStatusCode[] = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
];

export function statusCodeName(code: number): SpireStatusCode {
  return STATUS_CODES[code] ?? "UNKNOWN";
}

const RETRYABLE: ReadonlySet<SpireStatusCode> = new Set([
  "UNAVAILABLE",
  "DEADLINE_EXCEEDED",
  "RESOURCE_EXHAUSTED",
  "ABORTED",
]);

/** A SPIRE call failed as a whole (a batch call's per-item failures are results, not errors). */
export class SpireApiError extends Error {
  override name = "SpireApiError";
  constructor(
    readonly operation: string,
    readonly code: SpireStatusCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${operation}: ${code}: ${message}`, options);
  }

  /** The call may succeed if repeated later (server down, deadline, overload). */
  get retryable(): boolean {
    return RETRYABLE.has(this.code);
  }
}

/** A caller passed a value that cannot be sent to SPIRE; nothing was sent. */
export class SpireInputError extends Error {
  override name = "SpireInputError";
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** The adapter cannot do this operation at all (e.g. minting from a CSR through the CLI). */
export class SpireUnsupportedError extends Error {
  override name = "SpireUnsupportedError";
}
