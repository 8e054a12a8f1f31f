/**
 * The Server API's messages as both adapters receive them, and their mapping to domain types.
 * gRPC (proto-loader, keepCase) and the CLI's `-output json` (protojson with proto names) give
 * the same snake_case shapes; they differ only in int64 (string in both, number possible) and
 * bytes (Buffer vs base64 text), which the schemas below accept either way.
 */
import { z } from "zod";
import { describeBundle } from "./bundle.js";
import { statusCodeName } from "./errors.js";
import type {
  Agent,
  DeleteEntryResult,
  Entry,
  EntrySpec,
  ItemFailure,
  Selector,
  TrustBundle,
  UpdateEntryResult,
  X509Svid,
} from "./types.js";

/** A message field: absent, null (proto-loader's default for unset messages) or the message. */
function optionalMessage<T extends z.ZodType>(schema: T) {
  return schema.nullish();
}

function withDefault<T extends z.ZodType>(schema: T, fallback: z.output<T>) {
  return schema.nullish().transform((v): z.output<T> => (v ?? fallback) as z.output<T>);
}

const str = withDefault(z.string(), "");
const bool = withDefault(z.boolean(), false);
const int32 = withDefault(z.number().int(), 0);
const int64 = withDefault(
  z.union([z.string().regex(/^-?[0-9]+$/), z.number().int(), z.bigint()]).transform((v) => Number(v)),
  0,
);
const bytes = z
  .union([z.instanceof(Uint8Array), z.string()])
  .transform((v) => (typeof v === "string" ? Buffer.from(v, "base64") : Buffer.from(v)));

export const WireSpiffeId = z.object({ trust_domain: str, path: str });
export type WireSpiffeId = z.output<typeof WireSpiffeId>;

export const WireSelector = z.object({ type: str, value: str });

export const WireStatus = z.object({ code: int32, message: str });

export const WireAgent = z.object({
  id: optionalMessage(WireSpiffeId),
  attestation_type: str,
  x509svid_serial_number: str,
  x509svid_expires_at: int64,
  selectors: withDefault(z.array(WireSelector), []),
  banned: bool,
  can_reattest: bool,
  agent_version: str,
});

export const WireEntry = z.object({
  id: str,
  spiffe_id: optionalMessage(WireSpiffeId),
  parent_id: optionalMessage(WireSpiffeId),
  selectors: withDefault(z.array(WireSelector), []),
  x509_svid_ttl: int32,
  federates_with: withDefault(z.array(z.string()), []),
  admin: bool,
  downstream: bool,
  expires_at: int64,
  dns_names: withDefault(z.array(z.string()), []),
  revision_number: int64,
  store_svid: bool,
  jwt_svid_ttl: int32,
  hint: str,
  created_at: int64,
});
export type WireEntry = z.output<typeof WireEntry>;

export const WireJoinToken = z.object({ value: z.string().min(1), expires_at: int64 });

export const WireBundle = z.object({
  trust_domain: str,
  x509_authorities: withDefault(z.array(z.object({ asn1: bytes, tainted: bool })), []),
  refresh_hint: int64,
  sequence_number: int64,
});

export const WireX509Svid = z.object({
  cert_chain: withDefault(z.array(bytes), []),
  id: optionalMessage(WireSpiffeId),
  expires_at: int64,
});

export const ListAgentsResponse = z.object({
  agents: withDefault(z.array(WireAgent), []),
  next_page_token: str,
});
export const ListEntriesResponse = z.object({
  entries: withDefault(z.array(WireEntry), []),
  next_page_token: str,
});
export const BatchEntryResponse = z.object({
  results: withDefault(
    z.array(z.object({ status: optionalMessage(WireStatus), entry: optionalMessage(WireEntry) })),
    [],
  ),
});
export const BatchDeleteEntryResponse = z.object({
  results: withDefault(z.array(z.object({ status: optionalMessage(WireStatus), id: str })), []),
});
/** google.protobuf.Empty */
export const Empty = z.object({});
export const MintX509SvidResponse = z.object({ svid: optionalMessage(WireX509Svid) });
export const HealthCheckResponse = z.object({ status: z.union([z.string(), z.number()]).nullish() });

// ---------------------------------------------------------------------------------------------
// wire → domain

export function spiffeIdFromWire(id: WireSpiffeId | null | undefined): string {
  if (!id?.trust_domain) return "";
  return `spiffe://${id.trust_domain}${id.path}`;
}

export function spiffeIdToWire(id: string): WireSpiffeId {
  const rest = id.slice("spiffe://".length);
  const slash = rest.indexOf("/");
  return slash < 0
    ? { trust_domain: rest, path: "" }
    : { trust_domain: rest.slice(0, slash), path: rest.slice(slash) };
}

