import { X509Certificate } from "node:crypto";
import type { ContainerAppsAPIClient } from "@azure/arm-appcontainers";
import type { ComputeManagementClient } from "@azure/arm-compute";
import type { TokenCredential } from "@azure/core-auth";
import { AzureNamedKeyCredential, TableClient, type TableServiceClientOptions } from "@azure/data-tables";
import { SecretClient } from "@azure/keyvault-secrets";
import type { LogsQueryClient } from "@azure/monitor-query-logs";
import { BlobServiceClient } from "@azure/storage-blob";
import { createAzureClients } from "./azure/clients.js";
import { createCredential } from "./azure/credential.js";
import { type VmRunCommandTuning, vmRunCommandOptions } from "./azure/vm-runcommand-options.js";
import { type AppConfig, loadConfig, type SpireGrpcTarget, type SpireVm } from "./config.js";
import { PermanentError } from "./errors.js";
import { createLogger, type LogSink, registerSecret } from "./logging.js";
import { createGrpcSpireServer } from "./spire/grpc.js";
import { splitPem } from "./spire/pem.js";
import { type RefreshingSpire, refreshingSpire } from "./spire/refreshing.js";
import { RunCommandSpireServer } from "./spire/runcommand/adapter.js";
import { type TcpBootstrap, tcpBootstrap } from "./spire/tcp-bootstrap.js";
import type { SpireLogger, SpireServer } from "./spire/types.js";

/*
 * Everything activities reach the world through, built once per worker process from the config
 * and reused by every invocation (clients keep their connections and token caches). What needs a
 * network call to build — the SPIRE server over TCP (admin SVID from Key Vault), over run-commands
 * (the VM's region), the fleet table (created if missing) — is built on first use, and built
 * again after a failed attempt. Tests inject their own bundle with setServicesForTest or pass one
 * to a handler directly.
 */

// Moved to spire/pem.ts for the trust code; kept here for existing importers.
export { splitPem } from "./spire/pem.js";

export interface Services {
  readonly config: AppConfig;
  readonly credential: TokenCredential;
  readonly containerApps: ContainerAppsAPIClient;
  readonly compute: ComputeManagementClient;
  /** Undefined when no Log Analytics workspace is configured: log-based checks are skipped. */
  readonly logs?: { client: LogsQueryClient; workspaceId: string };
  readonly secrets: SecretClient;
  /** The SPIRE server port: gRPC (unix socket, or TCP with mTLS) or run-commands on the VM. */
  spire(): Promise<SpireServer>;
  /**
   * TCP/mTLS mode only: what works without a usable admin SVID (the bundle without a client
   * certificate or from the VM, the admin SVID's bootstrap mint on the VM, a client from a given SVID).
   */
  readonly tcpBootstrap?: TcpBootstrap;
  /** The fleet ledger's table, created if missing (once per process). */
  fleetTable(): Promise<TableClient>;
  /** Closes what this bundle opened (not what was injected). */
  close(): Promise<void>;
}

export interface TcpCredentialTuning {
  checkIntervalMs?: number;
  expiryMarginMs?: number;
  closeDelayMs?: number;
}

export interface ServicesOptions {
  /** Where AzureWebJobsStorage* is read from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Default: from config.azure (DefaultAzureCredential, managed identity, or the sandbox's). */
  credential?: TokenCredential;
  /** A SpireServer to use instead of building one from config; the caller closes it. */
  spire?: SpireServer;
  /** Where the SPIRE adapters log (default console). */
  logSink?: LogSink;
  /** Run-command mode's tuning (defaults suit Azure; the sandbox polls faster). */
  runCommand?: VmRunCommandTuning;
  /** How often a TCP/mTLS client checks Key Vault for new credentials (defaults: 60 s, 5 min margin). */
  tcpCredentials?: TcpCredentialTuning;
}

