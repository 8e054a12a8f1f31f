import { afterEach, describe, expect, it } from "vitest";
import { reattestPrepare } from "../../activities/reattest.js";
import { loadConfig } from "../../shared/config.js";
import { PermanentError } from "../../shared/errors.js";
import {
  createFleetTableClient,
  createHostBlobServiceClient,
  createServices,
  getServices,
  type Services,
  setServicesForTest,
  splitPem,
} from "../../shared/services.js";

const BASE = {
  SPIRE_TRUST_DOMAIN: "example.org",
  SPIRE_SERVER_SOCKET: "/tmp/spire-server/private/api.sock",
  AZURE_SUBSCRIPTION_ID: "6f1c2a9e-3b7d-4c55-9a1e-2d8f0b7c4e13",
  AZURE_CREDENTIAL: "sandbox",
  APPS_RESOURCE_GROUP: "rg-agents",
  KEY_VAULT_URL: "https://myvault.vault.azure.net/",
};
const config = (extra: Record<string, string> = {}) => loadConfig({ ...BASE, ...extra });
const credential = createServices(config()).credential;

afterEach(() => setServicesForTest(undefined));

describe("createHostBlobServiceClient (run-command mode's lease and output blobs)", () => {
  it("uses the host's AzureWebJobsStorage connection string", () => {
    const cs =
      "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;";
    const b = createHostBlobServiceClient(credential, { AzureWebJobsStorage: cs });
    expect(b.url).toBe("http://127.0.0.1:10000/devstoreaccount1");
    expect(b.accountName).toBe("devstoreaccount1");
  });

  it("uses the identity-based form: __blobServiceUri, else __accountName", () => {
    expect(
      createHostBlobServiceClient(credential, {
        AzureWebJobsStorage__blobServiceUri: "https://st1.blob.core.windows.net",
      }).url,
    ).toMatch(/^https:\/\/st1\.blob\.core\.windows\.net\/?$/);
    expect(createHostBlobServiceClient(credential, { AzureWebJobsStorage__accountName: "st2" }).url).toMatch(
      /^https:\/\/st2\.blob\.core\.windows\.net\/?$/,
    );
  });

  it("refuses to go on without the host's storage, naming the setting", () => {
    expect(() => createHostBlobServiceClient(credential, {})).toThrow(PermanentError);
    expect(() => createHostBlobServiceClient(credential, {})).toThrow(/AzureWebJobsStorage/);
  });
});

describe("createFleetTableClient", () => {
  it("uses Azurite's dev account for an http FLEET_TABLES_ENDPOINT", () => {
    const c = config({ FLEET_TABLES_ENDPOINT: "http://127.0.0.1:10002/devstoreaccount1" });
    const t = createFleetTableClient(c, credential, {});
    expect(t.url).toBe("http://127.0.0.1:10002/devstoreaccount1");
    expect(t.tableName).toBe("fleet");
  });

  it("refuses http for anything but Azurite", () => {
    const c = config({ FLEET_TABLES_ENDPOINT: "http://storage.example.com/acct" });
    expect(() => createFleetTableClient(c, credential, {})).toThrow(PermanentError);
  });

  it("takes an https endpoint with the app's identity", () => {
    const c = config({
      FLEET_TABLES_ENDPOINT: "https://acct.table.core.windows.net",
      FLEET_TABLE_NAME: "ledger",
    });
    const t = createFleetTableClient(c, credential, {});
    expect(t.url).toBe("https://acct.table.core.windows.net");
    expect(t.tableName).toBe("ledger");
  });

  it("falls back to AzureWebJobsStorage: connection string or identity-based account", () => {
    const cs =
      "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;TableEndpoint=http://127.0.0.1:4567/devstoreaccount1;";
    expect(createFleetTableClient(config(), credential, { AzureWebJobsStorage: cs }).url).toBe(
      "http://127.0.0.1:4567/devstoreaccount1",
    );
    expect(
      createFleetTableClient(config(), credential, { AzureWebJobsStorage__accountName: "prodacct" }).url,
    ).toBe("https://prodacct.table.core.windows.net");
  });

  it("says what to set when there is no storage at all", () => {
    expect(() => createFleetTableClient(config(), credential, {})).toThrow(/FLEET_TABLES_ENDPOINT/);
  });
});

describe("splitPem", () => {
  it("separates the admin SVID chain from its key", () => {
    const cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
    const key = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----";
    expect(splitPem(`${cert}\n${cert}\n${key}\n`)).toEqual({
      certificates: `${cert}\n${cert}`,
      privateKey: key,
    });
    expect(splitPem(cert)).toEqual({ certificates: cert });
  });
});

describe("process-wide services", () => {
  it("builds lazily, and tests can inject their own", async () => {
    const services = createServices(config());
    expect(services.logs).toBeUndefined();
    expect(
      createServices(config({ LOG_ANALYTICS_WORKSPACE_ID: "3c8e1f52-9a07-4b6d-b2e4-5f0a9d7c1e38" })).logs,
    ).toBeDefined();
    const fake = { ...services, config: config({ APPS_RESOURCE_GROUP: "rg-injected" }) } satisfies Services;
    setServicesForTest(fake);
    expect(getServices()).toBe(fake);
  });

  it("a handler without services and without a valid config fails permanently, not by throwing", async () => {
    const saved = process.env.SPIRE_TRUST_DOMAIN;
    delete process.env.SPIRE_TRUST_DOMAIN;
    try {
      const lines: string[] = [];
      const push = (l: unknown) => lines.push(String(l));
      const r = await reattestPrepare({ app: "app-a" }, undefined, {
        debug: push,
        info: push,
        warn: push,
        error: push,
      });
      expect(r).toMatchObject({ ok: false, error: { code: "ConfigError" } });
    } finally {
      if (saved !== undefined) process.env.SPIRE_TRUST_DOMAIN = saved;
    }
  });
});