function secondsToDate(s: number): Date | undefined {
  return s > 0 ? new Date(s * 1000) : undefined;
}

function selectorsFromWire(list: { type: string; value: string }[]): Selector[] {
  return list.map((s) => ({ type: s.type, value: s.value }));
}

export function agentFromWire(a: z.output<typeof WireAgent>): Agent {
  return {
    id: spiffeIdFromWire(a.id),
    attestationType: a.attestation_type,
    x509SvidSerialNumber: a.x509svid_serial_number,
    x509SvidExpiresAt: secondsToDate(a.x509svid_expires_at),
    selectors: selectorsFromWire(a.selectors),
    banned: a.banned,
    canReattest: a.can_reattest,
    agentVersion: a.agent_version,
  };
}

export function entryFromWire(e: WireEntry): Entry {
  return {
    id: e.id,
    spiffeId: spiffeIdFromWire(e.spiffe_id),
    parentId: spiffeIdFromWire(e.parent_id),
    selectors: selectorsFromWire(e.selectors),
    x509SvidTtl: e.x509_svid_ttl,
    jwtSvidTtl: e.jwt_svid_ttl,
    admin: e.admin,
    downstream: e.downstream,
    dnsNames: [...e.dns_names],
    hint: e.hint,
    federatesWith: [...e.federates_with],
    revisionNumber: e.revision_number,
    createdAt: secondsToDate(e.created_at),
    expiresAt: secondsToDate(e.expires_at),
  };
}

export function bundleFromWire(b: z.output<typeof WireBundle>): TrustBundle {
  return describeBundle({
    trustDomain: b.trust_domain,
    roots: b.x509_authorities.map((a) => ({ der: a.asn1, tainted: a.tainted })),
    sequenceNumber: b.sequence_number,
    refreshHintSeconds: b.refresh_hint,
  });
}

export function svidFromWire(s: z.output<typeof WireX509Svid>): X509Svid {
  const certChainDer = s.cert_chain.map((c) => Buffer.from(c));
  return {
    spiffeId: spiffeIdFromWire(s.id),
    certChainDer,
    certChainPem: certChainDer.map((c) => derToPem(c)).join(""),
    expiresAt: new Date(s.expires_at * 1000),
  };
}

export function derToPem(der: Uint8Array, label = "CERTIFICATE"): string {
  const b64 = Buffer.from(der).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

export function failureFromStatus(status: z.output<typeof WireStatus> | null | undefined): ItemFailure {
  return { code: statusCodeName(status?.code ?? 2), message: status?.message ?? "no status in the result" };
}

type WireStatusValue = z.output<typeof WireStatus> | null | undefined;

/** One BatchUpdateEntry result, whichever adapter read it. */
export function updateResultFromWire(
  r: { status?: WireStatusValue; entry?: WireEntry | null },
  id: string,
): UpdateEntryResult {
  return (r.status?.code ?? 0) === 0 && r.entry
    ? { status: "updated", entry: entryFromWire(r.entry) }
    : { status: "failed", id, ...failureFromStatus(r.status) };
}

/** One BatchDeleteEntry result: a missing entry is reported as such, not as a failure. */
export function deleteResultFromWire(
  r: { status?: WireStatusValue; id?: string | null },
  requestedId: string,
): DeleteEntryResult {
  const id = r.id || requestedId;
  if ((r.status?.code ?? 0) === 0) return { status: "deleted", id };
  const failure = failureFromStatus(r.status);
  return failure.code === "NOT_FOUND" ? { status: "not_found", id } : { status: "failed", id, ...failure };
}

// ---------------------------------------------------------------------------------------------
// domain → wire (gRPC messages)

export interface WireEntryInput {
  id: string;
  spiffe_id: WireSpiffeId;
  parent_id: WireSpiffeId;
  selectors: Selector[];
  x509_svid_ttl: number;
  jwt_svid_ttl: number;
  admin: boolean;
  downstream: boolean;
  dns_names: string[];
  hint: string;
}

export function entryToWire(spec: EntrySpec & { id?: string }): WireEntryInput {
  return {
    id: spec.id ?? "",
    spiffe_id: spiffeIdToWire(spec.spiffeId),
    parent_id: spiffeIdToWire(spec.parentId),
    selectors: spec.selectors.map((s) => ({ type: s.type, value: s.value })),
    x509_svid_ttl: spec.x509SvidTtl ?? 0,
    jwt_svid_ttl: spec.jwtSvidTtl ?? 0,
    admin: spec.admin ?? false,
    downstream: spec.downstream ?? false,
    dns_names: spec.dnsNames ?? [],
    hint: spec.hint ?? "",
  };
}