// Azurite's well-known development account: public, documented by Microsoft, only ever used for
// an http:// tables endpoint (which no real storage account has).
const DEV_ACCOUNT = "devstoreaccount1";
const DEV_ACCOUNT_KEY =
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/** Retries a memoised async build after it failed, instead of caching the failure. */
function lazy<T>(build: () => Promise<T>): { get(): Promise<T>; peek(): Promise<T> | undefined } {
  let pending: Promise<T> | undefined;
  return {
    get() {
      pending ??= build().catch((err: unknown) => {
        pending = undefined;
        throw err;
      });
      return pending;
    },
    peek: () => pending,
  };
}

async function buildSpire(
  config: AppConfig,
  compute: ComputeManagementClient,
  logger: SpireLogger,
  blobService: () => BlobServiceClient,
  tuning: VmRunCommandTuning = {},
): Promise<SpireServer> {
  const { spire } = config;
  if (spire.api === "grpc") {
    const target = spire.grpc;
    if (target.transport === "unix") {
      return createGrpcSpireServer({
        target: { kind: "unix", socketPath: target.socketPath },
        trustDomain: spire.trustDomain,
        logger,
      });
    }
    // TCP is built by tcpSpire(), which rebuilds the client when its credentials change.
    throw new Error("buildSpire does not build the TCP client");
  }
  return buildVmSpire(config, spire.vm, compute, logger, blobService, tuning);
}

/** Run-commands on the VM: the way in for SPIRE_API=run-command, and TCP mode's bootstrap path. */
async function buildVmSpire(
  config: AppConfig,
  spireVm: SpireVm,
  compute: ComputeManagementClient,
  logger: SpireLogger,
  blobService: () => BlobServiceClient,
  tuning: VmRunCommandTuning = {},
): Promise<RunCommandSpireServer> {
  // The lease and output blobs live in the host's storage: every worker of the app shares it.
  return new RunCommandSpireServer({
    ...(await vmRunCommandOptions(config, spireVm, compute, blobService(), logger, tuning)),
    trustDomain: config.spire.trustDomain,
    // Output goes to a blob (not the 4 KB instance view), so a deploy's batch for 20 apps (tokens,
    // entries, the rollover) fits one script: a deploy makes 3 run-commands however many apps.
    maxCallsPerScript: 100,
  });
}

/** `Key=Value;...` connection string fields (keys case-insensitive). */
function connectionStringFields(cs: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const part of cs.split(";")) {
    const at = part.indexOf("=");
    if (at > 0) fields.set(part.slice(0, at).trim().toLowerCase(), part.slice(at + 1).trim());
  }
  return fields;
}

/**
 * FLEET_TABLES_ENDPOINT with the app's identity (or, for an http:// Azurite endpoint, its dev
 * account); else AzureWebJobsStorage: a connection string, or the identity-based
 * `AzureWebJobsStorage__accountName` / `__tableServiceUri` form.
 */
export function createFleetTableClient(
  config: AppConfig,
  credential: TokenCredential,
  env: NodeJS.ProcessEnv,
): TableClient {
  const table = config.fleet.tableName;
  const ca = config.endpoints.tables.ca;
  const tls = ca ? { tlsOptions: { ca } } : {};
  const endpoint = config.endpoints.tables.url;
  if (endpoint !== undefined) {
    const url = new URL(endpoint);
    if (url.protocol === "http:") {
      const account = url.pathname.split("/").filter(Boolean)[0] ?? "";
      if (account !== DEV_ACCOUNT) {
        throw new PermanentError(
          "TablesEndpointInsecure",
          `FLEET_TABLES_ENDPOINT is http but not Azurite's ${DEV_ACCOUNT}: Azure storage needs https.`,
        );
      }
      const options: TableServiceClientOptions = { allowInsecureConnection: true };
      return new TableClient(
        endpoint,
        table,
        new AzureNamedKeyCredential(DEV_ACCOUNT, DEV_ACCOUNT_KEY),
        options,
      );
    }
    return new TableClient(endpoint, table, credential, tls);
  }
  const cs = env.AzureWebJobsStorage;
  if (cs !== undefined && cs !== "") {
    const fields = connectionStringFields(cs);
    const insecure =
      fields.get("usedevelopmentstorage") === "true" ||
      fields.get("defaultendpointsprotocol") === "http" ||
      (fields.get("tableendpoint") ?? "").startsWith("http:");
    return TableClient.fromConnectionString(cs, table, { ...tls, allowInsecureConnection: insecure });
  }
  const serviceUri = env.AzureWebJobsStorage__tableServiceUri;
  const account = env.AzureWebJobsStorage__accountName;
  if (serviceUri || account) {
    return new TableClient(serviceUri || `https://${account}.table.core.windows.net`, table, credential, tls);
  }
  throw new PermanentError(
    "FleetTableNotConfigured",
    "No table storage for the fleet ledger: set FLEET_TABLES_ENDPOINT, or AzureWebJobsStorage (a connection string or __accountName).",
  );
}

