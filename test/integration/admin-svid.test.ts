import "reflect-metadata";
import { webcrypto } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SecretClient } from "@azure/keyvault-secrets";
import * as x509 from "@peculiar/x509";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminSvidEnsure } from "../../activities/admin-svid.js";
import type { AdminSvidEnsureOutput } from "../../activities/contracts.js";
import { SandboxTokenCredential } from "../../sandbox/azure/credential.js";
import { type LoopbackTls, makeLoopbackTls } from "../../sandbox/azure/tls.js";
import { type KeyVaultServer, startKeyVault } from "../../sandbox/emulators/keyvault.js";
import { type SpireServerHandle, startSpireServer } from "../../sandbox/spire/index.js";
import { LocalRunCommands } from "../../sandbox/spire/local-run-commands.js";
import { ensureSpire } from "../../scripts/install-spire.js";
import { loadConfig } from "../../shared/config.js";
import { createServices, type Services } from "../../shared/services.js";
import { splitPem } from "../../shared/spire/pem.js";
import { RunCommandSpireServer } from "../../shared/spire/runcommand/adapter.js";
import type { VirtualMachineRunCommand } from "../../shared/spire/runcommand/azure.js";
import { tcpBootstrap } from "../../shared/spire/tcp-bootstrap.js";

/*
 * The admin SVID's life against a real spire-server (admin_ids lists the product's ID), Key
 * Vault's emulator and run-commands executed by bash against the real CLI: bootstrap with the
 * secret missing (one sealed run-command mint, then MintX509SVID from a CSR), a retry that finds
 * its own version, keep, rotate over the API past half its life (no run-command), bootstrap again
 * for an unusable secret, and the bundle read without a client certificate, or on the VM when
 * Key Vault's bundle cannot verify the server (a CA reset). No key in ARM's view, outputs or logs.
 */

const TD = "admin-svid.test";
const ADMIN = `spiffe://${TD}/spire-autopilot/admin`;
const ADMIN_SECRET = "spire-admin-svid";
const BUNDLE_SECRET = "spire-trust-bundle";
const TTL_SECONDS = 30;

let server: SpireServerHandle;
let tls: LoopbackTls;
let vault: KeyVaultServer;
let secrets: SecretClient;
let services: Services;
let rc: RunCommandSpireServer;
let runCommands: LocalRunCommands;
let dir: string;
const logLines: string[] = [];
/** Everything ARM would show: run-command bodies as created, and every GET of one. */
const armTranscript: string[] = [];
/** Keys minted on the VM for the bootstrap (the test's spy; the product drops them). */
const bootstrapKeys: string[] = [];
const sink = {
  debug: (l: unknown) => logLines.push(String(l)),
  info: (l: unknown) => logLines.push(String(l)),
  warn: (l: unknown) => logLines.push(String(l)),
  error: (l: unknown) => logLines.push(String(l)),
};

const base64Body = (pem: string) => pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");

async function ensure(runId: string): Promise<AdminSvidEnsureOutput> {
  const result = await adminSvidEnsure({ runId }, services, sink);
  if (!result.ok) throw new Error(`adminSvidEnsure failed: ${result.error.message}`);
  // What goes into durable history: facts only.
  expect(JSON.stringify(result)).not.toMatch(/-----BEGIN/);
  return result.value;
}

async function versionsOf(name: string): Promise<string[]> {
  const out: string[] = [];
  for await (const p of secrets.listPropertiesOfSecretVersions(name)) out.push(p.version ?? "");
  return out;
}

