/**
 * Input validation at the port boundary, shared by both adapters. The grammars are strict on
 * purpose: the run-command adapter places these values in a shell environment on the VM, so a
 * value must be harmless as a word there (no whitespace, quotes, `$`, backquote, `;`, `|`, `&`,
 * redirections, globbing, and never a leading "-" that the CLI would read as a flag).
 */
import { parseGuid, parseSpiffeId, parseTrustDomain, SpiffeIdError } from "../spiffe/index.js";
import { SpireInputError } from "./errors.js";
import type { AgentFilter, EntrySpec, EntryUpdate, Selector } from "./types.js";

const SELECTOR_TYPE = /^[a-z][a-z0-9_-]{0,63}$/;
const SELECTOR_VALUE = /^[A-Za-z0-9._:/@=+~][A-Za-z0-9._:/@=+~-]{0,1023}$/;
/** SPIRE accepts more for entry IDs; we accept what is safe and what SPIRE and we generate. */
const ENTRY_ID = /^[A-Za-z0-9_.][A-Za-z0-9._:-]{0,254}$/;
const DNS_NAME =
  /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const HINT = /^[A-Za-z0-9._:/@=+~-]{0,255}$/;
const ATTESTATION_TYPE = /^[a-z][a-z0-9_-]{0,63}$/;
/** Largest TTL SPIRE's int32 fields hold. */
const MAX_TTL = 2_147_483_647;

function reject(field: string, why: string): never {
  throw new SpireInputError(field, why);
}

export function validateSpiffeIdInput(value: unknown, field: string, trustDomain?: string): string {
  if (typeof value !== "string") reject(field, "expected a SPIFFE ID string");
  try {
    const id = parseSpiffeId(value);
    if (trustDomain !== undefined && id.trustDomain !== trustDomain) {
      reject(field, `SPIFFE ID is in trust domain "${id.trustDomain}", the server's is "${trustDomain}"`);
    }
    return value;
  } catch (err) {
    if (err instanceof SpiffeIdError) reject(field, err.message);
    throw err;
  }
}

export function validateTrustDomainInput(value: unknown, field = "trustDomain"): string {
  if (typeof value !== "string") reject(field, "expected a trust domain name");
  try {
    return parseTrustDomain(value);
  } catch (err) {
    if (err instanceof SpiffeIdError) reject(field, err.message);
    throw err;
  }
}

export function validateUuid(value: unknown, field: string): string {
  if (typeof value !== "string") reject(field, "expected a UUID");
  try {
    return parseGuid(value, field);
  } catch (err) {
    if (err instanceof SpiffeIdError) reject(field, err.message);
    throw err;
  }
}

export function validateInteger(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value)) reject(field, "expected a whole number");
  if (value < min || value > max) reject(field, `${value} is outside ${min}..${max}`);
  return value;
}

export function validateTtlSeconds(value: unknown, field: string, min = 0): number {
  return validateInteger(value, field, min, MAX_TTL);
}

export function validateSelector(value: unknown, field: string): Selector {
  if (typeof value !== "object" || value === null) reject(field, "expected {type, value}");
  const { type, value: v } = value as Record<string, unknown>;
  if (typeof type !== "string" || !SELECTOR_TYPE.test(type)) {
    reject(
      `${field}.type`,
      "expected lowercase letters, digits, '_' or '-', starting with a letter (e.g. unix)",
    );
  }
  if (typeof v !== "string" || !SELECTOR_VALUE.test(v)) {
    reject(
      `${field}.value`,
      "expected 1-1024 of A-Z a-z 0-9 . _ : / @ = + ~ - (not starting with '-'), e.g. uid:0",
    );
  }
  return { type, value: v };
}

/** Parses "type:value" (split at the first ':') as `spire-server -selector` does. */
export function parseSelectorString(text: string, field = "selector"): Selector {
  const i = text.indexOf(":");
  if (i <= 0) reject(field, 'expected "type:value", e.g. unix:uid:0');
  return validateSelector({ type: text.slice(0, i), value: text.slice(i + 1) }, field);
}

