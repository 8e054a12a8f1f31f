/** Certificates and the private key of a PEM bundle (the admin SVID secret holds both). */
export function splitPem(pem: string): { certificates: string; privateKey?: string } {
  const blocks = pem.match(/-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g) ?? [];
  const certificates = blocks.filter((b) => b.startsWith("-----BEGIN CERTIFICATE-----")).join("\n");
  const privateKey = blocks.find((b) => /^-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(b));
  return privateKey === undefined ? { certificates } : { certificates, privateKey };
}