beforeAll(async () => {
  const bins = await ensureSpire();
  server = await startSpireServer({ trustDomain: TD, bins, adminIds: [ADMIN] });
  tls = await makeLoopbackTls();
  vault = await startKeyVault({ tls });
  secrets = new SecretClient(vault.vaultUrl, new SandboxTokenCredential(), {
    tlsOptions: { ca: tls.caPem },
    disableChallengeResourceVerification: true,
  });
  const local = server.client();
  await secrets.setSecret(BUNDLE_SECRET, (await local.getBundle()).pem);
  await local.close();
  runCommands = new LocalRunCommands({ provisioningLagMs: 100 });
  const recording = {
    async createOrUpdate(rg: string, vm: string, name: string, body: VirtualMachineRunCommand) {
      armTranscript.push(JSON.stringify(body));
      return runCommands.createOrUpdate(rg, vm, name, body);
    },
    async getByVirtualMachine(rg: string, vm: string, name: string) {
      const view = await runCommands.getByVirtualMachine(rg, vm, name);
      armTranscript.push(JSON.stringify(view));
      return view;
    },
    delete: (rg: string, vm: string, name: string) => runCommands.delete(rg, vm, name),
  };
  rc = new RunCommandSpireServer({
    client: recording as never,
    resourceGroup: "rg-spire",
    vmName: "vm-spire",
    location: "westeurope",
    trustDomain: TD,
    exec: { kind: "direct", serverPath: bins.serverBin, socketPath: server.socketPath },
    pollIntervalMs: 50,
    cooldownMs: 20,
    timeoutSeconds: 60,
    registerSecret: () => undefined,
  });
  dir = mkdtempSync(join(tmpdir(), "admin-svid-"));
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
    ADMIN_SVID_TTL_SECONDS: String(TTL_SECONDS),
    // A 30 s SVID renews at half its life: the rotation must run more often than that (config rule).
    BUNDLE_ROTATION_SCHEDULE: "*/5 * * * * *",
    TRUST_BUNDLE_SECRET_NAME: BUNDLE_SECRET,
  };
  const built = createServices(loadConfig(env), {
    env,
    credential: new SandboxTokenCredential(),
    tcpCredentials: { checkIntervalMs: 500, expiryMarginMs: 20_000, closeDelayMs: 1_000 },
    logSink: sink,
  });
  const vm = {
    getBundle: () => rc.getBundle(),
    async mintX509SvidWithKey(id: string, ttl: number) {
      const svid = await rc.mintX509SvidWithKey(id, ttl);
      bootstrapKeys.push(svid.keyPem);
      return svid;
    },
  };
  services = {
    ...built,
    tcpBootstrap: tcpBootstrap({
      target: { host: server.bindAddress, port: server.port },
      trustDomain: TD,
      logger: {
        debug() {},
        info() {},
        warn: (m) => logLines.push(String(m)),
        error: (m) => logLines.push(String(m)),
      },
      readVaultBundle: async () => (await secrets.getSecret(BUNDLE_SECRET)).value,
      vm: async () => vm,
    }),
  };
}, 10 * 60_000);

