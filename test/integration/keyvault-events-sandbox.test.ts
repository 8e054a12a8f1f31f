import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { SecretClient } from "@azure/keyvault-secrets";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SandboxTokenCredential } from "../../sandbox/azure/credential.js";
import { type LoopbackTls, makeLoopbackTls } from "../../sandbox/azure/tls.js";
import type { EventSubscription } from "../../sandbox/emulators/eventgrid.js";
import { type KeyVaultServer, startKeyVault } from "../../sandbox/emulators/keyvault.js";
import {
  KEY_VAULT_EVENTS_FUNCTION,
  KEY_VAULT_SECRET_EVENT_TYPES,
  sandboxSettings,
  trustMaterialSecrets,
} from "../../sandbox/environment.js";
import { type HostProcess, startHostProcess } from "../../sandbox/host/process.js";
import { readJournal } from "../../sandbox/host/samples/journal.js";

/*
 * Key Vault → Event Grid → the local host's webhook → the product's keyVaultEvents handler →
 * startRotateBundle, wired as sandbox/environment.ts wires them. The app is the product's handler
 * and scope with a stand-in rotateBundle orchestration (test/integration/apps).
 */

const APP = resolve(import.meta.dirname, "apps/keyvault-events-app.ts");

let dir: string;
let tls: LoopbackTls;
let vault: KeyVaultServer;
let otherVault: KeyVaultServer;
let host: HostProcess;
let client: SecretClient;
let journal: string;
let sub: EventSubscription;
let settings: Record<string, string>;

const rotations = () =>
  readJournal(journal)
    .filter((e) => e.fn === "rotateBundle")
    .map((e) => JSON.parse(e.key) as { trigger: string; reason: string });

const webhook = () =>
  `${host.url}/runtime/webhooks/eventgrid?functionName=${KEY_VAULT_EVENTS_FUNCTION}&code=${host.keys.systemKeys.eventgrid_extension}`;

async function instance(): Promise<{ runtimeStatus: string } | undefined> {
  const res = await fetch(`${host.url}/durabletask/instances/rotate-bundle`);
  return res.status === 404 ? undefined : ((await res.json()) as { runtimeStatus: string });
}

async function until<T>(read: () => Promise<T> | T, ok: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const inAnHour = () => new Date(Date.now() + 3_600_000);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "kv-events-"));
  journal = join(dir, "journal.ndjson");
  tls = await makeLoopbackTls();
  vault = await startKeyVault({ tls });
  otherVault = await startKeyVault({ tls });
  settings = { ...sandboxSettings("/tmp/spire-autopilot-test/api.sock"), KEY_VAULT_URL: vault.vaultUrl };
  host = await startHostProcess({
    appEntry: APP,
    stateDir: join(dir, "host"),
    env: { ...settings, SAMPLE_JOURNAL: journal },
  });
  client = new SecretClient(vault.vaultUrl, new SandboxTokenCredential(), {
    tlsOptions: { ca: tls.caPem },
    disableChallengeResourceVerification: true,
    retryOptions: { maxRetries: 0 },
  });
  sub = await vault.subscribeEventGrid({
    name: "spire-autopilot-trust-material",
    endpointUrl: webhook(),
    includedEventTypes: KEY_VAULT_SECRET_EVENT_TYPES,
    subjectIn: trustMaterialSecrets(settings),
  });
});

