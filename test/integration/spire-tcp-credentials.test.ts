import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SecretClient } from "@azure/keyvault-secrets";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SandboxTokenCredential } from "../../sandbox/azure/credential.js";
import { type LoopbackTls, makeLoopbackTls } from "../../sandbox/azure/tls.js";
import { type KeyVaultServer, startKeyVault } from "../../sandbox/emulators/keyvault.js";
import { mintAdminSvid } from "../../sandbox/spire/admin.js";
import { type SpireServerHandle, startSpireServer } from "../../sandbox/spire/index.js";
import { ensureSpire } from "../../scripts/install-spire.js";
import { loadConfig } from "../../shared/config.js";
import { createServices, type Services } from "../../shared/services.js";
import { createGrpcSpireServer } from "../../shared/spire/grpc.js";
import type { SpireServer } from "../../shared/spire/types.js";

/*
 * A long-lived worker over TCP with mTLS outlives its admin SVID: the secret in Key Vault is renewed
 * every half lifetime, the server is restarted after each old SVID expired (so the worker must make a
 * new TLS handshake, where an expired client certificate is refused), and every call succeeds.
 */

const TD = "tcp-creds.test";
const ADMIN = `spiffe://${TD}/spire-autopilot/admin`;
const ADMIN_SECRET = "spire-admin-svid";
const BUNDLE_SECRET = "spire-trust-bundle";
const TTL_SECONDS = 12;

let server: SpireServerHandle;
let local: SpireServer;
let tls: LoopbackTls;
let vault: KeyVaultServer;
let secrets: SecretClient;
let services: Services;
let dir: string;
const logLines: string[] = [];

async function renewAdminSvid(): Promise<void> {
  const svid = await mintAdminSvid(local, ADMIN, TTL_SECONDS);
  await secrets.setSecret(ADMIN_SECRET, `${svid.certChainPem}${svid.keyPem}`, {
    contentType: "application/x-pem-file",
  });
}

beforeAll(async () => {
  const bins = await ensureSpire();
  server = await startSpireServer({ trustDomain: TD, bins, adminIds: [ADMIN] });
  local = createGrpcSpireServer({ target: { kind: "unix", socketPath: server.socketPath }, trustDomain: TD });
  tls = await makeLoopbackTls();
  vault = await startKeyVault({ tls });
  secrets = new SecretClient(vault.vaultUrl, new SandboxTokenCredential(), {
    tlsOptions: { ca: tls.caPem },
    disableChallengeResourceVerification: true,
  });
  await secrets.setSecret(BUNDLE_SECRET, (await local.getBundle()).pem);
  await renewAdminSvid();
  dir = mkdtempSync(join(tmpdir(), "tcp-creds-"));
  const caFile = join(dir, "kv-ca.pem");
  writeFileSync(caFile, tls.caPem);
  const env = {
    SPIRE_TRUST_DOMAIN: TD,
    AZURE_SUBSCRIPTION_ID: "00000000-0000-4000-8000-000000000000",
    AZURE_CREDENTIAL: "sandbox",
    APPS_RESOURCE_GROUP: "rg-apps",
    KEY_VAULT_URL: vault.vaultUrl,
    KEY_VAULT_CA_CERT_FILE: caFile,
    KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: "true",
    SPIRE_SERVER_ADDRESS: `${server.bindAddress}:${server.port}`,
    SPIRE_ADMIN_SVID_SECRET: ADMIN_SECRET,
    TRUST_BUNDLE_SECRET_NAME: BUNDLE_SECRET,
  };
  services = createServices(loadConfig(env), {
    env,
    credential: new SandboxTokenCredential(),
    tcpCredentials: { checkIntervalMs: 1_000, expiryMarginMs: 4_000, closeDelayMs: 2_000 },
    logSink: {
      debug: (l) => logLines.push(String(l)),
      info: (l) => logLines.push(String(l)),
      warn: (l) => logLines.push(String(l)),
      error: (l) => logLines.push(String(l)),
    },
  });
}, 10 * 60_000);

afterAll(async () => {
  await services?.close().catch(() => undefined);
  await local?.close().catch(() => undefined);
  await vault?.close().catch(() => undefined);
  await server?.dispose().catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("the TCP/mTLS client across admin SVID lifetimes", () => {
  it("a worker outlives three SVID lifetimes and every call succeeds", async () => {
    let calls = 0;
    let failed = 0;
    const call = async () => {
      calls++;
      try {
        await (await services.spire()).listAgents();
      } catch {
        failed++;
      }
    };
    const deadline = Date.now() + 3 * TTL_SECONDS * 1000 + 2_000;
    let nextRenewal = Date.now() + (TTL_SECONDS * 1000) / 2;
    let renewals = 0;
    let restarts = 0;
    while (Date.now() < deadline) {
      await call();
      if (Date.now() >= nextRenewal) {
        await renewAdminSvid();
        renewals++;
        nextRenewal += (TTL_SECONDS * 1000) / 2;
        // Every other renewal, the SVID the worker started with is past its life: drop every
        // connection so the worker has to handshake again.
        if (renewals % 2 === 0) {
          await server.restart();
          restarts++;
        }
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    console.log(
      JSON.stringify({ figures: "tcp credentials", lifetimes: 3, calls, failed, renewals, restarts }),
    );
    expect(restarts).toBeGreaterThanOrEqual(2);
    expect(failed).toBe(0);
    expect(logLines.some((l) => l.includes("rebuilt the SPIRE client"))).toBe(true);
    // The admin key never reaches the log.
    expect(logLines.some((l) => l.includes("PRIVATE KEY"))).toBe(false);
  }, 120_000);
});
