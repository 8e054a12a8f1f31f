import { describe, expect, it } from "vitest";
import { classifyKeyVaultEvent, type KeyVaultEventScope, vaultNameOf } from "../../shared/keyVaultEvents.js";

const scope: KeyVaultEventScope = {
  vaultUrl: "https://kv-spire.vault.azure.net/",
  secretNames: ["spire-trust-bundle", "spire-admin-svid"],
};
const TOPIC = "/subscriptions/0000/resourceGroups/rg-spire/providers/Microsoft.KeyVault/vaults/kv-spire";

/** A SecretNewVersionCreated event as Key Vault sends it, with `over` merged in. */
function kvEvent(over: Record<string, unknown> = {}, data: Record<string, unknown> = {}) {
  return {
    id: "00eccf70-95a7-4e7c-8299-2eb17ee9ad64",
    topic: TOPIC,
    subject: "spire-trust-bundle",
    eventType: "Microsoft.KeyVault.SecretNewVersionCreated",
    eventTime: "2026-12-01T01:08:33.1036736Z",
    data: {
      Id: "https://kv-spire.vault.azure.net/secrets/spire-trust-bundle/ee059b2bb5bc48398a53b168c6cdcb10",
      VaultName: "kv-spire",
      ObjectType: "Secret",
      ObjectName: "spire-trust-bundle",
      Version: "ee059b2bb5bc48398a53b168c6cdcb10",
      NBF: null,
      EXP: 1796083200,
      ...data,
    },
    dataVersion: "1",
    metadataVersion: "1",
    ...over,
  };
}

describe("vaultNameOf", () => {
  it.each([
    ["https://kv-spire.vault.azure.net/", "kv-spire"],
    ["https://KV-Spire.vault.azure.cn", "kv-spire"],
    ["https://127.0.0.1:8443/", "127.0.0.1"],
    ["https://localhost:8443/", "localhost"],
  ])("%s → %s", (url, name) => {
    expect(vaultNameOf(url)).toBe(name);
  });
});

describe("classifyKeyVaultEvent accepts the three secret events on the two secrets", () => {
  it.each([
    ["Microsoft.KeyVault.SecretNewVersionCreated", "spire-trust-bundle"],
    ["Microsoft.KeyVault.SecretNearExpiry", "spire-trust-bundle"],
    ["Microsoft.KeyVault.SecretExpired", "spire-admin-svid"],
  ])("%s on %s", (eventType, secret) => {
    const v = classifyKeyVaultEvent(
      kvEvent(
        { eventType, subject: secret },
        { ObjectName: secret, Id: `https://kv-spire.vault.azure.net/secrets/${secret}/abc`, Version: "abc" },
      ),
      scope,
    );
    expect(v).toEqual({
      kind: "rotate",
      eventId: "00eccf70-95a7-4e7c-8299-2eb17ee9ad64",
      eventType,
      eventTime: "2026-12-01T01:08:33.103Z",
      secret,
      version: "abc",
      expiresOn: "2026-12-01T00:00:00.000Z",
    });
  });

  it("reads the docs' own sample quirks: a key with a trailing space, padded values, numbers as text", () => {
    const quirky = kvEvent({}, {});
    const data = quirky.data as Record<string, unknown>;
    delete data.ObjectName;
    data["ObjectName "] = "spire-trust-bundle";
    data.Version = " ee059b2bb5bc48398a53b168c6cdcb10";
    data.NBF = "1559081980";
    data.EXP = "1559082102";
    const v = classifyKeyVaultEvent(quirky, scope);
    expect(v).toMatchObject({ kind: "rotate", version: "ee059b2bb5bc48398a53b168c6cdcb10" });
    expect(v).toMatchObject({ expiresOn: new Date(1559082102 * 1000).toISOString() });
  });

  it("matches names case-insensitively, as Key Vault does, and returns the configured spelling", () => {
    const v = classifyKeyVaultEvent(
      kvEvent(
        { subject: "SPIRE-Trust-Bundle", topic: TOPIC.replace("kv-spire", "KV-SPIRE") },
        { ObjectName: "SPIRE-Trust-Bundle", VaultName: "KV-Spire" },
      ),
      scope,
    );
    expect(v).toMatchObject({ kind: "rotate", secret: "spire-trust-bundle" });
  });

  it("has no expiresOn when the version has no EXP", () => {
    const v = classifyKeyVaultEvent(kvEvent({}, { EXP: null }), scope);
    expect(v.kind).toBe("rotate");
    expect(v).not.toHaveProperty("expiresOn");
  });
});