/**
 * The Functions host's blob storage (run-command mode's VM lease and output blobs), from the same
 * settings the host uses: AzureWebJobsStorage as a connection string, or the identity-based
 * `AzureWebJobsStorage__accountName` / `__blobServiceUri`.
 */
export function createHostBlobServiceClient(
  credential: TokenCredential,
  env: NodeJS.ProcessEnv,
): BlobServiceClient {
  const cs = env.AzureWebJobsStorage;
  if (cs !== undefined && cs !== "") return BlobServiceClient.fromConnectionString(cs);
  const serviceUri = env.AzureWebJobsStorage__blobServiceUri;
  const account = env.AzureWebJobsStorage__accountName;
  if (serviceUri || account) {
    return new BlobServiceClient(serviceUri || `https://${account}.blob.core.windows.net`, credential);
  }
  throw new PermanentError(
    "HostStorageNotConfigured",
    "SPIRE_API=run-command keeps its per-VM lease in the host's storage: set AzureWebJobsStorage (a connection string, or __accountName / __blobServiceUri).",
  );
}

/** Key Vault's current admin SVID and trust bundle, with their versions. */
async function readTcpCredentials(secrets: SecretClient, adminSecret: string, bundleSecret: string) {
  const [admin, bundle] = await Promise.all([
    secrets.getSecret(adminSecret).catch((err: unknown) => {
      if ((err as { statusCode?: unknown }).statusCode !== 404) throw err;
      throw new PermanentError(
        "AdminSvidMissing",
        `Key Vault has no ${adminSecret} yet: a bundle rotation bootstraps the admin SVID (POST /api/bundle/rotate, or wait for its timer).`,
      );
    }),
    secrets.getSecret(bundleSecret),
  ]);
  return {
    admin: admin.value ?? "",
    bundle: bundle.value ?? "",
    adminVersion: admin.properties.version,
    bundleVersion: bundle.properties.version,
  };
}

/** The TCP/mTLS client, rebuilt whenever Key Vault holds a new admin SVID or bundle version. */
function tcpSpire(
  config: AppConfig,
  target: Extract<SpireGrpcTarget, { transport: "tcp" }>,
  secrets: SecretClient,
  logger: SpireLogger,
  tuning: TcpCredentialTuning = {},
): RefreshingSpire {
  return refreshingSpire({
    read: () =>
      readTcpCredentials(secrets, target.adminSvidSecretName, config.keyVault.trustBundleSecretName),
    async build(c) {
      const { certificates, privateKey } = splitPem(c.admin);
      if (!certificates || !privateKey) {
        throw new PermanentError(
          "AdminSvidInvalid",
          `Key Vault secret ${target.adminSvidSecretName} must hold the admin X509-SVID chain and its private key as PEM.`,
        );
      }
      registerSecret(privateKey);
      const leaf = new X509Certificate(certificates);
      const server = createGrpcSpireServer({
        target: {
          kind: "tcp",
          host: target.host,
          port: target.port,
          trustBundlePem: c.bundle,
          clientCertChainPem: certificates,
          clientKeyPem: privateKey,
        },
        trustDomain: config.spire.trustDomain,
        logger,
      });
      return { server, notAfter: new Date(leaf.validTo) };
    },
    ...tuning,
    onEvent(event) {
      if (event.kind === "rebuilt")
        logger.info("rebuilt the SPIRE client from new Key Vault versions", { ...event.versions });
      else
        logger.warn("could not check the SPIRE credentials in Key Vault; keeping the current client", {
          error: (event.error as Error).message,
        });
    },
  });
}