afterAll(async () => {
  await host?.stop();
  await vault?.close();
  await otherVault?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("Key Vault events through the sandbox's Event Grid and local host", () => {
  it("validates the product's webhook with the eventgrid_extension key", () => {
    expect(host.functions).toContainEqual(
      expect.objectContaining({ name: "keyVaultEvents", kind: "eventGrid" }),
    );
    expect(sub.name).toBe("spire-autopilot-trust-material");
  });

  it("starts one rotation for a burst of events while it runs, and another once it has finished", async () => {
    // Three new versions of short-lived material: three SecretNewVersionCreated and, since each
    // expires within 30 days, SecretNearExpiry at once: a burst of events during one rotation.
    for (const pem of ["PEM-1", "PEM-2", "PEM-3"]) {
      await client.setSecret("spire-trust-bundle", pem, { expiresOn: inAnHour() });
    }
    await client.setSecret("unrelated-secret", "x");
    await sub.waitIdle(15_000);
    const delivered = sub.attempts.filter((a) => a.status === 202);
    expect(delivered.length).toBeGreaterThanOrEqual(4);
    expect(sub.attempts.every((a) => a.status === 202)).toBe(true);
    expect(sub.attempts.some((a) => a.subject === "unrelated-secret")).toBe(false);
    expect(new Set(delivered.map((a) => a.eventType))).toEqual(
      new Set(["Microsoft.KeyVault.SecretNewVersionCreated", "Microsoft.KeyVault.SecretNearExpiry"]),
    );
    await until(instance, (s) => s?.runtimeStatus === "Running");
    const started = await until(rotations, (r) => r.length >= 1);
    expect(started).toHaveLength(1);
    expect(started[0]).toMatchObject({
      trigger: "event",
      reason: expect.stringMatching(
        /^Microsoft\.KeyVault\.Secret\w+ on spire-trust-bundle \(version [0-9a-f]{32}\)$/,
      ),
    });

    const finish = await fetch(`${host.url}/durabletask/instances/rotate-bundle/raiseEvent/finish`, {
      method: "POST",
      body: "null",
    });
    expect(finish.status).toBe(202);
    await until(instance, (s) => s?.runtimeStatus === "Completed");
    await client.setSecret("spire-trust-bundle", "PEM-4");
    await sub.waitIdle(15_000);
    expect((await until(rotations, (r) => r.length >= 2)).length).toBe(2);
    // Nothing leaked the values into the journal or the host's output.
    expect(host.output()).not.toMatch(/PEM-[1-4]/);
  });

  it("fails every delivery from another vault with the problem named, and Event Grid gives up; nothing starts", async () => {
    const before = rotations().length;
    const stray = await otherVault.subscribeEventGrid({
      name: "misdirected",
      endpointUrl: webhook(),
      retryDelaysMs: [20],
      maxDeliveryAttempts: 2,
    });
    try {
      const otherClient = new SecretClient(otherVault.vaultUrl, new SandboxTokenCredential(), {
        tlsOptions: { ca: tls.caPem },
        disableChallengeResourceVerification: true,
        retryOptions: { maxRetries: 0 },
      });
      await otherClient.setSecret("spire-trust-bundle", "PEM-X");
      await stray.waitIdle(10_000);
      expect(stray.attempts.map((a) => a.status)).toEqual([500, 500]);
      expect(stray.deadLettered).toHaveLength(1);
      await host.waitForOutput(
        /Key Vault event rejected, nothing started: the event names another vault/,
        5000,
      );
      expect(rotations().length).toBe(before);
    } finally {
      stray.delete();
    }
  });

  it("answers a forged delivery for another secret 500 naming it, and starts nothing", async () => {
    const before = rotations().length;
    const res = await fetch(webhook(), {
      method: "POST",
      headers: { "content-type": "application/json", "aeg-event-type": "Notification" },
      body: JSON.stringify([
        {
          id: "forged-1",
          topic: vault.resourceId,
          subject: "db-password",
          eventType: "Microsoft.KeyVault.SecretNewVersionCreated",
          eventTime: new Date().toISOString(),
          data: {
            Id: `${vault.vaultUrl}secrets/db-password/0123`,
            VaultName: vault.vaultName,
            ObjectType: "Secret",
            ObjectName: "db-password",
            Version: "0123",
            NBF: null,
            EXP: null,
          },
          dataVersion: "1",
          metadataVersion: "1",
        },
      ]),
    });
    expect(res.status).toBe(500);
    expect(await res.text()).toMatch(/another secret: "db-password"/);
    const noHeader = await fetch(webhook(), { method: "POST", body: "[]" });
    expect(noHeader.status).toBe(400);
    expect(rotations().length).toBe(before);
  });
});
