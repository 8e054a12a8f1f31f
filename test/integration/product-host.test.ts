import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sandboxSettings } from "../../sandbox/environment.js";
import { startHostProcess } from "../../sandbox/host/process.js";

const PRODUCT_APP = resolve(import.meta.dirname, "../../functions/index.ts");
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "product-host-"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("the product app under the local Functions host", () => {
  it("loads its real registrations and serves /api/health", async () => {
    const host = await startHostProcess({
      appEntry: PRODUCT_APP,
      stateDir: join(dir, "ok"),
      env: sandboxSettings("/tmp/spire-autopilot-test/api.sock"),
    });
    try {
      expect(host.functions.map((f) => f.name)).toContain("health");
      const res = await fetch(`${host.url}/api/health`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({
        status: "ok",
        trustDomain: "sandbox.spire-autopilot.test",
        spireApi: "grpc",
      });
    } finally {
      await host.stop();
    }
  });

  it("serves its Key Vault event trigger behind the Event Grid webhook: handshake, and bad input starts nothing", async () => {
    const host = await startHostProcess({
      appEntry: PRODUCT_APP,
      stateDir: join(dir, "events"),
      env: sandboxSettings("/tmp/spire-autopilot-test/api.sock"),
    });
    try {
      const hook = `${host.url}/runtime/webhooks/eventgrid?functionName=keyVaultEvents&code=${host.keys.systemKeys.eventgrid_extension}`;
      const post = (type: string, body: unknown) =>
        fetch(hook, { method: "POST", headers: { "aeg-event-type": type }, body: JSON.stringify(body) });
      const validation = await post("SubscriptionValidation", [
        {
          id: "v",
          eventType: "Microsoft.EventGrid.SubscriptionValidationEvent",
          data: { validationCode: "abc" },
        },
      ]);
      expect(await validation.json()).toEqual({ validationResponse: "abc" });
      const storage = await post("Notification", [
        {
          id: "s1",
          topic: "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa",
          subject: "/blobServices/default/containers/c/blobs/b",
          eventType: "Microsoft.Storage.BlobCreated",
          eventTime: "2026-12-01T00:00:00Z",
          data: {},
          dataVersion: "1",
          metadataVersion: "1",
        },
      ]);
      expect(storage.status).toBe(500);
      expect(await storage.text()).toMatch(
        /not a Key Vault event: eventType is "Microsoft\.Storage\.BlobCreated"/,
      );
      const instances = await fetch(`${host.url}/durabletask/instances/`);
      expect(await instances.json()).toEqual([]);
    } finally {
      await host.stop();
    }
  });

  it("registers the bundle rotation, its timer on the default schedule when the setting is unset", async () => {
    // The host resolves "%NAME%" only from app settings and fails when one is unset, so the
    // timer must get the validated value: the 15-minute default has to apply without the setting.
    const host = await startHostProcess({
      appEntry: PRODUCT_APP,
      stateDir: join(dir, "bundle"),
      env: sandboxSettings("/tmp/spire-autopilot-test/api.sock"),
    });
    try {
      const byName = new Map(host.functions.map((f) => [f.name, f]));
      expect(byName.get("bundleRotationTimer")).toMatchObject({ kind: "timer", detail: "0 */15 * * * *" });
      expect([...byName.keys()]).toEqual(
        expect.arrayContaining(["bundleRotate", "bundleStatus", "rotateBundle", "bundleSync"]),
      );
    } finally {
      await host.stop();
    }
  });

  it("refuses to start with one error naming every missing or invalid setting", async () => {
    const settings: Record<string, string | undefined> = {
      ...sandboxSettings("/tmp/spire-autopilot-test/api.sock"),
      SPIRE_TRUST_DOMAIN: "",
      KEY_VAULT_URL: "http://not-https.example",
      AZURE_SUBSCRIPTION_ID: "",
    };
    const failure = startHostProcess({ appEntry: PRODUCT_APP, stateDir: join(dir, "bad"), env: settings });
    await expect(failure).rejects.toThrow(/HOST_FAILED Invalid configuration \(3 problems\)/);
    const message = String(await failure.catch((e: Error) => e.message));
    expect(message).toMatch(/SPIRE_TRUST_DOMAIN is missing/);
    expect(message).toMatch(/AZURE_SUBSCRIPTION_ID is missing/);
    expect(message).toMatch(/KEY_VAULT_URL is invalid/);
    expect(message).not.toContain("not-https.example");
  });
});