export function createServices(config: AppConfig, options: ServicesOptions = {}): Services {
  const env = options.env ?? process.env;
  const credential = options.credential ?? createCredential(config.azure);
  const azure = createAzureClients(config, credential);
  const kv = config.endpoints.keyVault;
  const secrets = new SecretClient(config.keyVault.url, credential, {
    ...(kv.ca ? { tlsOptions: { ca: kv.ca } } : {}),
    // The challenge check guards the bearer token against a vault URL that is not Key Vault; only a
    // vault on a loopback name (an emulator) needs it off, and only when it says so itself: a CA
    // file alone (a TLS-inspecting proxy's, say) must not switch it off.
    ...(kv.disableChallengeResourceVerification ? { disableChallengeResourceVerification: true } : {}),
  });
  const spireLogger = createLogger(options.logSink ?? console, { component: "spire" });
  const spireTarget = config.spire.api === "grpc" ? config.spire.grpc : undefined;
  const spire: { get(): Promise<SpireServer>; close(): Promise<void> } =
    !options.spire && spireTarget?.transport === "tcp"
      ? tcpSpire(config, spireTarget, secrets, spireLogger, options.tcpCredentials)
      : (() => {
          const built = lazy(async () =>
            options.spire
              ? options.spire
              : buildSpire(
                  config,
                  azure.compute,
                  spireLogger,
                  () => createHostBlobServiceClient(credential, env),
                  options.runCommand,
                ),
          );
          return {
            get: () => built.get(),
            async close() {
              const server = built.peek();
              if (server && !options.spire) await (await server.catch(() => undefined))?.close();
            },
          };
        })();
  const vmSpire =
    !options.spire && spireTarget?.transport === "tcp" && config.spire.vm
      ? (() => {
          const vm = config.spire.vm;
          return lazy(() =>
            buildVmSpire(
              config,
              vm,
              azure.compute,
              spireLogger,
              () => createHostBlobServiceClient(credential, env),
              options.runCommand,
            ),
          );
        })()
      : undefined;
  const bootstrap =
    !options.spire && spireTarget?.transport === "tcp"
      ? tcpBootstrap({
          target: { host: spireTarget.host, port: spireTarget.port },
          trustDomain: config.spire.trustDomain,
          logger: spireLogger,
          async readVaultBundle() {
            try {
              return (await secrets.getSecret(config.keyVault.trustBundleSecretName)).value;
            } catch (err) {
              if ((err as { statusCode?: unknown }).statusCode === 404) return undefined;
              throw err;
            }
          },
          ...(vmSpire ? { vm: () => vmSpire.get() } : {}),
        })
      : undefined;
  const fleetTable = lazy(async () => {
    const client = createFleetTableClient(config, credential, env);
    // Succeeds when the table exists already (TableAlreadyExists is swallowed by the SDK).
    await client.createTable();
    return client;
  });
  const workspaceId = config.logs.workspaceId;
  return {
    config,
    credential,
    containerApps: azure.containerApps,
    compute: azure.compute,
    ...(azure.logs && workspaceId ? { logs: { client: azure.logs, workspaceId } } : {}),
    secrets,
    spire: () => spire.get(),
    ...(bootstrap ? { tcpBootstrap: bootstrap } : {}),
    fleetTable: () => fleetTable.get(),
    async close() {
      await spire.close();
      const vm = vmSpire?.peek();
      if (vm) await (await vm.catch(() => undefined))?.close();
    },
  };
}

let current: Services | undefined;

/**
 * This process's services, built on first use from `config` (the composition root passes the one
 * it validated at load) or else loadConfig(). Triggers and activities share them.
 */
export function getServices(config?: AppConfig): Services {
  current ??= createServices(config ?? loadConfig());
  return current;
}

/** Replaces the process-wide services (undefined: back to building from config). Tests only. */
export function setServicesForTest(services: Services | undefined): void {
  current = services;
}
