/** startAzureServices: everything up in one call, reachable through the real SDKs, and gone after stop(). */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TableClient } from "@azure/data-tables";
import { SecretClient } from "@azure/keyvault-secrets";
import { LogsQueryClient, LogsQueryResultStatus } from "@azure/monitor-query-logs";
import { describe, expect, it } from "vitest";
import { SandboxTokenCredential } from "../../sandbox/azure/credential.js";
import { makeLoopbackTls } from "../../sandbox/azure/tls.js";
import { startAzureServices } from "../../sandbox/emulators/index.js";

function children(): string {
  try {
    return execFileSync("ps", ["--ppid", String(process.pid), "-o", "pid=,args="], { encoding: "utf8" });
  } catch {
    return ""; // ps exits 1 when there are none
  }
}

describe("startAzureServices", () => {
  it("starts logs, alerts, Key Vault and Azurite, and stops them all", async () => {
    const services = await startAzureServices({ startAlerts: false });
    let stopped = false;
    try {
      expect(Object.keys(services.startupMs).sort()).toEqual([
        "azurite",
        "issuer",
        "keyVault",
        "logsApi",
        "tls",
      ]);
      const s = services.settings;
      expect(s).toMatchObject({
        LOG_ANALYTICS_WORKSPACE_ID: services.logs.workspaceId,
        LOGS_CA_CERT_FILE: services.caFile,
        KEY_VAULT_CA_CERT_FILE: services.caFile,
      });
      expect(s.LOGS_ENDPOINT).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/v1$/);
      expect(services.alerts.rules.map((r) => r.name)).toEqual(["spire-agent-attestation-failures"]);

      const credential = new SandboxTokenCredential();
      services.logs.ingestConsole({
        app: "app-x",
        revision: "app-x--1",
        container: "spire-agent",
        stream: "stderr",
        log: "Agent crashed",
      });
      const logsClient = new LogsQueryClient(credential, {
        endpoint: s.LOGS_ENDPOINT,
        credentials: { scopes: ["https://api.loganalytics.io/.default"] },
        tlsOptions: { ca: services.tls.caPem },
      });
      const result = await logsClient.queryWorkspace(
        s.LOG_ANALYTICS_WORKSPACE_ID ?? "",
        "ContainerAppConsoleLogs | count",
        { duration: "PT5M" },
      );
      expect(result.status === LogsQueryResultStatus.Success && result.tables[0]?.rows).toEqual([[1]]);

      const secrets = new SecretClient(s.KEY_VAULT_URL ?? "", credential, {
        tlsOptions: { ca: services.tls.caPem },
        disableChallengeResourceVerification: true,
      });
      const v = await secrets.setSecret("bundle", "pem");
      expect(
        await services.resolveKeyVaultSecret({ keyVaultUrl: v.properties.id ?? "", identity: "system" }),
      ).toBe("pem");

      const table = TableClient.fromConnectionString(s.AzureWebJobsStorage ?? "", "fleet", {
        allowInsecureConnection: true,
      });
      await table.createTable();
      await table.upsertEntity({ partitionKey: "p", rowKey: "r" });
      expect(children()).toContain("azurite");

      await services.stop();
      stopped = true;
      expect(children()).not.toContain("azurite");
      expect(existsSync(services.caFile)).toBe(false);
      await expect(fetch(services.logsApi.url, { signal: AbortSignal.timeout(2_000) })).rejects.toThrow();
    } finally {
      if (!stopped) await services.stop();
    }
  });

  it("cleans up what started when one part fails", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "azsvc-fail-"));
    try {
      const good = await makeLoopbackTls();
      const broken = {
        ...good,
        keyPem: "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
      };
      await expect(startAzureServices({ tls: broken, stateDir })).rejects.toThrow();
      expect(children()).not.toContain("azurite");
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
