/**
 * Errors a query can fail with. The Logs API answers all of them with 400 BadArgumentError, the
 * inner error code telling which: a syntax error, a semantic error (unknown name, wrong type), or
 * KQL this engine does not implement (named, so the caller knows what to rewrite).
 */
export type KqlErrorKind = "SyntaxError" | "SemanticError" | "UnsupportedError";

export class KqlError extends Error {
  override readonly name = "KqlError";

  constructor(
    readonly kind: KqlErrorKind,
    message: string,
    /** Offset in the query text, when known. */
    readonly position?: number,
  ) {
    super(message);
  }
}

export function semanticError(message: string, position?: number): KqlError {
  return new KqlError("SemanticError", message, position);
}

export function unsupported(what: string, position?: number): KqlError {
  return new KqlError(
    "UnsupportedError",
    `${what} is not supported by the sandbox's KQL engine (see sandbox/azure/logs/README.md for the supported subset)`,
    position,
  );
}
