import type { TrustBundle } from "../spire/types.js";

/*
 * A trust bundle as the product talks about it: the set of X.509 root fingerprints and when they
 * expire, never the PEM. JSON-safe (times as ISO strings), so it can travel through durable
 * history, customStatus, outputs and HTTP answers.
 */

export interface RootSummary {
  /** SHA-256 of the root's DER, lowercase hex. */
  sha256: string;
  notAfter: string;
}

export interface BundleSummary {
  /** Sorted and unique: two summaries hold the same roots exactly when these are equal. */
  fingerprints: string[];
  /** The first root to expire. */
  earliestExpiry?: string;
  /** When the bundle stops being useful: after this no root in it is valid. */
  latestExpiry?: string;
  /** The server's bundle sequence number (increments on every bundle change). */
  sequence?: number;
}

export interface ServerBundleSummary extends BundleSummary {
  roots: RootSummary[];
  sequence: number;
}

/** Summary of roots given as fingerprint + expiry, in any order, duplicates collapsed. */
export function summarizeRoots(roots: readonly { sha256: string; notAfter: Date }[]): BundleSummary {
  const fingerprints = [...new Set(roots.map((r) => r.sha256.toLowerCase()))].sort();
  const times = roots.map((r) => r.notAfter.getTime()).filter((t) => !Number.isNaN(t));
  if (times.length === 0) return { fingerprints };
  return {
    fingerprints,
    earliestExpiry: new Date(Math.min(...times)).toISOString(),
    latestExpiry: new Date(Math.max(...times)).toISOString(),
  };
}

/** The server's bundle as a summary: every X.509 root, sorted by fingerprint. */
export function summarizeServerBundle(bundle: TrustBundle): ServerBundleSummary {
  const roots = bundle.roots
    .map((r) => ({ sha256: r.sha256Fingerprint, notAfter: r.notAfter }))
    .sort((a, b) => (a.sha256 < b.sha256 ? -1 : a.sha256 > b.sha256 ? 1 : 0));
  return {
    ...summarizeRoots(roots),
    sequence: bundle.sequenceNumber,
    roots: roots.map((r) => ({ sha256: r.sha256, notAfter: r.notAfter.toISOString() })),
  };
}

export function sameRoots(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((f) => set.has(f));
}
