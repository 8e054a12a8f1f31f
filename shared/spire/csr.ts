import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { normalizeSpiffeId } from "../spiffe/index.js";

/*
 * A key and a PKCS#10 request for an X509-SVID (MintX509SVID): the request's only identity is the
 * URI SAN with the SPIFFE ID; the subject is empty, as SPIRE ignores it.
 */

export interface SvidKeyAndCsr {
  /** PKCS#8 PEM of a fresh P-256 key. Secret. */
  keyPem: string;
  /** DER PKCS#10 request whose only URI SAN is the SPIFFE ID. */
  csrDer: Uint8Array;
}

const crypto = webcrypto;
// Node's WebCrypto is the provider (the library's types name the DOM's Crypto, which is the same API).
x509.cryptoProvider.set(webcrypto as never);
const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

/** A fresh P-256 key and a CSR for `spiffeId` (e.g. an admin ID for the TCP Server API). */
export async function generateSvidKeyAndCsr(spiffeId: string): Promise<SvidKeyAndCsr> {
  const id = normalizeSpiffeId(spiffeId);
  const keys = await crypto.subtle.generateKey(ALG, true, ["sign", "verify"]);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: ALG,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: "url", value: id }])],
  });
  const pkcs8 = Buffer.from(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  return {
    keyPem: `${x509.PemConverter.encode(pkcs8, "PRIVATE KEY")}\n`,
    csrDer: new Uint8Array(csr.rawData),
  };
}