export function validateEntryId(value: unknown, field: string): string {
  if (typeof value !== "string" || !ENTRY_ID.test(value)) {
    reject(field, "expected 1-255 of A-Z a-z 0-9 . _ : - (a UUID as SPIRE generates, or a custom ID)");
  }
  return value;
}

export function validateEntrySpec(spec: EntrySpec, field: string, trustDomain?: string): EntrySpec {
  if (typeof spec !== "object" || spec === null) reject(field, "expected an entry");
  const selectors = spec.selectors;
  if (!Array.isArray(selectors) || selectors.length === 0)
    reject(`${field}.selectors`, "at least one selector is required");
  if (selectors.length > 64) reject(`${field}.selectors`, "more than 64 selectors");
  const out: EntrySpec = {
    spiffeId: validateSpiffeIdInput(spec.spiffeId, `${field}.spiffeId`, trustDomain),
    parentId: validateSpiffeIdInput(spec.parentId, `${field}.parentId`, trustDomain),
    selectors: selectors.map((s, i) => validateSelector(s, `${field}.selectors[${i}]`)),
  };
  if (spec.x509SvidTtl !== undefined)
    out.x509SvidTtl = validateTtlSeconds(spec.x509SvidTtl, `${field}.x509SvidTtl`);
  if (spec.jwtSvidTtl !== undefined)
    out.jwtSvidTtl = validateTtlSeconds(spec.jwtSvidTtl, `${field}.jwtSvidTtl`);
  if (spec.admin !== undefined) out.admin = validateBoolean(spec.admin, `${field}.admin`);
  if (spec.downstream !== undefined) out.downstream = validateBoolean(spec.downstream, `${field}.downstream`);
  if (spec.dnsNames !== undefined) {
    if (!Array.isArray(spec.dnsNames) || spec.dnsNames.length > 64)
      reject(`${field}.dnsNames`, "expected at most 64 names");
    out.dnsNames = spec.dnsNames.map((d, i) => {
      if (typeof d !== "string" || d.length > 253 || !DNS_NAME.test(d))
        reject(`${field}.dnsNames[${i}]`, "not a DNS name");
      return d;
    });
  }
  if (spec.hint !== undefined) {
    if (typeof spec.hint !== "string" || !HINT.test(spec.hint)) {
      reject(`${field}.hint`, "expected at most 255 of A-Z a-z 0-9 . _ : / @ = + ~ -");
    }
    out.hint = spec.hint;
  }
  if (spec.id !== undefined) out.id = validateEntryId(spec.id, `${field}.id`);
  return out;
}

export function validateEntryUpdate(update: EntryUpdate, field: string, trustDomain?: string): EntryUpdate {
  const spec = validateEntrySpec(update, field, trustDomain);
  return { ...spec, id: validateEntryId(update.id, `${field}.id`) };
}

export function validateAgentFilter(filter: AgentFilter | undefined): AgentFilter {
  const out: AgentFilter = {};
  if (!filter) return out;
  if (filter.byAttestationType !== undefined) {
    if (typeof filter.byAttestationType !== "string" || !ATTESTATION_TYPE.test(filter.byAttestationType)) {
      reject("filter.byAttestationType", "expected a plugin name like join_token");
    }
    out.byAttestationType = filter.byAttestationType;
  }
  if (filter.byBanned !== undefined) out.byBanned = validateBoolean(filter.byBanned, "filter.byBanned");
  if (filter.byCanReattest !== undefined)
    out.byCanReattest = validateBoolean(filter.byCanReattest, "filter.byCanReattest");
  return out;
}

function validateBoolean(value: unknown, field: string): boolean {
  if (typeof value !== "boolean") reject(field, "expected true or false");
  return value;
}

/** Two selector lists are the same set (SPIRE compares entries' selectors as sets). */
export function sameSelectors(a: readonly Selector[], b: readonly Selector[]): boolean {
  const key = (s: Selector) => `${s.type}:${s.value}`;
  const sa = new Set(a.map(key));
  const sb = new Set(b.map(key));
  return sa.size === sb.size && [...sa].every((k) => sb.has(k));
}
