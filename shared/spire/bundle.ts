import { X509Certificate } from "node:crypto";
import type { BundleRoot, TrustBundle } from "./types.js";

/** Lowercase hex SHA-256 of a certificate's DER, from node's own X509Certificate. */
export function sha256Fingerprint(cert: X509Certificate): string {
  return cert.fingerprint256.replace(/:/g, "").toLowerCase();
}

export function describeRoot(der: Uint8Array, tainted = false): BundleRoot {
  const cert = new X509Certificate(Buffer.from(der));
  return {
    pem: cert.toString(),
    sha256Fingerprint: sha256Fingerprint(cert),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    subject: cert.subject.replace(/\n/g, ", "),
    tainted,
  };
}

export function describeBundle(input: {
  trustDomain: string;
  roots: { der: Uint8Array; tainted: boolean }[];
  sequenceNumber: number;
  refreshHintSeconds: number;
}): TrustBundle {
  const roots = input.roots.map((r) => describeRoot(r.der, r.tainted));
  return {
    trustDomain: input.trustDomain,
    pem: roots.map((r) => r.pem).join(""),
    roots,
    sequenceNumber: input.sequenceNumber,
    refreshHintSeconds: input.refreshHintSeconds,
  };
}

/** Splits concatenated PEM text into DER certificates (ignores anything that is not a CERTIFICATE block). */
export function pemToDerList(pem: string): Buffer[] {
  const out: Buffer[] = [];
  const re = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/g;
  for (const m of pem.matchAll(re)) out.push(Buffer.from((m[1] ?? "").replace(/\s+/g, ""), "base64"));
  return out;
}

/** The set of root fingerprints, sorted: equal across two bundles when the CA did not change. */
export function rootFingerprints(bundle: TrustBundle): string[] {
  return bundle.roots.map((r) => r.sha256Fingerprint).sort();
}
