import type { BundleSummary } from "./summary.js";

/*
 * The trust bundle secret's tags: what a reader needs to compare a Key Vault version with the
 * server's bundle without reading (or parsing) its value.
 *
 * Key Vault allows at most 15 tags per secret version, names up to 512 and values up to 256
 * characters (Microsoft Learn, "Azure Key Vault keys, secrets and certificates overview", the
 * limits the vault returns as BadParameter). A SHA-256 in hex is 64 characters, so one value
 * holds 3 comma-separated fingerprints (3 * 64 + 2 = 194). The layout:
 *
 *   sequence         the server's bundle sequence number
 *   roots            how many roots the version holds
 *   earliest-expiry  ISO time the first root expires
 *   latest-expiry    ISO time the last root expires (= the secret's expiresOn)
 *   fingerprints-0 .. fingerprints-10   the sorted fingerprints, 3 per tag
 *
 * 4 fixed tags leave 11 for fingerprints: 33 roots. One tag per root would leave room for only 11,
 * and SPIRE keeps an expired root for 24 h after it expires, so a CA with a TTL of an hour or two
 * holds a dozen or more roots. A bundle with more than 33 roots gets the fixed tags only; readers
 * then take the fingerprints from the value (parseBundleTags says the set is incomplete).
 */

export const KEY_VAULT_MAX_TAGS = 15;
export const KEY_VAULT_MAX_TAG_NAME = 512;
export const KEY_VAULT_MAX_TAG_VALUE = 256;

const FINGERPRINT_CHARS = 64;
const FIXED_TAGS = ["sequence", "roots", "earliest-expiry", "latest-expiry"] as const;
export const FINGERPRINTS_PER_TAG = Math.floor((KEY_VAULT_MAX_TAG_VALUE + 1) / (FINGERPRINT_CHARS + 1));
const FINGERPRINT_TAGS = KEY_VAULT_MAX_TAGS - FIXED_TAGS.length;
/** The most roots whose fingerprints fit in the tags. */
export const MAX_ROOTS_IN_TAGS = FINGERPRINT_TAGS * FINGERPRINTS_PER_TAG;

const tagName = (i: number) => `fingerprints-${i}`;
const HEX64 = /^[0-9a-f]{64}$/;

export function fitsInTags(rootCount: number): boolean {
  return rootCount <= MAX_ROOTS_IN_TAGS;
}

/** The tags of a version holding `summary`'s roots. */
export function bundleTags(summary: BundleSummary): Record<string, string> {
  const tags: Record<string, string> = { roots: String(summary.fingerprints.length) };
  if (summary.sequence !== undefined) tags.sequence = String(summary.sequence);
  if (summary.earliestExpiry) tags["earliest-expiry"] = summary.earliestExpiry;
  if (summary.latestExpiry) tags["latest-expiry"] = summary.latestExpiry;
  if (!fitsInTags(summary.fingerprints.length)) return tags;
  for (let i = 0; i * FINGERPRINTS_PER_TAG < summary.fingerprints.length; i++) {
    tags[tagName(i)] = summary.fingerprints
      .slice(i * FINGERPRINTS_PER_TAG, (i + 1) * FINGERPRINTS_PER_TAG)
      .join(",");
  }
  return tags;
}

export type ParsedTags =
  | { complete: true; summary: BundleSummary }
  /** Not this layout, inconsistent, or too many roots for the tags: read the value instead. */
  | { complete: false; reason: string };

const isoOrUndefined = (v: string | undefined) =>
  v !== undefined && !Number.isNaN(Date.parse(v)) ? new Date(v).toISOString() : undefined;

/** The set of roots a version's tags describe, when they describe it completely and consistently. */
export function parseBundleTags(tags: Record<string, string> | undefined): ParsedTags {
  if (!tags || tags.roots === undefined) return { complete: false, reason: "no roots tag" };
  const count = Number(tags.roots);
  if (!Number.isInteger(count) || count < 0) return { complete: false, reason: `roots tag "${tags.roots}"` };
  if (!fitsInTags(count)) {
    return { complete: false, reason: `${count} roots are more than the tags hold (${MAX_ROOTS_IN_TAGS})` };
  }
  const fingerprints: string[] = [];
  for (let i = 0; i < FINGERPRINT_TAGS; i++) {
    const value = tags[tagName(i)];
    if (value === undefined) break;
    fingerprints.push(...value.split(","));
  }
  if (fingerprints.length !== count) {
    return {
      complete: false,
      reason: `roots tag says ${count}, fingerprint tags hold ${fingerprints.length}`,
    };
  }
  if (!fingerprints.every((f) => HEX64.test(f)))
    return { complete: false, reason: "a fingerprint is not SHA-256 hex" };
  const sorted = [...new Set(fingerprints)].sort();
  if (sorted.length !== count) return { complete: false, reason: "duplicate fingerprints" };
  const sequence = tags.sequence === undefined ? undefined : Number(tags.sequence);
  const summary: BundleSummary = { fingerprints: sorted };
  if (sequence !== undefined && Number.isInteger(sequence)) summary.sequence = sequence;
  const earliest = isoOrUndefined(tags["earliest-expiry"]);
  const latest = isoOrUndefined(tags["latest-expiry"]);
  if (earliest) summary.earliestExpiry = earliest;
  if (latest) summary.latestExpiry = latest;
  return { complete: true, summary };
}
