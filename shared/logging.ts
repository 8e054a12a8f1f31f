import { types } from "node:util";

/*
 * Structured logs with redaction. Join tokens, admin SVID keys, function keys and SAS signatures all
 * pass through code that logs, so every string that leaves through a Logger (and anything built with
 * redact/redactText, such as HTTP error bodies and customStatus) is scrubbed three ways: values
 * registered as secrets, fields whose names say "secret", and text patterns that look like secrets.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

/** An InvocationContext fits, and so does console. */
export interface LogSink {
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

export interface Logger {
  debug(message: string | Error, fields?: LogFields): void;
  info(message: string | Error, fields?: LogFields): void;
  warn(message: string | Error, fields?: LogFields): void;
  error(message: string | Error, fields?: LogFields): void;
  /** A logger that adds `fields` to every record. */
  child(fields: LogFields): Logger;
}

export const REDACTED = "[REDACTED]";

// ---------------------------------------------------------------------------------------------
// Registered secret values

// Shorter values would blank out ordinary words and numbers all over the logs.
const MIN_SECRET_LENGTH = 8;
// Every logged string is matched against the registry, so it must stay bounded in a long-lived
// worker; the oldest entries (long-expired join tokens) go first.
const MAX_REGISTERED = 2000;

const registered = new Set<string>();
let registeredPattern: RegExp | undefined;

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The forms a secret takes once it has been embedded in JSON text or a URL. */
function variantsOf(value: string): string[] {
  const forms = [value, value.trim(), JSON.stringify(value).slice(1, -1), encodeURIComponent(value)];
  return [...new Set(forms)].filter((form) => form.length >= MIN_SECRET_LENGTH);
}

/**
 * Marks a value as secret for the whole process: any later occurrence in logged text becomes
 * [REDACTED]. Values shorter than 8 characters are ignored. Returns the value, for inline use.
 */
export function registerSecret<T extends string>(value: T): T {
  if (typeof value !== "string" || value.length < MIN_SECRET_LENGTH) return value;
  for (const form of variantsOf(value)) {
    registered.delete(form);
    registered.add(form);
  }
  for (const oldest of registered) {
    if (registered.size <= MAX_REGISTERED) break;
    registered.delete(oldest);
  }
  registeredPattern = undefined;
  return value;
}

function registryPattern(): RegExp | undefined {
  if (registered.size === 0) return undefined;
  // Longest first, so a secret that contains another is replaced whole.
  registeredPattern ??= new RegExp(
    [...registered]
      .sort((a, b) => b.length - a.length)
      .map(escapeRegExp)
      .join("|"),
    "g",
  );
  return registeredPattern;
}

// ---------------------------------------------------------------------------------------------
// Text patterns

const TEXT_PATTERNS: readonly (readonly [RegExp, string])[] = [
  // Unterminated blocks (truncated output) are cut to the end of the text.
  [/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)/g, REDACTED],
  [/\beyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g, REDACTED],
  // The length floor keeps prose such as "Bearer token authentication is not permitted" readable.
  [/\b(Bearer\s+)[A-Za-z0-9._~+/-]{20,}=*/gi, `$1${REDACTED}`],
  [/\b(AccountKey|SharedAccessKey|SharedAccessSignature|sig|Password|Pwd)=[^;&\s"']+/gi, `$1=${REDACTED}`],
  [
    /([?&](?:code|token|access_token|refresh_token|id_token|client_secret|api[-_]?key|subscription-key)=)[^&#\s"']+/gi,
    `$1${REDACTED}`,
  ],
  // `spire-server token generate` prints "Token: <uuid>".
  [/\b(Token:\s*)\S+/g, `$1${REDACTED}`],
  [/(-joinToken(?:=|\s+))(?:"[^"]*"|'[^']*'|\S+)/g, `$1${REDACTED}`],
  [/(JOIN_TOKEN=)(?:"[^"]*"|'[^']*'|[^\s;&]+)/gi, `$1${REDACTED}`],
];

/** Replaces registered secrets and secret-looking text (keys, tokens, signatures) with [REDACTED]. */
export function redactText(text: string): string {
  const pattern = registryPattern();
  let out = pattern ? text.replace(pattern, REDACTED) : text;
  for (const [re, replacement] of TEXT_PATTERNS) out = out.replace(re, replacement);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Field names

// Identifiers and digests of secrets are what we want to see in logs: tokenSha256, secretName, keyVaultUrl.
const ALLOWED_SUFFIXES = ["hash", "sha256", "fingerprint", "id", "url", "name", "count"];
// Names that end like a secret but are not one.
const NOT_SECRETS = new Set([
  "partitionkey",
  "rowkey",
  "publickey",
  "idempotencykey",
  "sortkey",
  "pagetoken",
  "nextpagetoken",
  "continuationtoken",
]);
// Too generic to match as a suffix ("exitcode", "statuscode" are fine to log).
const SECRET_NAMES = new Set(["code", "sig", "pwd", "authcode", "authorizationcode"]);
const SECRET_SUFFIXES = [
  "token",
  "secret",
  "password",
  "passwd",
  "passphrase",
  "key",
  "sas",
  "authorization",
  "connectionstring",
  "cookie",
  "signature",
  "assertion",
  "protectedparameters",
  "protectedsettings",
];
// secretValue, privateKeyPem, tokens: a secret name with a decoration is still a secret.
const DECORATIONS = ["value", "values", "pem", "base64", "b64", "s"];

const normalize = (name: string) => name.toLowerCase().replace(/[-_\s.]/g, "");

function isAllowedName(normalized: string): boolean {
  return NOT_SECRETS.has(normalized) || ALLOWED_SUFFIXES.some((s) => normalized.endsWith(s));
}

/** Whether a field of this name holds a secret (case and `_`/`-` ignored). */
export function isSecretFieldName(name: string): boolean {
  const n = normalize(name);
  if (isAllowedName(n)) return false;
  const stems = [
    n,
    ...DECORATIONS.filter((d) => n.length > d.length && n.endsWith(d)).map((d) => n.slice(0, -d.length)),
  ];
  return stems.some((stem) => SECRET_NAMES.has(stem) || SECRET_SUFFIXES.some((s) => stem.endsWith(s)));
}

// ---------------------------------------------------------------------------------------------
// Values

const MAX_DEPTH = 24;

function isError(value: unknown): value is Error {
  return value instanceof Error || types.isNativeError(value);
}

/**
 * A JSON-safe copy of `value` with every secret replaced: registered values and secret-looking text
 * in any string, fields with secret names, and `value` of `{name, value}` pairs whose name is
 * secret (env vars, Container App secrets). Errors become {name, message, stack, code?, cause?}.
 */
export function redact(value: unknown): unknown {
  return walk(value, new Set(), 0, false);
}

/**
 * `secret` is true below a secret-named field: every leaf is hidden then, except fields whose
 * names are allowed (so `secrets: [{name, value}]` keeps the names).
 */
function walk(value: unknown, ancestors: Set<object>, depth: number, secret: boolean): unknown {
  switch (typeof value) {
    case "string":
      return secret ? REDACTED : redactText(value);
    case "number":
      return secret || redactText(String(value)) !== String(value) ? REDACTED : value;
    case "bigint":
      return secret ? REDACTED : redactText(value.toString());
    case "boolean":
    case "undefined":
      return value;
    case "symbol":
      return redactText(value.toString());
    case "function":
      return redactText(`[Function${value.name ? ` ${value.name}` : ""}]`);
  }
  if (value === null) return null;
  const obj = value as object;
  if (ancestors.has(obj)) return "[Circular]";
  if (depth >= MAX_DEPTH) return "[Truncated]";
  ancestors.add(obj);
  try {
    return walkObject(obj, ancestors, depth + 1, secret);
  } catch {
    return "[Unserializable]";
  } finally {
    ancestors.delete(obj);
  }
}

function walkObject(obj: object, ancestors: Set<object>, depth: number, secret: boolean): unknown {
  const walkChild = (child: unknown, childSecret = secret) => walk(child, ancestors, depth, childSecret);
  if (isError(obj)) return secret ? REDACTED : serializeError(obj, walkChild);
  if (obj instanceof Date) return Number.isNaN(obj.getTime()) ? "Invalid Date" : obj.toISOString();
  // Bytes are key material more often than not, and unreadable in a log anyway.
  if (Buffer.isBuffer(obj)) return `[Buffer: ${obj.byteLength} bytes]`;
  if (ArrayBuffer.isView(obj)) return `[${obj.constructor.name}: ${obj.byteLength} bytes]`;
  if (obj instanceof ArrayBuffer) return `[ArrayBuffer: ${obj.byteLength} bytes]`;
  if (obj instanceof RegExp) return redactText(String(obj));
  if (Array.isArray(obj)) return obj.map((item) => walkChild(item));
  if (obj instanceof Set) return [...obj].map((item) => walkChild(item));
  if (obj instanceof Map) {
    return entriesToObject(
      [...obj].map(([k, v]) => [
        typeof k === "object" && k !== null ? JSON.stringify(walkChild(k)) : String(k),
        v,
      ]),
      secret,
      walkChild,
    );
  }
  const toJSON = (obj as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === "function") return walkChild(toJSON.call(obj));

  const record = obj as Record<string, unknown>;
  const entries = Object.keys(obj).map((key): [string, unknown] => {
    try {
      return [key, record[key]];
    } catch {
      return [key, "[Unreadable]"];
    }
  });
  const pairName = record.name;
  const secretPair =
    !secret && typeof pairName === "string" && "value" in record && isSecretFieldName(pairName);
  return entriesToObject(entries, secret, walkChild, secretPair ? "value" : undefined);
}

function entriesToObject(
  entries: readonly (readonly [string, unknown])[],
  secret: boolean,
  walkChild: (child: unknown, childSecret?: boolean) => unknown,
  alsoSecret?: string,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, child] of entries) {
    const childSecret = secret
      ? !isAllowedName(normalize(key))
      : key === alsoSecret || isSecretFieldName(key);
    out[redactText(key)] = walkChild(child, childSecret);
  }
  return out;
}

function serializeError(
  err: Error,
  walkChild: (child: unknown, childSecret?: boolean) => unknown,
): Record<string, unknown> {
  const out: Record<string, unknown> = {
    name: redactText(String(err.name)),
    message: redactText(String(err.message)),
  };
  if (typeof err.stack === "string") out.stack = redactText(err.stack);
  const { code, statusCode, errors } = err as { code?: unknown; statusCode?: unknown; errors?: unknown };
  if (typeof code === "string") out.code = redactText(code);
  else if (typeof code === "number") out.code = code;
  // HTTP status of SDK errors (RestError); their request/response carry headers, so they stay out.
  if (typeof statusCode === "number") out.statusCode = statusCode;
  if (err.cause !== undefined) out.cause = walkChild(err.cause);
  if (Array.isArray(errors)) out.errors = walkChild(errors);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Logger

/** Emits each record as ONE redacted JSON string: {"level", "msg", ...base, ...fields}. */
export function createLogger(sink: LogSink, base: LogFields = {}): Logger {
  const emit = (level: LogLevel, message: string | Error, fields?: LogFields) => {
    const record: LogFields = { level, msg: "", ...base, ...fields };
    if (isError(message)) {
      record[fields !== undefined && "error" in fields ? "messageError" : "error"] = message;
    }
    // Set after the spreads so fields cannot overwrite them, while they stay first in the output.
    record.level = level;
    record.msg = isError(message) ? message.message : message;
    let line: string;
    try {
      line = JSON.stringify(redact(record));
    } catch {
      // Logging must never throw into the caller, and must not fall back to unredacted output.
      line = JSON.stringify({
        level,
        msg: redactText(String(record.msg)),
        logError: "fields not serializable",
      });
    }
    sink[level](line);
  };
  return {
    debug: (message, fields) => emit("debug", message, fields),
    info: (message, fields) => emit("info", message, fields),
    warn: (message, fields) => emit("warn", message, fields),
    error: (message, fields) => emit("error", message, fields),
    child: (fields) => createLogger(sink, { ...base, ...fields }),
  };
}
