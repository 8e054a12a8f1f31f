import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { CronExpressionParser } from "cron-parser";
import { z } from "zod";

/* The value types of app settings: each a zod schema over the raw string whose errors never quote the input. */

/** Reason text for failures the setting's description already explains; the error line then omits it. */
export const PLAIN = "invalid";

export class Rejection {
  constructor(readonly reason: string = PLAIN) {}
}

/** A string setting parsed by `parse`, which returns the typed value or a Rejection that never quotes the input. */
export function parsedWith<T>(parse: (raw: string) => T | Rejection) {
  return z.string().transform((raw, ctx): T => {
    const out = parse(raw);
    if (out instanceof Rejection) {
      ctx.addIssue({ code: "custom", message: out.reason });
      return z.NEVER;
    }
    return out;
  });
}

/** A string setting kept as is once `problem` (returning a reason, or undefined when fine) accepts it. */
export function checkedWith(problem: (raw: string) => string | undefined) {
  return parsedWith((raw) => {
    const reason = problem(raw);
    return reason === undefined ? raw : new Rejection(reason);
  });
}

export const matching = (pattern: RegExp) => checkedWith((raw) => (pattern.test(raw) ? undefined : PLAIN));

export const guid = matching(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);

export function wholeNumber(min: number, max: number) {
  return z
    .string()
    .regex(/^[0-9]+$/, "not a whole number")
    .transform(Number)
    .pipe(z.number().min(min, `outside ${min}..${max}`).max(max, `outside ${min}..${max}`));
}

export function url(schemes: readonly ("https:" | "http:")[]) {
  return checkedWith((raw) => {
    let parsed: URL;
    try {
      parsed = new URL(raw);
    } catch {
      return "not a URL";
    }
    if (!schemes.some((scheme) => scheme === parsed.protocol)) {
      // The Azure SDK refuses bearer tokens over plain http, so an http endpoint would only fail later.
      return schemes.includes("http:") ? "must be http or https" : "must be https";
    }
    if (parsed.username !== "" || parsed.password !== "") return "must not embed credentials";
    if (parsed.search !== "" || parsed.hash !== "") return "must not carry a query or fragment";
    return undefined;
  });
}

/** Reads the PEM so a bad path fails at startup instead of at the first TLS handshake. */
export const caCertFile = parsedWith((path) => {
  let pem: string;
  try {
    pem = readFileSync(path, "utf8");
  } catch {
    return new Rejection("cannot read the file");
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    return new Rejection("no -----BEGIN CERTIFICATE----- block in the file");
  }
  if (/PRIVATE KEY-----/.test(pem))
    return new Rejection("the file holds a private key; give only certificates");
  return pem;
});

export const trustDomain = checkedWith((raw) => {
  if (raw.includes("://")) return "no scheme: drop spiffe://";
  if (raw.includes("/")) return "no path allowed";
  if (/[A-Z]/.test(raw)) return "must be lowercase";
  if (!/^[a-z0-9._-]+$/.test(raw)) return PLAIN;
  return raw.length > 255 ? "longer than 255 characters" : undefined;
});

/** spiffe://<trust domain>/<path>: lowercase trust domain, a non-empty path, no query or fragment. */
export const spiffeId = checkedWith((raw) => {
  const m = /^spiffe:\/\/([a-z0-9._-]+)(\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)$/.exec(raw);
  if (!m) return "not spiffe://<trust domain>/<path> (lowercase trust domain, no query or fragment)";
  if (
    m[2] === "/" ||
    (m[2] ?? "")
      .split("/")
      .slice(1)
      .some((seg) => seg === "" || seg === "." || seg === "..")
  )
    return "the path must have non-empty segments, none '.' or '..'";
  return undefined;
});

export const resourceGroupName = checkedWith((raw) =>
  /^[\p{L}\p{N}._()-]{1,90}$/u.test(raw) && !raw.endsWith(".") ? undefined : PLAIN,
);

export const vmName = matching(/^(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]{0,62}[A-Za-z0-9_])$/);

export const dockerContainerName = matching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/);

export const keyVaultSecretName = matching(/^[0-9A-Za-z-]{1,127}$/);

export const tagName = matching(/^[^<>%&\\?/\p{Cc}]{1,512}$/u);

export const tagValue = matching(/^[^\p{Cc}]{1,256}$/u);

export const tableName = checkedWith((raw) => {
  if (!/^[A-Za-z][A-Za-z0-9]{2,62}$/.test(raw)) return PLAIN;
  return raw.toLowerCase() === "tables" ? "reserved by Table Storage" : undefined;
});

export const noWhitespace = checkedWith((raw) =>
  /^\S+$/.test(raw) ? undefined : "must not contain whitespace",
);

