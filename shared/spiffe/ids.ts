/**
 * SPIFFE IDs as this product uses them. Pure functions; every parser either returns a value that
 * is safe to hand to SPIRE (and to place in a run-command) or throws a SpiffeIdError that says
 * what is wrong with the input.
 *
 * Grammar (SPIFFE ID spec): `spiffe://<trust-domain><path>`; trust domain chars [a-z0-9._-];
 * path segments non-empty, chars [a-zA-Z0-9._-], never "." or ".."; no trailing slash, query,
 * fragment, port or userinfo.
 */

export class SpiffeIdError extends Error {
  override name = "SpiffeIdError";
  constructor(
    message: string,
    /** The offending input, shortened so a huge value cannot flood a log line. */
    readonly input: string,
  ) {
    super(message);
  }
}

export interface SpiffeId {
  readonly trustDomain: string;
  /** Empty (the trust domain's own ID) or starting with "/". */
  readonly path: string;
}

const SCHEME = "spiffe://";
const MAX_ID_LENGTH = 2048;
const MAX_TRUST_DOMAIN_LENGTH = 255;

function show(input: string): string {
  const s = input.length > 120 ? `${input.slice(0, 117)}...` : input;
  return JSON.stringify(s);
}

function fail(what: string, input: string, why: string): never {
  throw new SpiffeIdError(`invalid ${what} ${show(input)}: ${why}`, input.slice(0, 300));
}

function trustDomainProblem(input: string): string | undefined {
  if (input.length === 0) return "it is empty";
  if (input.startsWith(SCHEME)) return "give the bare name (e.g. example.org), not a spiffe:// URI";
  if (input.length > MAX_TRUST_DOMAIN_LENGTH) return `longer than ${MAX_TRUST_DOMAIN_LENGTH} characters`;
  const bad = [...input].find((c) => !/[a-z0-9._-]/.test(c));
  if (bad !== undefined) {
    const hint = /[A-Z]/.test(bad) ? " (trust domains are lowercase)" : "";
    return `character ${JSON.stringify(bad)} is not allowed; use a-z 0-9 . - _${hint}`;
  }
  return undefined;
}

function pathProblem(input: string): string | undefined {
  if (input === "") return undefined;
  if (!input.startsWith("/")) return 'the path must start with "/"';
  for (const seg of input.slice(1).split("/")) {
    if (seg === "") return "the path has an empty segment or a trailing slash";
    if (seg === "." || seg === "..") return `path segment "${seg}" is not allowed`;
    const bad = [...seg].find((c) => !/[a-zA-Z0-9._-]/.test(c));
    if (bad !== undefined)
      return `character ${JSON.stringify(bad)} is not allowed in the path; use a-z A-Z 0-9 . - _`;
  }
  return undefined;
}

/** Validates a trust domain name (e.g. `aim.microsoft.com`) and returns it unchanged. */
export function parseTrustDomain(input: string): string {
  if (typeof input !== "string") fail("trust domain", String(input), "it is not a string");
  const problem = trustDomainProblem(input);
  if (problem) fail("trust domain", input, problem);
  return input;
}

/** Validates a path ("" or "/seg/seg") and returns it unchanged. */
export function parseSpiffePath(input: string): string {
  if (typeof input !== "string") fail("SPIFFE ID path", String(input), "it is not a string");
  const problem = pathProblem(input);
  if (problem) fail("SPIFFE ID path", input, problem);
  return input;
}

