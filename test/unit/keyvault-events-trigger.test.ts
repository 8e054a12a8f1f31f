import { type EventGridEvent, InvocationContext } from "@azure/functions";
import type { DurableClient } from "durable-functions";
import { describe, expect, it } from "vitest";
import { KeyVaultEventRejected, keyVaultEventsHandler } from "../../functions/keyVaultEvents.js";
import type { RotateBundleInput } from "../../orchestrations/rotateBundle.start.js";
import { TaskHubUnavailable } from "../../shared/durable.js";
import { keyVaultEventScope } from "../../shared/keyVaultEvents.js";

const scope = { vaultUrl: "https://kv-spire.vault.azure.net/", secretNames: ["spire-trust-bundle"] };
const TOPIC = "/subscriptions/0/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv-spire";

const event = (over: Partial<EventGridEvent> = {}, data: Record<string, unknown> = {}): EventGridEvent => ({
  id: "e1",
  topic: TOPIC,
  subject: "spire-trust-bundle",
  eventType: "Microsoft.KeyVault.SecretNearExpiry",
  eventTime: "2026-12-01T00:00:00Z",
  data: {
    Id: "https://kv-spire.vault.azure.net/secrets/spire-trust-bundle/v1",
    VaultName: "kv-spire",
    ObjectType: "Secret",
    ObjectName: "spire-trust-bundle",
    Version: "v1",
    NBF: null,
    EXP: null,
    ...data,
  },
  dataVersion: "1",
  metadataVersion: "1",
  ...over,
});

function harness(
  startImpl?: () => Promise<{ kind: "started" | "running"; instanceId: string }>,
  lastOwnWrite?: (secret: string) => Promise<{ version: string; at?: string } | undefined>,
) {
  const starts: RotateBundleInput[] = [];
  const logs: string[] = [];
  const handler = keyVaultEventsHandler({
    scope,
    ...(lastOwnWrite && { lastOwnWrite }),
    start: async (_client, input) => {
      starts.push(input);
      return startImpl ? startImpl() : { kind: "started", instanceId: "rotate-bundle" };
    },
  });
  const context = new InvocationContext({
    functionName: "keyVaultEvents",
    logHandler: (_level, ...args) => logs.push(args.map(String).join(" ")),
  });
  const run = (e: unknown) => handler(e as EventGridEvent, {} as DurableClient, context);
  return { starts, logs, run };
}

describe("keyVaultEvents trigger", () => {
  it("starts one rotation for an accepted event, naming why", async () => {
    const h = harness();
    await h.run(event());
    expect(h.starts).toEqual([
      { trigger: "event", reason: "Microsoft.KeyVault.SecretNearExpiry on spire-trust-bundle (version v1)" },
    ]);
  });

  it("acknowledges another Key Vault event of the vault without starting anything", async () => {
    const h = harness();
    await expect(h.run(event({ eventType: "Microsoft.KeyVault.KeyNearExpiry" }))).resolves.toBeUndefined();
    expect(h.starts).toEqual([]);
    expect(h.logs.join("\n")).toContain("acknowledged and ignored");
  });

  it.each([
    ["not a Key Vault event", event({ eventType: "Microsoft.Storage.BlobCreated" }), /not a Key Vault event/],
    ["another vault", event({ topic: TOPIC.replace("kv-spire", "kv-x") }), /another vault/],
    ["another secret", event({ subject: "other" }, { ObjectName: "other" }), /another secret: "other"/],
    ["not the schema", { id: "x", eventType: "Microsoft.KeyVault.SecretExpired" }, /Event Grid event schema/],
  ])("fails the invocation for %s, naming the problem, and starts nothing", async (_n, e, problem) => {
    const h = harness();
    const err = await h.run(e).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(KeyVaultEventRejected);
    expect((err as Error).message).toMatch(problem);
    expect(h.starts).toEqual([]);
    expect(h.logs.join("\n")).toMatch(/rejected; nothing started/);
  });

  describe("the echo of a version this app wrote itself", () => {
    const created = (version: string) =>
      event(
        { eventType: "Microsoft.KeyVault.SecretNewVersionCreated" },
        { Id: `https://kv-spire.vault.azure.net/secrets/spire-trust-bundle/${version}`, Version: version },
      );
    const ours = async () => ({ version: "v7", at: "2026-12-01T00:00:00Z" });

    it("is acknowledged without a rotation: its writer read the server a moment ago", async () => {
      const h = harness(undefined, ours);
      await h.run(created("v7"));
      expect(h.starts).toEqual([]);
      expect(h.logs.join("\n")).toMatch(
        /version v7 of spire-trust-bundle was written by this app at 2026-12-01T00:00:00Z; nothing to check/,
      );
    });

    it("does not cover anyone else's version", async () => {
      const h = harness(undefined, ours);
      await h.run(created("v8"));
      expect(h.starts).toHaveLength(1);
    });

    it("covers the at-once near-expiry notice of the app's own version", async () => {
      const h = harness(undefined, ours);
      await h.run(
        event({}, { Version: "v7", Id: "https://kv-spire.vault.azure.net/secrets/spire-trust-bundle/v7" }),
      );
      expect(h.starts).toEqual([]);
    });

    it("still checks when the fleet table cannot say", async () => {
      const h = harness(undefined, async () => {
        throw new Error("table unavailable");
      });
      await h.run(created("v7"));
      expect(h.starts).toHaveLength(1);
      expect(h.logs.join("\n")).toMatch(/could not tell whether this app wrote the version/);
    });
  });

  it("lets a task hub outage fail the invocation, so Event Grid redelivers", async () => {
    const h = harness(async () => {
      throw new TaskHubUnavailable("The durable task hub did not answer");
    });
    await expect(h.run(event())).rejects.toBeInstanceOf(TaskHubUnavailable);
  });
});

describe("keyVaultEventScope", () => {
  const keyVault = { url: "https://kv.vault.azure.net/", trustBundleSecretName: "bundle" };
  it("keeps the admin SVID's secret only when mTLS over TCP uses it", () => {
    const tcp = {
      transport: "tcp" as const,
      host: "10.0.0.4",
      port: 8081,
      adminSvidSecretName: "admin-svid",
    };
    expect(keyVaultEventScope({ keyVault, spire: { grpc: tcp } as never }).secretNames).toEqual([
      "bundle",
      "admin-svid",
    ]);
    const unix = { transport: "unix" as const, socketPath: "/tmp/api.sock" };
    expect(keyVaultEventScope({ keyVault, spire: { grpc: unix } as never }).secretNames).toEqual(["bundle"]);
  });
});
