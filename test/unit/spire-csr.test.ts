import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { describe, expect, it } from "vitest";
import { generateSvidKeyAndCsr } from "../../shared/spire/csr.js";

describe("generateSvidKeyAndCsr", () => {
  it("builds a signed PKCS#10 request whose only identity is the SPIFFE ID as URI SAN", async () => {
    const id = "spiffe://example.org/autopilot/admin";
    const { csrDer, keyPem } = await generateSvidKeyAndCsr(id);
    const csr = new x509.Pkcs10CertificateRequest(csrDer);
    expect(await csr.verify()).toBe(true);
    expect(csr.subject).toBe("");
    const san = new x509.SubjectAlternativeNameExtension(csr.getExtension("2.5.29.17")!.rawData);
    expect(san.names.toJSON()).toEqual([{ type: "url", value: id }]);
    expect(keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    // The key that comes back is the key the request was signed with.
    const key = await crypto.subtle.importKey(
      "pkcs8",
      x509.PemConverter.decodeFirst(keyPem),
      { name: "ECDSA", namedCurve: "P-256" },
      true,
      ["sign"],
    );
    const jwk = await crypto.subtle.exportKey("jwk", key);
    const pub = await crypto.subtle.exportKey("jwk", await csr.publicKey.export());
    expect([jwk.x, jwk.y]).toEqual([pub.x, pub.y]);
  });

  it("refuses an invalid SPIFFE ID", async () => {
    await expect(generateSvidKeyAndCsr("spiffe://example.org/a b")).rejects.toThrow(/invalid SPIFFE ID/);
  });
});