export function parseSpiffeId(input: string): SpiffeId {
  if (typeof input !== "string" || input.length === 0) fail("SPIFFE ID", String(input), "it is empty");
  if (input.length > MAX_ID_LENGTH) fail("SPIFFE ID", input, `longer than ${MAX_ID_LENGTH} bytes`);
  if (!input.startsWith(SCHEME)) {
    const why = input.toLowerCase().startsWith(SCHEME)
      ? 'the scheme must be lowercase "spiffe://"'
      : 'it must start with "spiffe://"';
    fail("SPIFFE ID", input, why);
  }
  const rest = input.slice(SCHEME.length);
  if (/[?#]/.test(rest)) fail("SPIFFE ID", input, "query and fragment are not allowed");
  const slash = rest.indexOf("/");
  const trustDomain = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? "" : rest.slice(slash);
  if (trustDomain === "") fail("SPIFFE ID", input, "the trust domain is missing");
  if (trustDomain.includes(":")) fail("SPIFFE ID", input, "a port is not allowed in the trust domain");
  if (trustDomain.includes("@")) fail("SPIFFE ID", input, "userinfo is not allowed in the trust domain");
  const problem = trustDomainProblem(trustDomain) ?? pathProblem(path);
  if (problem) fail("SPIFFE ID", input, problem);
  return { trustDomain, path };
}

export function formatSpiffeId(id: SpiffeId): string {
  return `${SCHEME}${parseTrustDomain(id.trustDomain)}${parseSpiffePath(id.path)}`;
}

/** Parses and re-formats: the canonical string form of a valid SPIFFE ID. */
export function normalizeSpiffeId(input: string): string {
  return formatSpiffeId(parseSpiffeId(input));
}

export function isSpiffeId(input: string): boolean {
  try {
    parseSpiffeId(input);
    return true;
  } catch {
    return false;
  }
}

/** Throws unless `id` belongs to `trustDomain`. Returns the parsed ID. */
export function requireMemberOf(id: string, trustDomain: string): SpiffeId {
  const parsed = parseSpiffeId(id);
  if (parsed.trustDomain !== parseTrustDomain(trustDomain)) {
    fail("SPIFFE ID", id, `it belongs to trust domain "${parsed.trustDomain}", expected "${trustDomain}"`);
  }
  return parsed;
}

// ---------------------------------------------------------------------------------------------
// The IDs of this deployment

const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
/** SPIRE generates join tokens as lowercase UUIDs; nothing else is accepted as a token. */
const JOIN_TOKEN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Container App names: lowercase alphanumerics and "-", start with a letter, end alphanumeric, no "--", 2..32. */
const APP_NAME = /^[a-z](?:[a-z0-9-]{0,30}[a-z0-9])$/;

/** Validates an Entra object ID (GUID) and returns it lowercased, the one form used in SPIFFE IDs. */
export function parseGuid(input: string, what = "GUID"): string {
  if (typeof input !== "string" || !GUID.test(input)) {
    fail(what, String(input), "expected a GUID like 00000000-0000-0000-0000-000000000000");
  }
  return input.toLowerCase();
}

export function parseJoinToken(input: string): string {
  if (typeof input !== "string" || !JOIN_TOKEN.test(input)) {
    fail("join token", "<redacted>", "expected a lowercase UUID as generated by SPIRE");
  }
  return input;
}

export function parseAppName(input: string): string {
  if (typeof input !== "string" || !APP_NAME.test(input) || input.includes("--")) {
    fail(
      "Container App name",
      String(input),
      "use 2-32 lowercase letters, digits and '-', starting with a letter, ending with a letter or digit, without '--'",
    );
  }
  return input;
}

/** `spiffe://<td>/spire/server`: the ID the SPIRE server presents over TLS. */
export function serverId(trustDomain: string): string {
  return `${SCHEME}${parseTrustDomain(trustDomain)}/spire/server`;
}

/** `spiffe://<td>/agent/<app>`: the node alias a join token is generated for. */
export function agentAliasId(trustDomain: string, app: string): string {
  return `${SCHEME}${parseTrustDomain(trustDomain)}/agent/${parseAppName(app)}`;
}

/** `spiffe://<td>/ests/bp/<blueprint-oid>/aid/<agent-oid>`: an agent identity's workload ID. */
export function workloadId(trustDomain: string, blueprintOid: string, agentOid: string): string {
  const bp = parseGuid(blueprintOid, "blueprint object ID");
  const aid = parseGuid(agentOid, "agent object ID");
  return `${SCHEME}${parseTrustDomain(trustDomain)}/ests/bp/${bp}/aid/${aid}`;
}

/** `spiffe://<td>/spire/agent/join_token/<token>`: the ID an agent gets by attesting with `token`. */
export function joinTokenAgentId(trustDomain: string, token: string): string {
  return `${SCHEME}${parseTrustDomain(trustDomain)}/spire/agent/join_token/${parseJoinToken(token)}`;
}

export function parseAgentAliasId(input: string): { trustDomain: string; app: string } {
  const { trustDomain, path } = parseSpiffeId(input);
  const m = /^\/agent\/([^/]+)$/.exec(path);
  if (!m?.[1]) fail("agent alias ID", input, "expected spiffe://<trust-domain>/agent/<app>");
  return { trustDomain, app: parseAppName(m[1]) };
}

export function parseWorkloadId(input: string): {
  trustDomain: string;
  blueprintOid: string;
  agentOid: string;
} {
  const { trustDomain, path } = parseSpiffeId(input);
  const m = /^\/ests\/bp\/([^/]+)\/aid\/([^/]+)$/.exec(path);
  if (!m?.[1] || !m[2]) {
    fail("workload ID", input, "expected spiffe://<trust-domain>/ests/bp/<blueprint-oid>/aid/<agent-oid>");
  }
  const blueprintOid = parseGuid(m[1], "blueprint object ID");
  const agentOid = parseGuid(m[2], "agent object ID");
  if (blueprintOid !== m[1] || agentOid !== m[2]) {
    fail("workload ID", input, "object IDs in workload IDs are lowercase");
  }
  return { trustDomain, blueprintOid, agentOid };
}

export function parseJoinTokenAgentId(input: string): { trustDomain: string; token: string } {
  const { trustDomain, path } = parseSpiffeId(input);
  const m = /^\/spire\/agent\/join_token\/([^/]+)$/.exec(path);
  if (!m?.[1] || !JOIN_TOKEN.test(m[1])) {
    fail(
      "join-token agent ID",
      input.replace(/[0-9a-f-]{36}$/, "<token>"),
      "expected spiffe://<trust-domain>/spire/agent/join_token/<uuid>",
    );
  }
  return { trustDomain, token: m[1] };
}

export type SpiffeIdKind =
  | { kind: "server"; trustDomain: string }
  | { kind: "joinTokenAgent"; trustDomain: string; token: string }
  | { kind: "agentAlias"; trustDomain: string; app: string }
  | { kind: "workload"; trustDomain: string; blueprintOid: string; agentOid: string }
  | { kind: "other"; trustDomain: string; path: string };

/** What a (valid) SPIFFE ID is in this deployment's naming scheme. Throws on invalid IDs. */
export function classifySpiffeId(input: string): SpiffeIdKind {
  const { trustDomain, path } = parseSpiffeId(input);
  if (path === "/spire/server") return { kind: "server", trustDomain };
  const attempts: Array<() => SpiffeIdKind> = [
    () => ({ kind: "joinTokenAgent", ...parseJoinTokenAgentId(input) }),
    () => ({ kind: "agentAlias", ...parseAgentAliasId(input) }),
    () => ({ kind: "workload", ...parseWorkloadId(input) }),
  ];
  for (const attempt of attempts) {
    try {
      return attempt();
    } catch {
      // not this kind
    }
  }
  return { kind: "other", trustDomain, path };
}