describe("classifyKeyVaultEvent acknowledges and ignores other Key Vault events of the vault", () => {
  it.each([
    "Microsoft.KeyVault.CertificateNewVersionCreated",
    "Microsoft.KeyVault.KeyNearExpiry",
    "Microsoft.KeyVault.VaultAccessPolicyChanged",
  ])("%s", (eventType) => {
    const v = classifyKeyVaultEvent(kvEvent({ eventType }, { ObjectType: "Certificate" }), scope);
    expect(v).toEqual({
      kind: "ignore",
      eventId: "00eccf70-95a7-4e7c-8299-2eb17ee9ad64",
      reason: `${eventType} does not bear on the trust material`,
    });
  });
});

describe("classifyKeyVaultEvent rejects, naming the problem", () => {
  const rejected: Array<[string, unknown, RegExp]> = [
    ["not an object", "hello", /not a JSON object/],
    ["an array", [kvEvent()], /not a JSON object/],
    [
      "a CloudEvents event",
      { specversion: "1.0", id: "x", source: TOPIC, type: "Microsoft.KeyVault.SecretNewVersionCreated" },
      /CloudEvents 1\.0.*eventgridschema/,
    ],
    ["no id", { ...kvEvent(), id: undefined }, /Event Grid event schema: id/],
    ["no eventTime", { ...kvEvent(), eventTime: undefined }, /Event Grid event schema: eventTime/],
    ["a bad eventTime", kvEvent({ eventTime: "yesterday" }), /eventTime: not a date-time/],
    ["metadataVersion 2", kvEvent({ metadataVersion: "2" }), /metadataVersion/],
    [
      "a storage event",
      kvEvent({ eventType: "Microsoft.Storage.BlobCreated", topic: "/subscriptions/0/x" }),
      /not a Key Vault event: eventType is "Microsoft.Storage.BlobCreated"/,
    ],
    [
      "a Key Vault type from a topic that is no vault",
      kvEvent({
        topic: "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/x",
      }),
      /topic .* is not a vault's resource id/,
    ],
    [
      "another vault in the topic",
      kvEvent({ topic: TOPIC.replace("kv-spire", "kv-other") }),
      /another vault: "kv-other"; this app's vault is "kv-spire"/,
    ],
    [
      "another vault in data.VaultName",
      kvEvent({}, { VaultName: "kv-other" }),
      /data\.VaultName is "kv-other"/,
    ],
    [
      "another vault in data.Id",
      kvEvent(
        {},
        {
          Id: "https://kv-other.vault.azure.net/secrets/spire-trust-bundle/ee059b2bb5bc48398a53b168c6cdcb10",
        },
      ),
      /data\.Id is on "kv-other\.vault\.azure\.net"/,
    ],
    [
      "another secret",
      kvEvent({ subject: "db-password" }, { ObjectName: "db-password" }),
      /another secret: "db-password"; this app keeps "spire-trust-bundle" and "spire-admin-svid"/,
    ],
    [
      "a subject that is not the object",
      kvEvent({ subject: "spire-admin-svid" }),
      /subject "spire-admin-svid"/,
    ],
    ["a key, not a secret", kvEvent({}, { ObjectType: "Key" }), /data\.objecttype: must be "Secret"/],
    ["no data", kvEvent({ data: undefined }), /data does not fit Key Vault's schema/],
    ["no Version", kvEvent({}, { Version: undefined }), /data\.version/],
    ["EXP that is not a time", kvEvent({}, { EXP: "soon" }), /data\.exp/],
    [
      "an Id of another version",
      kvEvent({}, { Id: "https://kv-spire.vault.azure.net/secrets/spire-trust-bundle/other" }),
      /is not secret "spire-trust-bundle" version/,
    ],
  ];
  it.each(rejected)("%s", (_name, event, problem) => {
    const v = classifyKeyVaultEvent(event, scope);
    expect(v.kind).toBe("reject");
    expect(v.kind === "reject" && v.problem).toMatch(problem);
  });
});

it("cuts the event's own values short in the problem it names", () => {
  const v = classifyKeyVaultEvent(kvEvent({ eventType: `Contoso.${"x".repeat(5000)}` }), scope);
  expect(v.kind === "reject" && v.problem.length).toBeLessThan(400);
  expect(v.kind === "reject" && v.problem).toMatch(/^not a Key Vault event: eventType is "Contoso\.x+…"/);
});
