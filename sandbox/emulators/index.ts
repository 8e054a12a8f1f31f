/**
 * One call that starts the sandbox's Azure data-plane stand-ins, and one that stops them:
 *  - the Log Analytics workspace (logs store + query API over HTTPS),
 *  - log search alert rules (the product's shared/kql/alert-rules.json by default) with webhook
 *    delivery, and the Entra-like issuer whose tokens secure webhooks carry,
 *  - Key Vault secrets over HTTPS, with its Event Grid events pushed to webhook subscriptions
 *    (keyVault.subscribeEventGrid), and the Key Vault reference resolver Container Apps use,
 *  - Azurite (Blob, Queue, Table).
 * Everything binds 127.0.0.1 on free ports; a failure while starting stops what did start.
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { AlertEngine } from "../azure/alerts/engine.js";
import { startTokenIssuer, type TokenIssuer } from "../azure/alerts/issuer.js";
import { type AlertRule, loadAlertRules } from "../azure/alerts/rules.js";
import type { WebhookReceiver } from "../azure/alerts/webhook.js";
import { type EventForwarder, type EventSource, forwardEvents } from "../azure/logs/bridge.js";
import { REAL_TIME, type ScaledClock } from "../azure/logs/clock.js";
import { type FileFollower, followSpireServerLog } from "../azure/logs/follow.js";
import { type LogsApi, startLogsApi } from "../azure/logs/server.js";
import { LogStore } from "../azure/logs/store.js";
import { type LoopbackTls, makeLoopbackTls } from "../azure/tls.js";
import { makeShortTempDir, removeOwnedDir } from "../spire/process.js";
import { type AzuriteHandle, startAzurite } from "./azurite.js";
import { type KeyVaultServer, SANDBOX_TENANT_ID, startKeyVault } from "./keyvault.js";
import { KeyVaultReferenceResolver } from "./keyvault-references.js";

export const PRODUCT_ALERT_RULES_FILE = path.resolve(
  import.meta.dirname,
  "../../shared/kql/alert-rules.json",
);

export interface AzureServicesOptions {
  /** Folder for the CA file the *_CA_CERT_FILE settings name; default a temp dir removed on stop. */
  stateDir?: string;
  /** Share a CA with the ARM simulator (its makeLoopbackTls result); default: a new one. */
  tls?: LoopbackTls;
  clock?: ScaledClock;
  /** Default: the product's rules. */
  alertRules?: readonly AlertRule[];
  /** The action group's webhook receivers; can be set later with alerts.setReceivers(). */
  alertReceivers?: readonly WebhookReceiver[];
  /** Start evaluating alert rules at once (default true). */
  startAlerts?: boolean;
  /** Retry delays of webhook deliveries (sandbox clock). */
  webhookRetryDelaysMs?: readonly number[];
  /** Other host names of the vault (e.g. the product's configured *.vault.azure.net). */
  keyVaultAliases?: readonly string[];
  azurite?: boolean;
  keyVault?: boolean;
  /** Where the vault "lives" in ARM: its resource id is its Event Grid events' topic. */
  keyVaultResource?: { subscriptionId: string; resourceGroup: string };
  /** Log Analytics ingestion latency on the sandbox clock (see LogStoreOptions); default none. */
  logIngestionDelayMs?: { min: number; max: number };
  log?: (message: string) => void;
}

export interface AzureServices {
  tls: LoopbackTls;
  /** PEM file of the CA every HTTPS service here chains to. */
  caFile: string;
  clock: ScaledClock;
  logs: LogStore;
  logsApi: LogsApi;
  issuer: TokenIssuer;
  alerts: AlertEngine;
  keyVault?: KeyVaultServer;
  keyVaultReferences?: KeyVaultReferenceResolver;
  azurite?: AzuriteHandle;
  /** App settings that point the product here (merge into the host's environment). */
  settings: Record<string, string>;
  /** Milliseconds each part took to start (they start in parallel). */
  startupMs: Record<string, number>;
  /** Follows a spire-server log file into Syslog until stop(). */
  followSpireServer(logFile: string, opts?: { processId?: number; computer?: string }): Promise<FileFollower>;
  /** Forwards the Container Apps simulator's console/system events into the logs until stop(). */
  forwardSimulatorEvents(events: EventSource): EventForwarder;
  /** For the simulator's `keyVault` option: the value a replica gets for a Key Vault reference. */
  resolveKeyVaultSecret(secret: { keyVaultUrl: string; identity: string }): Promise<string>;
  stop(): Promise<void>;
}

async function timed<T>(
  startupMs: Record<string, number>,
  name: string,
  start: () => Promise<T>,
): Promise<T> {
  const t0 = Date.now();
  const out = await start();
  startupMs[name] = Date.now() - t0;
  return out;
}