/** Exactly "true" or "false" (as the Functions host writes booleans), parsed to a boolean. */
export const booleanText = z.enum(["true", "false"], PLAIN).transform((v) => v === "true");

/** One or two comma-separated audiences, each a GUID or an absolute URI (api://..., https://...). */
export const audienceList = checkedWith((raw) => {
  const items = raw.split(",");
  if (items.length > 2) return "at most two audiences";
  const ok = items.every(
    (i) =>
      /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(i) ||
      /^[a-z][a-z0-9+.-]*:\/\/\S+$/i.test(i),
  );
  return ok ? undefined : PLAIN;
});

// sun_path in sockaddr_un is 108 bytes including the terminating NUL.
export const MAX_UNIX_SOCKET_PATH_BYTES = 107;

export const unixSocketPath = checkedWith((raw) => {
  if (!raw.startsWith("/")) return "must be an absolute path";
  if (/[\p{Cc}]/u.test(raw)) return "must not contain control characters";
  if (Buffer.byteLength(raw) > MAX_UNIX_SOCKET_PATH_BYTES) {
    return `longer than ${MAX_UNIX_SOCKET_PATH_BYTES} bytes, the unix socket limit`;
  }
  return undefined;
});

const DNS_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const DNS_NAME = new RegExp(`^${DNS_LABEL}(?:\\.${DNS_LABEL})*$`);

export interface HostPort {
  /** As configured, ready for a gRPC target. */
  address: string;
  host: string;
  port: number;
}

export const hostPort = parsedWith((raw): HostPort | Rejection => {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(raw);
  if (!m) return new Rejection("expected host:port");
  const [, ipv6, name, portText] = m;
  const port = Number(portText);
  if (port < 1 || port > 65535) return new Rejection("port outside 1..65535");
  if (ipv6 !== undefined) {
    return isIP(ipv6) === 6
      ? { address: raw, host: ipv6, port }
      : new Rejection("not an IPv6 address in [...]");
  }
  const host = name ?? "";
  const looksLikeIpv4 = /^[0-9.]+$/.test(host);
  if (looksLikeIpv4 ? isIP(host) !== 4 : host.length > 253 || !DNS_NAME.test(host)) {
    return new Rejection("not a valid host name or IPv4 address");
  }
  return { address: raw, host, port };
});

export interface Selector {
  type: string;
  /** Everything after the first ':', e.g. "uid:0" for "unix:uid:0", as SPIRE splits it. */
  value: string;
}

export const selectorList = parsedWith((raw): Selector[] | Rejection => {
  const selectors: Selector[] = [];
  for (const item of raw.split(",").map((s) => s.trim())) {
    const m = /^([a-z0-9_-]+):([^:\s]+(?::[^:\s]+)*)$/.exec(item);
    if (!m) return new Rejection(item === "" ? "empty selector in the list" : "expected type:value items");
    selectors.push({ type: m[1] ?? "", value: m[2] ?? "" });
  }
  return selectors;
});

const NCRONTAB_FIELDS = ["second", "minute", "hour", "day", "month", "day-of-week"] as const;
// A schedule that fires with every field at its first value: one field at a time is swapped in.
const PROBE = ["0", "0", "0", "1", "1", "0"];

/**
 * NCRONTAB as the Functions host reads it is cron-parser's six-field syntax without cron-parser's
 * extensions (L, W, #, ?, H) and with Sunday only as 0. Each field is checked on its own so the
 * error can name it without quoting the value.
 */
function ncrontabFieldOk(field: string, index: number): boolean {
  // Names (jan, mon) only in the month and day-of-week fields.
  const names = index >= 4 ? "|[A-Za-z]{3}" : "";
  const token = new RegExp(`^(?:[0-9]{1,2}|\\*${names})$`);
  if (!field.split(/[,/-]/).every((t) => token.test(t))) return false;
  if (index === 5 && field.split(",").some((item) => (item.split("/")[0] ?? "").split("-").includes("7"))) {
    return false;
  }
  try {
    CronExpressionParser.parse(PROBE.with(index, field).join(" "), { tz: "UTC" });
    return true;
  } catch {
    return false;
  }
}

// Timer triggers take these through %NAME%, so a bad value would only surface when the host indexes.
export const ncrontab = parsedWith((raw) => {
  const fields = raw.trim().split(/\s+/);
  if (fields.length !== NCRONTAB_FIELDS.length) {
    return new Rejection(`expected 6 fields, got ${fields.length}`);
  }
  const bad = fields.findIndex((field, i) => !ncrontabFieldOk(field, i));
  return bad >= 0 ? new Rejection(`bad ${NCRONTAB_FIELDS[bad]} field`) : fields.join(" ");
});
