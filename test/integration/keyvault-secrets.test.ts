import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SecretClient } from "@azure/keyvault-secrets";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SandboxTokenCredential } from "../../sandbox/azure/credential.js";
import { scaledClock } from "../../sandbox/azure/logs/clock.js";
import { type LoopbackTls, makeLoopbackTls } from "../../sandbox/azure/tls.js";
import { type KeyVaultServer, startKeyVault } from "../../sandbox/emulators/keyvault.js";
import { KeyVaultReferenceResolver } from "../../sandbox/emulators/keyvault-references.js";
import { loadConfig } from "../../shared/config.js";
import { createServices } from "../../shared/services.js";

let tls: LoopbackTls;
let vault: KeyVaultServer;
let client: SecretClient;
// 3600x: the platform's 30-minute refresh of versionless references takes half a real second.
const clock = scaledClock(3600);

beforeAll(async () => {
  tls = await makeLoopbackTls();
  vault = await startKeyVault({ tls, clock });
  client = new SecretClient(vault.vaultUrl, new SandboxTokenCredential(), {
    tlsOptions: { ca: tls.caPem },
    disableChallengeResourceVerification: true,
    retryOptions: { maxRetries: 0 },
  });
});

afterAll(async () => {
  await vault?.close();
});

describe("Key Vault secrets through @azure/keyvault-secrets", () => {
  it("versions, tags and contentType round-trip, behind the challenge", async () => {
    const expiresOn = new Date(Math.floor(Date.now() / 1000 + 86_400) * 1000);
    const v1 = await client.setSecret("spire-trust-bundle", "PEM-1", {
      contentType: "application/x-pem-file",
      tags: { fingerprint: "aa11", source: "spire" },
      expiresOn,
    });
    const v2 = await client.setSecret("spire-trust-bundle", "PEM-2", {
      contentType: "application/x-pem-file",
      tags: { fingerprint: "bb22" },
    });
    expect(v1.properties.version).toMatch(/^[0-9a-f]{32}$/);
    expect(v2.properties.version).not.toBe(v1.properties.version);
    expect(v1.properties.id).toBe(`${vault.vaultUrl}secrets/spire-trust-bundle/${v1.properties.version}`);

    const latest = await client.getSecret("spire-trust-bundle");
    expect(latest.value).toBe("PEM-2");
    expect(latest.properties.tags).toEqual({ fingerprint: "bb22" });
    const first = await client.getSecret("spire-trust-bundle", { version: v1.properties.version });
    expect(first.value).toBe("PEM-1");
    expect(first.properties.contentType).toBe("application/x-pem-file");
    expect(first.properties.tags).toEqual({ fingerprint: "aa11", source: "spire" });
    expect(first.properties.expiresOn?.getTime()).toBe(expiresOn.getTime());

    const versions: string[] = [];
    for await (const p of client.listPropertiesOfSecretVersions("spire-trust-bundle"))
      versions.push(p.version ?? "");
    expect(versions.sort()).toEqual([v1.properties.version, v2.properties.version].sort());
    const names: string[] = [];
    for await (const p of client.listPropertiesOfSecrets()) names.push(p.name);
    expect(names).toEqual(["spire-trust-bundle"]);
  });

  it("updates properties, refuses a disabled version, soft-deletes and purges", async () => {
    const s = await client.setSecret("join-token-app-a", "token-1");
    await client.updateSecretProperties("join-token-app-a", s.properties.version ?? "", {
      enabled: false,
      tags: { spent: "true" },
    });
    await expect(client.getSecret("join-token-app-a")).rejects.toMatchObject({ statusCode: 403 });

    const poller = await client.beginDeleteSecret("join-token-app-a", { intervalInMs: 10 });
    const deleted = await poller.pollUntilDone();
    expect(deleted.recoveryId).toContain("/deletedsecrets/join-token-app-a");
    await expect(client.getSecret("join-token-app-a")).rejects.toMatchObject({ statusCode: 404 });
    await expect(client.setSecret("join-token-app-a", "again")).rejects.toMatchObject({ statusCode: 409 });
    await client.purgeDeletedSecret("join-token-app-a");
    await client.setSecret("join-token-app-a", "again");
    await expect(client.setSecret("bad_name", "x")).rejects.toMatchObject({ statusCode: 400 });
    await expect(client.setSecret("too-big", "x".repeat(26 * 1024))).rejects.toMatchObject({
      statusCode: 400,
    });
  });

  it("injected throttling is retried by the SDK", async () => {
    const retrying = new SecretClient(vault.vaultUrl, new SandboxTokenCredential(), {
      tlsOptions: { ca: tls.caPem },
      disableChallengeResourceVerification: true,
      retryOptions: { maxRetries: 3, retryDelayInMs: 10 },
    });
    await retrying.getSecret("spire-trust-bundle"); // settle the challenge first
    vault.injectFault({ status: 429, count: 2, retryAfterSeconds: 0 });
    const before = vault.requests;
    expect((await retrying.getSecret("spire-trust-bundle")).value).toBe("PEM-2");
    expect(vault.requests - before).toBe(3);
  });

  it("refuses a token that is not the sandbox's", async () => {
    const stranger = new SecretClient(
      vault.vaultUrl,
      { getToken: async () => ({ token: "eyJ-not-ours", expiresOnTimestamp: Date.now() + 60_000 }) },
      {
        tlsOptions: { ca: tls.caPem },
        disableChallengeResourceVerification: true,
        retryOptions: { maxRetries: 0 },
      },
    );
    await expect(stranger.getSecret("spire-trust-bundle")).rejects.toMatchObject({ statusCode: 401 });
  });
});