export async function startAzureServices(options: AzureServicesOptions = {}): Promise<AzureServices> {
  const log = options.log ?? (() => undefined);
  const clock = options.clock ?? REAL_TIME;
  const ownsDir = options.stateDir === undefined;
  const stateDir = options.stateDir ?? makeShortTempDir("azsvc-");
  const cleanups: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
    if (ownsDir) await removeOwnedDir(stateDir);
  };

  try {
    await fs.mkdir(stateDir, { recursive: true });
    const startupMs: Record<string, number> = {};
    const tls = options.tls ?? (await timed(startupMs, "tls", () => makeLoopbackTls()));
    const caFile = path.join(stateDir, "azure-data-plane-ca.pem");
    await fs.writeFile(caFile, tls.caPem);
    const logs = new LogStore({ clock, ingestionDelayMs: options.logIngestionDelayMs });

    // Parallel starts; every one that succeeds registers its cleanup before anything can throw.
    const started = await Promise.allSettled([
      timed(startupMs, "logsApi", async () => {
        const api = await startLogsApi({ store: logs, tls });
        cleanups.push(() => api.close());
        return api;
      }),
      timed(startupMs, "issuer", async () => {
        const issuer = await startTokenIssuer({ tls });
        cleanups.push(() => issuer.close());
        return issuer;
      }),
      options.keyVault === false
        ? Promise.resolve(undefined)
        : timed(startupMs, "keyVault", async () => {
            const kv = await startKeyVault({ tls, clock, ...options.keyVaultResource, log });
            cleanups.push(() => kv.close());
            return kv;
          }),
      options.azurite === false
        ? Promise.resolve(undefined)
        : timed(startupMs, "azurite", async () => {
            const az = await startAzurite();
            cleanups.push(() => az.stop());
            return az;
          }),
    ]);
    const failed = started.find((s): s is PromiseRejectedResult => s.status === "rejected");
    if (failed) throw failed.reason;
    const [logsApi, issuer, keyVault, azurite] = started.map(
      (s) => (s as PromiseFulfilledResult<unknown>).value,
    ) as [LogsApi, TokenIssuer, KeyVaultServer | undefined, AzuriteHandle | undefined];

    const rules = options.alertRules ?? loadAlertRules(PRODUCT_ALERT_RULES_FILE);
    const alerts = new AlertEngine({
      store: logs,
      rules,
      receivers: options.alertReceivers ?? [],
      clock,
      issuer,
      caPem: tls.caPem,
      retryDelaysMs: options.webhookRetryDelaysMs,
      logsApiUrl: logsApi.url,
    });
    cleanups.push(() => alerts.stop());
    if (options.startAlerts !== false) alerts.start();

    const keyVaultReferences = keyVault
      ? new KeyVaultReferenceResolver({
          vaults: [{ url: keyVault.vaultUrl, aliases: options.keyVaultAliases }],
          caPem: tls.caPem,
          clock,
        })
      : undefined;

    const settings: Record<string, string> = {
      LOG_ANALYTICS_WORKSPACE_ID: logs.workspaceId,
      LOGS_ENDPOINT: logsApi.endpoint,
      LOGS_CA_CERT_FILE: caFile,
      AUTHORITY_HOST: issuer.url,
      AUTHORITY_CA_CERT_FILE: caFile,
      ALERT_TENANT_ID: SANDBOX_TENANT_ID,
    };
    if (keyVault) {
      settings.KEY_VAULT_URL = keyVault.vaultUrl;
      settings.KEY_VAULT_CA_CERT_FILE = caFile;
      // The emulator's challenge names https://vault.azure.net, which a loopback host cannot match.
      settings.KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION = "true";
    }
    if (azurite) {
      // Shared-key auth over http: the host and the fleet ledger use the connection string.
      settings.AzureWebJobsStorage = azurite.connectionString;
    }

    const followers: FileFollower[] = [];
    const forwarders: EventForwarder[] = [];
    cleanups.push(async () => {
      for (const f of forwarders) f.stop();
      await Promise.all(followers.map((f) => f.stop()));
    });

    log(
      `Azure data plane: logs ${logsApi.endpoint}, issuer ${issuer.url}` +
        `${keyVault ? `, Key Vault ${keyVault.vaultUrl}` : ""}${azurite ? `, Azurite ${azurite.tableEndpoint}` : ""}`,
    );
    let stopped = false;
    return {
      tls,
      caFile,
      clock,
      logs,
      logsApi,
      issuer,
      alerts,
      keyVault,
      keyVaultReferences,
      azurite,
      settings,
      startupMs,
      async followSpireServer(logFile, opts = {}) {
        const f = await followSpireServerLog(logFile, logs, opts);
        followers.push(f);
        return f;
      },
      forwardSimulatorEvents(events) {
        const f = forwardEvents(events, logs);
        forwarders.push(f);
        return f;
      },
      async resolveKeyVaultSecret(secret) {
        if (!keyVaultReferences) throw new Error("Key Vault is not running in this sandbox");
        return (await keyVaultReferences.resolve(secret)).value;
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        await stopAll();
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
