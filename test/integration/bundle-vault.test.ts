import "reflect-metadata";
import { webcrypto } from "node:crypto";
import { SecretClient } from "@azure/keyvault-secrets";
import * as x509 from "@peculiar/x509";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SandboxTokenCredential } from "../../sandbox/azure/credential.js";
import { type LoopbackTls, makeLoopbackTls } from "../../sandbox/azure/tls.js";
import { type KeyVaultServer, startKeyVault } from "../../sandbox/emulators/keyvault.js";
import { summarizeRoots } from "../../shared/trust/summary.js";
import { MAX_ROOTS_IN_TAGS } from "../../shared/trust/tags.js";
import { readVaultBundle, writeVaultBundle } from "../../shared/trust/vault.js";

/*
 * The tag layout through the real SDK against the Key Vault emulator, which refuses what Azure
 * refuses (more than 15 tags, values over 256 characters): the largest bundle the tags describe
 * round-trips from its tags alone, and a larger one is read back from its value.
 */

x509.cryptoProvider.set(webcrypto as never);

let tls: LoopbackTls;
let vault: KeyVaultServer;
let client: SecretClient;

beforeAll(async () => {
  tls = await makeLoopbackTls();
  vault = await startKeyVault({ tls });
  client = new SecretClient(vault.vaultUrl, new SandboxTokenCredential(), {
    tlsOptions: { ca: tls.caPem },
    disableChallengeResourceVerification: true,
    retryOptions: { maxRetries: 0 },
  });
});

afterAll(async () => {
  await vault?.close();
});

async function bundlePem(
  count: number,
): Promise<{ pem: string; roots: { sha256: string; notAfter: Date }[] }> {
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const certs = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: (i + 1).toString(16).padStart(2, "0"),
        name: `CN=root-${i}`,
        notBefore: new Date(Date.now() - 60_000),
        notAfter: new Date(Date.now() + (i + 1) * 3_600_000),
        signingAlgorithm: alg,
        keys,
      }),
    ),
  );
  const roots = await Promise.all(
    certs.map(async (c) => ({
      sha256: Buffer.from(await c.getThumbprint("SHA-256")).toString("hex"),
      notAfter: c.notAfter,
    })),
  );
  return { pem: certs.map((c) => c.toString("pem")).join("\n"), roots };
}

describe("the trust bundle secret against the Key Vault emulator", () => {
  it(`describes ${MAX_ROOTS_IN_TAGS} roots in tags Key Vault accepts, with expiresOn at the last expiry`, async () => {
    const { pem, roots } = await bundlePem(MAX_ROOTS_IN_TAGS);
    const summary = { ...summarizeRoots(roots), sequence: 9 };
    const written = await writeVaultBundle(client, "bundle-max", pem, summary);
    const read = await readVaultBundle(client, "bundle-max");
    expect(read).toMatchObject({
      version: written.version,
      source: "tags",
      fingerprints: summary.fingerprints,
      sequence: 9,
      latestExpiry: summary.latestExpiry,
    });
    const props = (await client.getSecret("bundle-max")).properties;
    expect(Object.keys(props.tags ?? {})).toHaveLength(15);
    expect(props.contentType).toBe("application/x-pem-file");
    // Key Vault keeps whole seconds.
    expect(Math.abs((props.expiresOn?.getTime() ?? 0) - Date.parse(summary.latestExpiry!))).toBeLessThan(
      1000,
    );
  });

  it("keeps the fixed tags for a larger bundle and reads its roots from the value", async () => {
    const { pem, roots } = await bundlePem(MAX_ROOTS_IN_TAGS + 2);
    const summary = summarizeRoots(roots);
    await writeVaultBundle(client, "bundle-large", pem, summary);
    const read = await readVaultBundle(client, "bundle-large");
    expect(read).toMatchObject({ source: "value", fingerprints: summary.fingerprints });
    expect(read?.tagsNote).toMatch(/more than the tags hold/);
  });

  it("reads none for a secret that does not exist", async () => {
    await expect(readVaultBundle(client, "no-such-bundle")).resolves.toBeUndefined();
  });
});
