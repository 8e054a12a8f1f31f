import { type BundleSummary, sameRoots } from "./summary.js";
import { fitsInTags } from "./tags.js";

/*
 * Whether a rotation writes a new Key Vault version, and why. Pure: the server's roots against the
 * current version's (from its tags, or from its value when the tags do not describe it).
 */

export type RotationAction =
  /** No version yet: write the first. */
  | "first-write"
  /** Same roots: write nothing (no version churn). */
  | "unchanged"
  /** Roots added or removed (a CA prepared, an old root pruned): write. */
  | "changed"
  /** None of the current version's roots is in the server's bundle: the CA was destroyed or replaced. */
  | "ca-reset"
  /** Same roots, but the version's tags do not say so (written by someone else): write it tagged once. */
  | "retag";

export interface VaultSide {
  fingerprints: string[];
  /** Where the fingerprints came from. */
  source: "tags" | "value";
}

export type RotationDecision =
  | { write: boolean; action: RotationAction; added: string[]; removed: string[] }
  | { write: false; action: "refused"; reason: string; added: string[]; removed: string[] };

export function decideRotation(
  server: Pick<BundleSummary, "fingerprints">,
  vault: VaultSide | undefined,
): RotationDecision {
  const have = new Set(vault?.fingerprints ?? []);
  const want = new Set(server.fingerprints);
  const added = server.fingerprints.filter((f) => !have.has(f));
  const removed = (vault?.fingerprints ?? []).filter((f) => !want.has(f));
  if (server.fingerprints.length === 0) {
    // Writing an empty bundle would leave every new agent unable to trust the server.
    return {
      write: false,
      action: "refused",
      reason: "the server's bundle has no X.509 roots",
      added,
      removed,
    };
  }
  if (vault === undefined) return { write: true, action: "first-write", added, removed };
  if (sameRoots(server.fingerprints, vault.fingerprints)) {
    // A version without our tags is rewritten once so later runs compare tags, unless the set
    // does not fit in tags anyway (then every run would rewrite it).
    const retag = vault.source === "value" && fitsInTags(server.fingerprints.length);
    return { write: retag, action: retag ? "retag" : "unchanged", added, removed };
  }
  // A version with no roots at all (an empty or foreign value) is simply replaced.
  const reset = vault.fingerprints.length > 0 && removed.length === vault.fingerprints.length;
  return { write: true, action: reset ? "ca-reset" : "changed", added, removed };
}

/** The version's expiresOn: when the bundle stops being useful (its last root expires). */
export function bundleExpiresOn(summary: Pick<BundleSummary, "latestExpiry">): Date | undefined {
  return summary.latestExpiry ? new Date(summary.latestExpiry) : undefined;
}
