/**
 * TLS for the simulator: the Azure SDK refuses bearer tokens over plain http, so the simulator
 * serves HTTPS with a CA made at start. Clients trust that CA (tlsOptions.ca, or the file the
 * config's ARM_CA_CERT_FILE points to); nothing else ever trusts it.
 *
 * Certificates are built with node's crypto and a few lines of DER: @peculiar/x509 needs a
 * Reflect metadata polyfill that is not installed, and two fixed certificate shapes do not need
 * an ASN.1 library.
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject, randomBytes, sign } from "node:crypto";

export interface LoopbackTls {
  /** PEM of the CA certificate: the one thing clients need to trust. */
  caPem: string;
  /** PEM of the server certificate (127.0.0.1, ::1 and localhost), signed by the CA. */
  certPem: string;
  /** PKCS#8 PEM of the server key. */
  keyPem: string;
}

// --- DER -------------------------------------------------------------------------------------

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

const seq = (...c: Buffer[]) => tlv(0x30, ...c);
const set = (...c: Buffer[]) => tlv(0x31, ...c);
const octets = (b: Buffer) => tlv(0x04, b);
const bitString = (b: Buffer) => tlv(0x03, Buffer.from([0]), b);
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, "utf8"));

function integer(b: Buffer): Buffer {
  let bytes = b;
  while (bytes.length > 1 && bytes[0] === 0 && ((bytes[1] ?? 0) & 0x80) === 0) bytes = bytes.subarray(1);
  if (((bytes[0] ?? 0) & 0x80) !== 0) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(0x02, bytes);
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

function utcTime(d: Date): Buffer {
  const p = (n: number) => String(n).padStart(2, "0");
  const text = `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  return tlv(0x17, Buffer.from(text, "ascii"));
}

const OID = {
  commonName: "2.5.4.3",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  subjectAltName: "2.5.29.17",
  serverAuth: "1.3.6.1.5.5.7.3.1",
};

function name(cn: string): Buffer {
  return seq(set(seq(oid(OID.commonName), utf8(cn))));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
}

/** KeyUsage bits as a DER BIT STRING value (bit 0 = digitalSignature ... bit 6 = cRLSign). */
function keyUsage(bits: number[]): Buffer {
  let byte = 0;
  for (const b of bits) byte |= 0x80 >> b;
  let unused = 0;
  while (unused < 8 && ((byte >> unused) & 1) === 0) unused++;
  return tlv(0x03, Buffer.from([unused === 8 ? 0 : unused, byte]));
}

function ipBytes(ip: string): Buffer {
  if (ip.includes(":")) {
    if (ip !== "::1") throw new Error(`only ::1 is supported, got ${ip}`);
    const b = Buffer.alloc(16);
    b[15] = 1;
    return b;
  }
  return Buffer.from(ip.split(".").map(Number));
}

interface CertInput {
  subject: string;
  issuer: string;
  publicKey: KeyObject;
  signingKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  extensions: Buffer[];
}

function certificate(input: CertInput): Buffer {
  const serial = randomBytes(16);
  serial[0] = ((serial[0] ?? 0) & 0x7f) | 0x01;
  const algorithm = seq(oid(OID.ecdsaWithSha256));
  const tbs = seq(
    tlv(0xa0, integer(Buffer.from([2]))), // version v3
    integer(serial),
    algorithm,
    name(input.issuer),
    seq(utcTime(input.notBefore), utcTime(input.notAfter)),
    name(input.subject),
    input.publicKey.export({ type: "spki", format: "der" }),
    tlv(0xa3, seq(...input.extensions)),
  );
  const signature = sign("sha256", tbs, input.signingKey);
  return seq(tbs, algorithm, bitString(signature));
}

function pem(label: string, der: Buffer): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** A fresh CA and a server certificate for the loopback names, valid for `days` (default 7). */
export async function makeLoopbackTls(days = 7): Promise<LoopbackTls> {
  const notBefore = new Date(Date.now() - 5 * 60_000);
  const notAfter = new Date(Date.now() + days * 24 * 3600 * 1000);
  const ca = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const caName = `spire-autopilot Azure simulator CA ${randomBytes(4).toString("hex")}`;
  const caCert = certificate({
    subject: caName,
    issuer: caName,
    publicKey: ca.publicKey,
    signingKey: ca.privateKey,
    notBefore,
    notAfter,
    extensions: [
      extension(OID.basicConstraints, true, seq(bool(true), integer(Buffer.from([0])))),
      extension(OID.keyUsage, true, keyUsage([5, 6])), // keyCertSign, cRLSign
    ],
  });
  const server = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const san = seq(
    tlv(0x82, Buffer.from("localhost", "ascii")), // dNSName [2]
    tlv(0x87, ipBytes("127.0.0.1")), // iPAddress [7]
    tlv(0x87, ipBytes("::1")),
  );
  const serverCert = certificate({
    subject: "localhost",
    issuer: caName,
    publicKey: server.publicKey,
    signingKey: ca.privateKey,
    notBefore,
    notAfter,
    extensions: [
      extension(OID.basicConstraints, true, seq()),
      extension(OID.keyUsage, true, keyUsage([0])), // digitalSignature
      extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth))),
      extension(OID.subjectAltName, false, san),
    ],
  });
  const keyPem = createPrivateKey(server.privateKey.export({ type: "pkcs8", format: "pem" })).export({
    type: "pkcs8",
    format: "pem",
  }) as string;
  return { caPem: pem("CERTIFICATE", caCert), certPem: pem("CERTIFICATE", serverCert), keyPem };
}