afterAll(async () => {
  await services?.close().catch(() => undefined);
  await runCommands?.settle().catch(() => undefined);
  await rc?.close().catch(() => undefined);
  await vault?.close().catch(() => undefined);
  await server?.dispose().catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("the admin SVID: bootstrap, keep, rotate", () => {
  it("reads the bundle over TCP without a client certificate (GetBundle needs no admin)", async () => {
    const got = await services.tcpBootstrap!.getBundle();
    expect(got.via).toBe("api");
    expect(got.bundle.roots.length).toBeGreaterThan(0);
  });

  it("with the secret missing, the product's SPIRE client says how it gets one", async () => {
    await expect(services.spire().then((s) => s.listAgents())).rejects.toThrow(/bootstraps the admin SVID/);
  });

  let first: AdminSvidEnsureOutput;
  it("bootstraps when the secret is missing: one sealed mint on the VM, then the API from a CSR", async () => {
    const t0 = performance.now();
    first = await ensure("run-1");
    const seconds = (performance.now() - t0) / 1000;
    console.log(JSON.stringify({ figures: "admin SVID bootstrap", seconds: Math.round(seconds * 10) / 10 }));
    expect(first).toMatchObject({ lastAction: "bootstrap", minted: "run-command+api", spiffeId: ADMIN });
    expect(first.reason).toMatch(/does not exist/);
    expect(runCommands.created).toHaveLength(1);
    expect(bootstrapKeys).toHaveLength(1);
    const stored = await secrets.getSecret(ADMIN_SECRET);
    expect(stored.properties.version).toBe(first.version);
    expect(stored.properties.contentType).toBe("application/x-pem-file");
    expect(stored.properties.expiresOn?.toISOString()).toBe(first.expiresAt);
    const { certificates, privateKey } = splitPem(stored.value ?? "");
    expect(certificates).toContain("BEGIN CERTIFICATE");
    expect(privateKey).toBeDefined();
    // The stored key is not the bootstrap's: that one was only used once.
    expect(base64Body(privateKey!)).not.toBe(base64Body(bootstrapKeys[0]!));
    expect(JSON.stringify(stored.properties.tags)).not.toMatch(/PRIVATE|KEY-----/);
    expect(stored.properties.tags).toMatchObject({
      spiffeId: ADMIN,
      run: "run-1",
      minted: "run-command+api",
    });
    const lifetime = (Date.parse(first.expiresAt!) - Date.parse(first.notBefore!)) / 1000;
    expect(lifetime).toBeGreaterThan(TTL_SECONDS - 15);
    expect(lifetime).toBeLessThanOrEqual(TTL_SECONDS + 15);
    // The product's client works with it.
    await (await services.spire()).listAgents();
  }, 60_000);

  it("a retry of the same run finds its own version and mints nothing", async () => {
    const before = await versionsOf(ADMIN_SECRET);
    const again = await ensure("run-1");
    expect(again).toMatchObject({ alreadyWritten: true, version: first.version });
    expect(await versionsOf(ADMIN_SECRET)).toEqual(before);
    expect(runCommands.created).toHaveLength(1);
  });

  it("keeps a fresh one", async () => {
    const kept = await ensure("run-2");
    expect(kept).toMatchObject({ lastAction: "keep", minted: "none", version: first.version });
    expect(kept.renewAt).toBeDefined();
  });

  it("rotates past half its life over the API, with no run-command", async () => {
    const wait = Date.parse(first.renewAt!) - Date.now() + 500;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const t0 = performance.now();
    const rotated = await ensure("run-3");
    const seconds = (performance.now() - t0) / 1000;
    console.log(
      JSON.stringify({ figures: "admin SVID rotation (API)", seconds: Math.round(seconds * 10) / 10 }),
    );
    expect(rotated).toMatchObject({ lastAction: "rotate", minted: "api" });
    expect(rotated.reason).toMatch(/past half its lifetime/);
    expect(rotated.version).not.toBe(first.version);
    expect(runCommands.created).toHaveLength(1);
    await (await services.spire()).listAgents();
  }, 60_000);

  it("bootstraps again when the secret is unusable", async () => {
    await secrets.setSecret(ADMIN_SECRET, "not a PEM");
    const again = await ensure("run-4");
    expect(again).toMatchObject({ lastAction: "bootstrap", minted: "run-command+api" });
    expect(again.reason).toMatch(/unusable: no CERTIFICATE block/);
    expect(runCommands.created).toHaveLength(2);
  }, 60_000);

  it("bootstraps when the server refuses a rotation with the current SVID (not its CA's)", async () => {
    // Same ID, past half its life, but signed by a CA the server never had: what a CA reset leaves.
    const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
    x509.cryptoProvider.set(webcrypto as never);
    const keys = await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"]);
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: "01",
      name: "CN=foreign",
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 20_000),
      keys,
      signingAlgorithm: alg,
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: "url", value: ADMIN }])],
    });
    const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
    await secrets.setSecret(
      ADMIN_SECRET,
      `${cert.toString("pem")}\n${x509.PemConverter.encode(pkcs8, "PRIVATE KEY")}\n`,
    );
    const before = runCommands.created.length;
    const again = await ensure("run-5");
    expect(again).toMatchObject({ lastAction: "bootstrap", minted: "run-command+api" });
    expect(again.reason).toMatch(
      /past half its lifetime.*rotating over the API failed .*so bootstrapped on the VM/,
    );
    expect(runCommands.created.length).toBe(before + 1);
    await (await services.spire()).listAgents();
  }, 60_000);

  it("reads the bundle on the VM when Key Vault's bundle cannot verify the server (CA reset)", async () => {
    const good = (await secrets.getSecret(BUNDLE_SECRET)).value ?? "";
    await secrets.setSecret(BUNDLE_SECRET, tls.caPem);
    try {
      const got = await services.tcpBootstrap!.getBundle();
      expect(got.via).toBe("run-command");
      expect(got.apiError).toBeTruthy();
      expect(got.bundle.pem.replace(/\s+/g, "")).toBe(good.replace(/\s+/g, ""));
    } finally {
      await secrets.setSecret(BUNDLE_SECRET, good);
    }
  }, 60_000);

  it("no key appears in ARM's view of the run-commands, nor in the logs", async () => {
    const stored = splitPem((await secrets.getSecret(ADMIN_SECRET)).value ?? "").privateKey ?? "";
    const keys = [...bootstrapKeys, stored].map(base64Body);
    const arm = armTranscript.join("\n");
    const logs = logLines.join("\n");
    expect(armTranscript.length).toBeGreaterThan(0);
    for (const text of [arm, logs]) {
      expect(text).not.toMatch(/PRIVATE KEY/);
      for (const k of keys) {
        expect(text.includes(k)).toBe(false);
        // Nor a recognisable piece of it.
        expect(text.includes(k.slice(20, 80))).toBe(false);
      }
    }
  });

  it("says none outside TCP mode", async () => {
    const unix = createServices(
      loadConfig({
        SPIRE_TRUST_DOMAIN: TD,
        AZURE_SUBSCRIPTION_ID: "00000000-0000-4000-8000-000000000000",
        AZURE_CREDENTIAL: "sandbox",
        APPS_RESOURCE_GROUP: "rg-apps",
        KEY_VAULT_URL: vault.vaultUrl,
        SPIRE_SERVER_SOCKET: server.socketPath,
      }),
      { credential: new SandboxTokenCredential(), logSink: sink },
    );
    const result = await adminSvidEnsure({ runId: "run-x" }, unix, sink);
    expect(result).toMatchObject({ ok: true, value: { lastAction: "none", minted: "none" } });
    await unix.close();
  });
});
