import { ConfigError } from "./config.js";
import { SpecError } from "./containerapp/spec.js";
import { type Logger, redactText } from "./logging.js";
import { SpiffeIdError } from "./spiffe/ids.js";
import { SpireApiError, SpireInputError, SpireUnsupportedError } from "./spire/errors.js";

/*
 * Which failures are worth repeating. Activities return permanent failures as results and throw
 * only transient ones, so the orchestration's retry policy never repeats a validation error
 * (which would only fail again, slower) and always repeats throttling, 5xx, network blips and the
 * 403 of a role assignment that has not propagated yet (learning #15).
 */

/** A failure an activity knows is permanent: bad input, an app we must not touch, a missing thing. */
export class PermanentError extends Error {
  override readonly name = "PermanentError";
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** What an activity throws for a transient failure: the original, redacted, for the retry policy. */
export class TransientError extends Error {
  override readonly name = "TransientError";
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ClassifiedError {
  transient: boolean;
  code: string;
  /** Redacted, one paragraph at most. */
  message: string;
}

/** The same shape as activities/contracts.ts's ActivityResult (shared/ does not import activities/). */
export type Result<T> = { ok: true; value: T } | { ok: false; error: { code: string; message: string } };

const MAX_MESSAGE = 1000;

// Role assignments take minutes to reach every ARM/data-plane front end (learning #15): the 403s
// they cause go away on their own, unlike a missing role, which a person has to fix.
const PROPAGATION_403_CODES = new Set([
  "AuthorizationFailed",
  "ForbiddenByRbac",
  "AuthorizationPermissionMismatch",
  "InsufficientAccessError",
]);

// Another operation holds the resource; it says to retry once that one finished.
const BUSY_CODES = new Set([
  "ContainerAppOperationInProgress",
  "OperationInProgress",
  "AnotherOperationInProgress",
]);

// Socket-level failures: the request may not have reached the service at all.
const NETWORK_CODES = new Set([
  "REQUEST_SEND_ERROR",
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "ESOCKETTIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "ENOTFOUND",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
]);

// Codes inside "The long-running operation has failed. <code>. <message>" that a retry can clear.
const TRANSIENT_LRO_CODES = new Set([
  "InternalServerError",
  "ServiceUnavailable",
  "GatewayTimeout",
  "TooManyRequests",
  "OperationTimedOut",
  "RetryableError",
  "ContainerAppOperationInProgress",
]);

const LRO_FAILED = /^The long-running operation has failed(?:\. ([A-Za-z][\w.]*)\.)?/;

export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status !== 501 && status !== 505);
}

interface ErrorLike {
  name?: unknown;
  code?: unknown;
  statusCode?: unknown;
  message?: unknown;
  cause?: unknown;
}

function asErrorLike(err: unknown): ErrorLike {
  return typeof err === "object" && err !== null ? (err as ErrorLike) : {};
}

function clip(text: string): string {
  const oneLine = text.replace(/\s+/g, " ").trim();
  return redactText(oneLine.length > MAX_MESSAGE ? `${oneLine.slice(0, MAX_MESSAGE - 3)}...` : oneLine);
}

function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  const m = asErrorLike(err).message;
  return typeof m === "string" ? m : String(err);
}

/** A network failure somewhere in the error or its causes. */
function networkCode(err: unknown, depth = 0): string | undefined {
  if (depth > 5) return undefined;
  const e = asErrorLike(err);
  if (typeof e.code === "string" && NETWORK_CODES.has(e.code)) return e.code;
  if (e.name === "AbortError" || e.name === "TimeoutError") return String(e.name);
  return e.cause === undefined ? undefined : networkCode(e.cause, depth + 1);
}

/** Transient (repeat later) or permanent (report), with a code and a redacted message. */
export function classifyError(err: unknown): ClassifiedError {
  const message = clip(messageOf(err));
  const permanent = (code: string): ClassifiedError => ({ transient: false, code, message });
  const transient = (code: string): ClassifiedError => ({ transient: true, code, message });

  if (err instanceof TransientError) return transient(err.code);
  if (err instanceof PermanentError) return permanent(err.code);
  if (err instanceof SpecError) return permanent(err.code);
  if (err instanceof SpireApiError) return err.retryable ? transient(err.code) : permanent(err.code);
  if (err instanceof SpireInputError) return permanent("SpireInputError");
  if (err instanceof SpireUnsupportedError) return permanent("SpireUnsupported");
  if (err instanceof SpiffeIdError) return permanent("InvalidSpiffeId");
  if (err instanceof ConfigError) return permanent("ConfigError");

  const e = asErrorLike(err);
  const net = networkCode(err);
  if (net !== undefined) return transient(net);
  if (typeof e.statusCode === "number") {
    const status = e.statusCode;
    const code = typeof e.code === "string" && e.code !== "" ? e.code : `Http${status}`;
    if (isTransientStatus(status)) return transient(code);
    if (status === 403 && PROPAGATION_403_CODES.has(code)) return transient(code);
    if (status === 409 && BUSY_CODES.has(code)) return transient(code);
    return permanent(code);
  }
  const lro = LRO_FAILED.exec(messageOf(err));
  if (lro) {
    const code = lro[1] ?? "OperationFailed";
    return TRANSIENT_LRO_CODES.has(code) ? transient(code) : permanent(code);
  }
  const name = e.name;
  return permanent(typeof name === "string" && name !== "" && name !== "Error" ? name : "Unexpected");
}

/**
 * Runs an activity's work: its value as `{ok: true}`, a permanent failure as `{ok: false}` with a
 * redacted message, and a transient one rethrown (as a redacted TransientError, since the
 * durable runtime keeps a failed activity's message and stack in history).
 */
export async function asActivityResult<T>(fn: () => Promise<T>, log?: Logger): Promise<Result<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    const c = classifyError(err);
    if (c.transient) {
      log?.warn("transient failure; the orchestration retries it", { code: c.code, error: c.message });
      throw new TransientError(c.code, c.message);
    }
    log?.warn("permanent failure", { code: c.code, error: c.message });
    return { ok: false, error: { code: c.code, message: c.message } };
  }
}
