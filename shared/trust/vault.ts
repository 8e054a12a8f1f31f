import { X509Certificate } from "node:crypto";
import type { SecretClient } from "@azure/keyvault-secrets";
import { pemToDerList, sha256Fingerprint } from "../spire/bundle.js";
import { type BundleSummary, summarizeRoots } from "./summary.js";
import { bundleTags, parseBundleTags } from "./tags.js";

/*
 * The trust bundle secret in Key Vault: its current version as a summary (from the tags, or from
 * the value when the tags do not describe it), and writing a new version. A bundle is public, but
 * its PEM stays here: callers get fingerprints.
 */

export const BUNDLE_CONTENT_TYPE = "application/x-pem-file";

export interface VaultBundleState extends BundleSummary {
  version: string;
  /** Where the fingerprints came from: our tags, or the certificates in the value. */
  source: "tags" | "value";
  /** Why the tags were not used, when source is "value". */
  tagsNote?: string;
  createdOn?: string;
  expiresOn?: string;
}

/** Fingerprints and expiries of the certificates in a PEM text (anything unparsable is skipped). */
export function summarizePem(pem: string): BundleSummary {
  const roots: { sha256: string; notAfter: Date }[] = [];
  for (const der of pemToDerList(pem)) {
    try {
      const cert = new X509Certificate(der);
      roots.push({ sha256: sha256Fingerprint(cert), notAfter: new Date(cert.validTo) });
    } catch {
      // Not a certificate: it does not count as a root.
    }
  }
  return summarizeRoots(roots);
}

const iso = (d: Date | undefined) => (d ? d.toISOString() : undefined);

/** The current version, or undefined when the secret does not exist (404). */
export async function readVaultBundle(
  secrets: Pick<SecretClient, "getSecret">,
  name: string,
): Promise<VaultBundleState | undefined> {
  let secret: Awaited<ReturnType<SecretClient["getSecret"]>>;
  try {
    secret = await secrets.getSecret(name);
  } catch (err) {
    if ((err as { statusCode?: unknown }).statusCode === 404) return undefined;
    throw err;
  }
  const p = secret.properties;
  const base = {
    version: p.version ?? "",
    ...(p.createdOn ? { createdOn: iso(p.createdOn) } : {}),
    ...(p.expiresOn ? { expiresOn: iso(p.expiresOn) } : {}),
  };
  const parsed = parseBundleTags(p.tags);
  if (parsed.complete) return { ...base, ...parsed.summary, source: "tags" };
  return { ...base, ...summarizePem(secret.value ?? ""), source: "value", tagsNote: parsed.reason };
}

/** Writes `pem` as a new version tagged with `summary`; returns its version. */
export async function writeVaultBundle(
  secrets: Pick<SecretClient, "setSecret">,
  name: string,
  pem: string,
  summary: BundleSummary,
): Promise<{ version: string; createdOn?: string }> {
  const expiresOn = summary.latestExpiry ? new Date(summary.latestExpiry) : undefined;
  const written = await secrets.setSecret(name, pem, {
    contentType: BUNDLE_CONTENT_TYPE,
    tags: bundleTags(summary),
    ...(expiresOn ? { expiresOn } : {}),
  });
  return {
    version: written.properties.version ?? "",
    ...(written.properties.createdOn ? { createdOn: written.properties.createdOn.toISOString() } : {}),
  };
}
