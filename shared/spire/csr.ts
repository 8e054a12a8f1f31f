/**
 * A key pair and a PKCS#10 CSR for minting an X509-SVID, built with node's crypto and a few lines
 * of DER (no ASN.1 library: the request has one fixed shape). SPIRE's MintX509SVID needs exactly
 * one URI SAN, the SPIFFE ID, and a valid signature; it ignores the rest.
 */
import { generateKeyPairSync, sign } from "node:crypto";
import { normalizeSpiffeId } from "../spiffe/index.js";

export interface SvidKeyAndCsr {
  /** PKCS#8 PEM of a fresh P-256 key. Secret. */
  keyPem: string;
  /** DER PKCS#10 request whose only URI SAN is the SPIFFE ID. */
  csrDer: Uint8Array;
}

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

function oid(dotted: string): Buffer {
  const arcs = dotted.split(".").map(Number);
  const bytes: number[] = [40 * (arcs[0] ?? 0) + (arcs[1] ?? 0)];
  for (const arc of arcs.slice(2)) {
    const enc: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) enc.unshift(0x80 | (v & 0x7f));
    bytes.push(...enc);
  }
  return tlv(0x06, Buffer.from(bytes));
}

const SEQUENCE = 0x30;
const SET = 0x31;
const OID_EXTENSION_REQUEST = "1.2.840.113549.1.9.14";
const OID_SUBJECT_ALT_NAME = "2.5.29.17";
const OID_ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2";

/** DER CertificationRequest for `spiffeId`, signed with `privateKey`, carrying `spkiDer`. */
export function buildCsr(spiffeId: string, spkiDer: Buffer, signInfo: (data: Buffer) => Buffer): Buffer {
  const uri = tlv(0x86, Buffer.from(spiffeId, "ascii")); // GeneralName uniformResourceIdentifier [6]
  const sanExtension = tlv(SEQUENCE, oid(OID_SUBJECT_ALT_NAME), tlv(0x04, tlv(SEQUENCE, uri)));
  const extensionRequest = tlv(SEQUENCE, oid(OID_EXTENSION_REQUEST), tlv(SET, tlv(SEQUENCE, sanExtension)));
  const info = tlv(
    SEQUENCE,
    tlv(0x02, Buffer.from([0])), // version 0
    tlv(SEQUENCE), // empty subject: the SVID's identity is the URI SAN
    spkiDer,
    tlv(0xa0, extensionRequest), // attributes [0] IMPLICIT SET OF Attribute
  );
  const signature = signInfo(info);
  return tlv(
    SEQUENCE,
    info,
    tlv(SEQUENCE, oid(OID_ECDSA_WITH_SHA256)),
    tlv(0x03, Buffer.from([0]), signature), // BIT STRING, no unused bits
  );
}

/** A fresh P-256 key and a CSR for `spiffeId` (e.g. an admin ID for the TCP Server API). */
export function generateSvidKeyAndCsr(spiffeId: string): SvidKeyAndCsr {
  const id = normalizeSpiffeId(spiffeId);
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const spki = publicKey.export({ type: "spki", format: "der" });
  const csrDer = buildCsr(id, spki, (data) => sign("sha256", data, privateKey));
  const keyPem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  return { keyPem, csrDer: new Uint8Array(csrDer) };
}
