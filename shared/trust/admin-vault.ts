import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import type { SecretClient } from "@azure/keyvault-secrets";
import { registerSecret } from "../logging.js";
import { splitPem } from "../spire/pem.js";
import type { AdminSecretState } from "./admin-svid-decision.js";

/*
 * The admin X509-SVID secret in Key Vault: one version = the chain (leaf first) and its PKCS#8
 * key, PEM, contentType application/x-pem-file, expiresOn = the leaf's notAfter. Its tags describe
 * the certificate (SPIFFE ID, validity, serial, SHA-256) and which run wrote it, never the key.
 * The state is read from the certificate itself, so a version written by hand counts as well.
 */

export const ADMIN_SVID_CONTENT_TYPE = "application/x-pem-file";

/** Non-secret facts of a written admin SVID (what activities return and tags carry). */
export interface AdminSvidFacts {
  version: string;
  spiffeId: string;
  notBefore: string;
  expiresAt: string;
  serial: string;
  sha256: string;
  /** The run that wrote it, from its tags (undefined: written by someone else). */
  writtenBy?: string;
  /** How it was minted, from its tags. */
  minted?: string;
}

export interface AdminSecretRead {
  state: AdminSecretState;
  /** Present when state is "present": what an mTLS client is built from. Secret. */
  credential?: { certChainPem: string; keyPem: string };
  facts?: AdminSvidFacts;
}

function spiffeIdOf(cert: X509Certificate): string | undefined {
  const ids = (cert.subjectAltName ?? "")
    .split(/,\s*/)
    .filter((s) => s.startsWith("URI:"))
    .map((s) => s.slice(4));
  return ids.length === 1 ? ids[0] : undefined;
}

/** The current version's state; the key is checked to belong to the leaf. */
export async function readAdminSecret(
  secrets: Pick<SecretClient, "getSecret">,
  name: string,
): Promise<AdminSecretRead> {
  let secret: Awaited<ReturnType<SecretClient["getSecret"]>>;
  try {
    secret = await secrets.getSecret(name);
  } catch (err) {
    if ((err as { statusCode?: unknown }).statusCode === 404) return { state: { kind: "missing" } };
    throw err;
  }
  const version = secret.properties.version ?? "";
  const unreadable = (problem: string): AdminSecretRead => ({
    state: { kind: "unreadable", version, problem },
  });
  const { certificates, privateKey } = splitPem(secret.value ?? "");
  if (privateKey) registerSecret(privateKey);
  if (!certificates) return unreadable("no CERTIFICATE block");
  if (!privateKey) return unreadable("no PRIVATE KEY block");
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certificates);
  } catch {
    return unreadable("the first certificate does not parse");
  }
  try {
    const fromKey = createPublicKey(createPrivateKey(privateKey)).export({ type: "spki", format: "der" });
    const fromCert = leaf.publicKey.export({ type: "spki", format: "der" });
    if (!fromKey.equals(fromCert)) return unreadable("the private key does not belong to the certificate");
  } catch {
    return unreadable("the private key does not parse");
  }
  const spiffeId = spiffeIdOf(leaf);
  if (!spiffeId) return unreadable("the certificate has no single URI SAN");
  const notBefore = new Date(leaf.validFrom);
  const notAfter = new Date(leaf.validTo);
  const expiresOn = secret.properties.expiresOn;
  const tags = secret.properties.tags ?? {};
  return {
    state: { kind: "present", version, spiffeId, notBefore, notAfter, ...(expiresOn ? { expiresOn } : {}) },
    credential: { certChainPem: certificates, keyPem: privateKey },
    facts: {
      version,
      spiffeId,
      notBefore: notBefore.toISOString(),
      expiresAt: notAfter.toISOString(),
      serial: leaf.serialNumber.toLowerCase(),
      sha256: leaf.fingerprint256.replaceAll(":", "").toLowerCase(),
      ...(tags.run ? { writtenBy: tags.run } : {}),
      ...(tags.minted ? { minted: tags.minted } : {}),
    },
  };
}

/** Writes chain + key as one new version; returns its facts (never the key). */
export async function writeAdminSecret(
  secrets: Pick<SecretClient, "setSecret">,
  name: string,
  svid: { certChainPem: string; keyPem: string },
  written: { runId: string; minted: string },
): Promise<AdminSvidFacts> {
  const leaf = new X509Certificate(svid.certChainPem);
  const spiffeId = spiffeIdOf(leaf) ?? "";
  const notBefore = new Date(leaf.validFrom).toISOString();
  const notAfter = new Date(leaf.validTo);
  const serial = leaf.serialNumber.toLowerCase();
  const sha256 = leaf.fingerprint256.replaceAll(":", "").toLowerCase();
  // Key Vault tags: at most 15, values at most 256 characters; these are all far shorter.
  const tags = {
    spiffeId,
    notBefore,
    notAfter: notAfter.toISOString(),
    serial,
    sha256,
    run: written.runId.slice(0, 256),
    minted: written.minted,
  };
  const chain = svid.certChainPem.endsWith("\n") ? svid.certChainPem : `${svid.certChainPem}\n`;
  const result = await secrets.setSecret(name, `${chain}${svid.keyPem}`, {
    contentType: ADMIN_SVID_CONTENT_TYPE,
    expiresOn: notAfter,
    tags,
  });
  return {
    version: result.properties.version ?? "",
    spiffeId,
    notBefore,
    expiresAt: notAfter.toISOString(),
    serial,
    sha256,
    writtenBy: written.runId,
    minted: written.minted,
  };
}