describe("Container App secrets that reference Key Vault", () => {
  it("a versioned URL pins; a versionless one refreshes on the platform's 30-minute cycle", async () => {
    const resolver = new KeyVaultReferenceResolver({
      vaults: [{ url: vault.vaultUrl }],
      caPem: tls.caPem,
      clock,
    });
    const v1 = await client.setSecret("app-a-token", "first");
    const versionless = { keyVaultUrl: `${vault.vaultUrl}secrets/app-a-token`, identity: "system" };
    const pinned = {
      keyVaultUrl: `${vault.vaultUrl}secrets/app-a-token/${v1.properties.version}`,
      identity: "system",
    };

    expect(await resolver.resolve(versionless)).toMatchObject({
      value: "first",
      pinned: false,
      version: v1.properties.version,
    });
    expect(await resolver.resolve(pinned)).toMatchObject({ value: "first", pinned: true });

    const v2 = await client.setSecret("app-a-token", "second");
    // Within the 30 minutes the platform still hands out what it fetched.
    expect((await resolver.resolve(versionless)).value).toBe("first");
    await new Promise((r) => setTimeout(r, (30 * 60_000) / clock.scale + 100));
    expect(await resolver.resolve(versionless)).toMatchObject({
      value: "second",
      version: v2.properties.version,
    });
    expect((await resolver.resolve(pinned)).value).toBe("first");
  });

  it("fails like the platform for bad URLs, unknown vaults, missing secrets and unauthorized identities", async () => {
    const resolver = new KeyVaultReferenceResolver({
      vaults: [{ url: vault.vaultUrl, aliases: ["sandbox-vault.vault.azure.net"] }],
      caPem: tls.caPem,
      isAuthorized: (identity) => identity === "system",
    });
    await expect(
      resolver.resolve({ keyVaultUrl: `${vault.vaultUrl}keys/x`, identity: "system" }),
    ).rejects.toMatchObject({ code: "InvalidKeyVaultUrl" });
    await expect(
      resolver.resolve({ keyVaultUrl: "https://other.vault.azure.net/secrets/x", identity: "system" }),
    ).rejects.toMatchObject({
      code: "UnknownVault",
    });
    await expect(
      resolver.resolve({
        keyVaultUrl: "https://sandbox-vault.vault.azure.net/secrets/nope",
        identity: "system",
      }),
    ).rejects.toMatchObject({
      code: "SecretNotFound",
    });
    const uami =
      "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-app";
    await expect(
      resolver.resolve({ keyVaultUrl: `${vault.vaultUrl}secrets/app-a-token`, identity: uami }),
    ).rejects.toMatchObject({
      code: "IdentityNotAuthorized",
    });
    await expect(
      resolver.resolve({ keyVaultUrl: `${vault.vaultUrl}secrets/app-a-token`, identity: "" }),
    ).rejects.toMatchObject({
      code: "IdentityNotAuthorized",
    });
  });
});

describe("the product's Key Vault client (shared/services.ts)", () => {
  const productSecrets = (extra: Record<string, string>) => {
    const dir = mkdtempSync(join(tmpdir(), "kv-ca-"));
    const caFile = join(dir, "ca.pem");
    writeFileSync(caFile, tls.caPem);
    const env = {
      SPIRE_TRUST_DOMAIN: "kv.test",
      SPIRE_SERVER_SOCKET: "/tmp/unused.sock",
      AZURE_SUBSCRIPTION_ID: "00000000-0000-4000-8000-000000000000",
      AZURE_CREDENTIAL: "sandbox",
      APPS_RESOURCE_GROUP: "rg",
      KEY_VAULT_URL: vault.vaultUrl,
      KEY_VAULT_CA_CERT_FILE: caFile,
      ...extra,
    };
    const services = createServices(loadConfig(env), { env });
    rmSync(dir, { recursive: true, force: true });
    return services;
  };

  it("keeps the challenge resource check with only a CA file set", async () => {
    // The emulator's challenge names https://vault.azure.net; a loopback vault cannot match it.
    const services = productSecrets({});
    await expect(services.secrets.getSecret("spire-trust-bundle")).rejects.toThrow(/challenge resource/i);
    await services.close();
  });

  it("skips it only when KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION=true", async () => {
    await client.setSecret("challenge-check", "v");
    const services = productSecrets({ KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: "true" });
    expect((await services.secrets.getSecret("challenge-check")).value).toBe("v");
    await services.close();
  });
});
