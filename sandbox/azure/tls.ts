import "reflect-metadata";
import { randomBytes, webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

/*
 * A throwaway CA and a loopback server certificate for the simulator's HTTPS endpoints: the Azure
 * SDK refuses bearer tokens over plain http, so every local Azure endpoint is HTTPS and clients
 * trust this CA through the product's *_CA_CERT_FILE overrides.
 */

export interface LoopbackTls {
  /** PEM of the CA certificate: the one thing clients need to trust. */
  caPem: string;
  /** PEM of the server certificate (127.0.0.1, ::1 and localhost), signed by the CA. */
  certPem: string;
  /** PKCS#8 PEM of the server key. */
  keyPem: string;
}

const crypto = webcrypto;
// Node's WebCrypto is the provider (the library's types name the DOM's Crypto, which is the same API).
x509.cryptoProvider.set(webcrypto as never);
const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

const serial = () => {
  const b = randomBytes(16);
  b[0] = ((b[0] ?? 0) & 0x7f) | 0x01;
  return b.toString("hex");
};

/** A fresh CA and a server certificate for the loopback names, valid for `days` (default 7). */
export async function makeLoopbackTls(days = 7): Promise<LoopbackTls> {
  const notBefore = new Date(Date.now() - 5 * 60_000);
  const notAfter = new Date(Date.now() + days * 24 * 3600 * 1000);
  const caKeys = await crypto.subtle.generateKey(ALG, true, ["sign", "verify"]);
  const caName = `CN=spire-autopilot Azure simulator CA ${randomBytes(4).toString("hex")}`;
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: caName,
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  const serverKeys = await crypto.subtle.generateKey(ALG, true, ["sign", "verify"]);
  const server = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: "CN=localhost",
    issuer: ca.subject,
    notBefore,
    notAfter,
    publicKey: serverKeys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: "dns", value: "localhost" },
        { type: "ip", value: "127.0.0.1" },
        { type: "ip", value: "::1" },
      ]),
    ],
  });
  const pkcs8 = Buffer.from(await crypto.subtle.exportKey("pkcs8", serverKeys.privateKey));
  const keyPem = x509.PemConverter.encode(pkcs8, "PRIVATE KEY");
  return { caPem: ca.toString("pem"), certPem: server.toString("pem"), keyPem: `${keyPem}\n` };
}
