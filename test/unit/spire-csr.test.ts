import { createPublicKey, verify } from "node:crypto";
import { describe, expect, it } from "vitest";
import { generateSvidKeyAndCsr } from "../../shared/spire/csr.js";

/** Minimal DER reader: [tag, header length, content length] at `off`. */
function tlvAt(buf: Buffer, off: number): { tag: number; start: number; end: number } {
  const tag = buf[off] as number;
  const first = buf[off + 1] as number;
  if (first < 0x80) return { tag, start: off + 2, end: off + 2 + first };
  const n = first & 0x7f;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + (buf[off + 2 + i] as number);
  return { tag, start: off + 2 + n, end: off + 2 + n + len };
}

describe("generateSvidKeyAndCsr", () => {
  it("builds a signed PKCS#10 request whose only URI SAN is the SPIFFE ID", () => {
    const id = "spiffe://example.org/autopilot/admin";
    const { csrDer, keyPem } = generateSvidKeyAndCsr(id);
    const der = Buffer.from(csrDer);
    const outer = tlvAt(der, 0);
    expect(outer.tag).toBe(0x30);
    expect(outer.end).toBe(der.length);
    const info = tlvAt(der, outer.start);
    const infoDer = der.subarray(outer.start, info.end);
    const algo = tlvAt(der, info.end);
    const sig = tlvAt(der, algo.end);
    expect(sig.tag).toBe(0x03);
    // The SPKI inside the request verifies the signature over CertificationRequestInfo.
    const version = tlvAt(der, info.start);
    const subject = tlvAt(der, version.end);
    const spki = tlvAt(der, subject.end);
    const publicKey = createPublicKey({
      key: der.subarray(subject.end, spki.end),
      format: "der",
      type: "spki",
    });
    expect(verify("sha256", infoDer, publicKey, der.subarray(sig.start + 1, sig.end))).toBe(true);
    // URI SAN [6] with the ID, exactly once.
    const uri = Buffer.concat([Buffer.from([0x86, id.length]), Buffer.from(id)]);
    expect(der.indexOf(uri)).toBeGreaterThan(0);
    expect(der.indexOf(uri, der.indexOf(uri) + 1)).toBe(-1);
    expect(keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });

  it("refuses an invalid SPIFFE ID", () => {
    expect(() => generateSvidKeyAndCsr("spiffe://example.org/a b")).toThrow(/invalid SPIFFE ID/);
  });
});
