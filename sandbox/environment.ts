import { join, resolve } from "node:path";
import { ensureSpire } from "../scripts/install-spire.js";
import {
  type AzureSimulator,
  SpireSidecarRuntime,
  spireServerContainer,
  startAzureSimulator,
} from "./azure/index.js";
import { type ProfileName, resolveProfile } from "./azure/profiles.js";
import type { EventSubscription } from "./emulators/eventgrid.js";
import { type AzureServices, startAzureServices } from "./emulators/index.js";
import { type HostProcess, startHostProcess } from "./host/process.js";
import { type LogLevel, type SpireServerHandle, startSpireServer } from "./spire/index.js";
import type { SpireServerOptions } from "./spire/server.js";

/**
 * The local stand-in for Azure, all on 127.0.0.1: a real SPIRE server (also reachable as the
 * `spire-server` container of a simulated VM, for run-commands), the ARM simulator whose Container
 * App replicas run real spire-agents, Log Analytics fed by what really happens, alert rules, Key
 * Vault and Azurite, and the Functions host running the product's real registrations, wired
 * together by the settings the product reads.
 */
export interface SandboxOptions {
  stateDir: string;
  port?: number;
  log(message: string): void;
  /** Virtual ms per real ms for alert evaluation and the host's timers (1 = real time). */
  timeScale?: number;
  /**
   * Azure's latencies: `fast` (default) for tests; `azure` for typical Azure timings (revision
   * start, run-commands, Log Analytics ingestion), ARM parts divided by timeScale.
   */
  profile?: ProfileName;
  /** Echo the Functions host's output to stderr (default true). */
  echoHost?: boolean;
  /** Extra settings for the product (override the sandbox's). */
  settings?: Record<string, string>;
  /**
   * The SPIRE server's log_level (default DEBUG, which the workload-SVID check needs; INFO shows
   * how verification reports the signal hidden).
   */
  spireLogLevel?: LogLevel;
  /**
   * Subscribe the product's keyVaultEvents function to Key Vault's events (default true), so a
   * secret written in the sandbox nudges a bundle rotation as in Azure.
   */
  keyVaultEvents?: boolean;
  /** Short CA and SVID lifetimes for rotation scenarios (default SPIRE's: ca_ttl 24h, SVIDs 1h). */
  spireTtls?: Pick<SpireServerOptions, "caTtl" | "defaultX509SvidTtl" | "agentTtl">;
  /**
   * The product reaches SPIRE's Server API over TCP with mTLS (as in Azure) instead of the local
   * socket: the server's admin_ids lists the product's admin ID, and the admin SVID secret starts
   * missing, for the product to bootstrap. Default false.
   */
  spireOverTcp?: boolean;
  /** SPIRE's audit log on, so a scenario can count the Server API calls the product made. */
  spireAuditLog?: boolean;
}

/** The admin SVID secret's name when the sandbox's product uses TCP with mTLS. */
export const SANDBOX_ADMIN_SVID_SECRET = "spire-admin-svid";

export interface Sandbox {
  host: HostProcess;
  spire: SpireServerHandle;
  azure: AzureSimulator;
  services: AzureServices;
  settings: Record<string, string>;
  /** Key Vault's Event Grid subscription to the product's keyVaultEvents function, unless opted out. */
  keyVaultEvents?: EventSubscription;
  /**
   * The sandbox clock every process shares (ms; `scale` = `timeScale` sandbox ms per real ms,
   * from `origin`): a restarted host must be started with the same one.
   */
  clock: { scale: number; now(): number; timeScale: number; origin: number };
  describe(): string;
  stop(): Promise<void>;
}

const REPO_ROOT = resolve(import.meta.dirname, "..");
export const SANDBOX_TRUST_DOMAIN = "sandbox.spire-autopilot.test";
export const SANDBOX_SPIRE_VM = { resourceGroup: "rg-spire", name: "vm-spire-server" };
export const KEY_VAULT_EVENTS_FUNCTION = "keyVaultEvents";
export const KEY_VAULT_SECRET_EVENT_TYPES = [
  "Microsoft.KeyVault.SecretNewVersionCreated",
  "Microsoft.KeyVault.SecretNearExpiry",
  "Microsoft.KeyVault.SecretExpired",
];

/** The secrets the product keeps in Key Vault, as its settings name them (defaults as in config). */
export function trustMaterialSecrets(settings: Record<string, string | undefined>): string[] {
  const bundle = settings.TRUST_BUNDLE_SECRET_NAME || "spire-trust-bundle";
  const admin = settings.SPIRE_ADMIN_SVID_SECRET;
  return admin ? [bundle, admin] : [bundle];
}

/** Settings the product needs, pointing at the local environment (the services add their endpoints). */
export function sandboxSettings(spireSocketPath: string): Record<string, string> {
  return {
    SPIRE_TRUST_DOMAIN: SANDBOX_TRUST_DOMAIN,
    AZURE_SUBSCRIPTION_ID: "00000000-0000-4000-8000-000000000000",
    APPS_RESOURCE_GROUP: "rg-sandbox-apps",
    KEY_VAULT_URL: "https://sandbox-vault.vault.azure.net/",
    SPIRE_API: "grpc",
    SPIRE_SERVER_SOCKET: spireSocketPath,
    SPIRE_VM_RESOURCE_GROUP: SANDBOX_SPIRE_VM.resourceGroup,
    SPIRE_VM_NAME: SANDBOX_SPIRE_VM.name,
    AZURE_CREDENTIAL: "sandbox",
  };
}

export async function startSandbox(opts: SandboxOptions): Promise<Sandbox> {
  const stops: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
  };
  try {
    opts.log("providing spire-server and spire-agent (built once, then cached in .tools/)");
    const bins = await ensureSpire({ log: (l) => opts.log(`install: ${l}`) });
    opts.log(`starting spire-server ${bins.version}`);
    // The server picks a short folder under /tmp: unix socket paths are limited to ~107 bytes.
    const spire = await startSpireServer({
      trustDomain: SANDBOX_TRUST_DOMAIN,
      bins,
      ...(opts.spireLogLevel ? { logLevel: opts.spireLogLevel } : {}),
      ...(opts.spireAuditLog && { auditLog: true }),
      ...opts.spireTtls,
      ...(opts.spireOverTcp
        ? {
            adminIds: [
              opts.settings?.SPIRE_ADMIN_SPIFFE_ID ??
                `spiffe://${SANDBOX_TRUST_DOMAIN}/spire-autopilot/admin`,
            ],
          }
        : {}),
    });
    stops.push(() => spire.dispose());

    opts.log("starting Log Analytics, alert rules, Key Vault and Azurite");
    // One scaled clock for every process of the sandbox: alert windows, log times and the host's
    // durable timers must agree, or "signed after the run began" would compare different clocks.
    const timeScale = opts.timeScale ?? 1;
    const clockOrigin = Date.now();
    const clock = { scale: timeScale, now: () => clockOrigin + (Date.now() - clockOrigin) * timeScale };
    const profile = resolveProfile(opts.profile, timeScale);
    const services = await startAzureServices({
      logIngestionDelayMs: profile.logIngestionDelayMs,
      keyVaultResource: {
        subscriptionId: sandboxSettings("").AZURE_SUBSCRIPTION_ID as string,
        resourceGroup: SANDBOX_SPIRE_VM.resourceGroup,
      },
      stateDir: join(opts.stateDir, "azure-services"),
      clock,
      log: opts.log,
    });
    stops.push(() => services.stop());
    await services.followSpireServer(spire.logFile, { processId: spire.pid });

    opts.log("starting the ARM simulator (Container Apps with real spire-agent sidecars, the SPIRE VM)");
    const azure = await startAzureSimulator({
      runtime: new SpireSidecarRuntime({
        server: { address: spire.bindAddress, port: spire.port, trustDomain: SANDBOX_TRUST_DOMAIN },
        bins,
      }),
      vms: [{ ...SANDBOX_SPIRE_VM, spireServer: spireServerContainer(spire) }],
      keyVault: (secret) => services.resolveKeyVaultSecret(secret),
      profile,
      log: opts.log,
    });
    stops.push(() => azure.stop());
    services.forwardSimulatorEvents(azure.events);

    const tcpSettings: Record<string, string> = opts.spireOverTcp
      ? {
          // Blank means unset to the product: exactly one of socket and address may be given.
          SPIRE_SERVER_SOCKET: "",
          SPIRE_SERVER_ADDRESS: `${spire.bindAddress}:${spire.port}`,
          SPIRE_ADMIN_SVID_SECRET: SANDBOX_ADMIN_SVID_SECRET,
        }
      : {};
    const settings = {
      ...sandboxSettings(spire.socketPath),
      ...services.settings,
      ...azure.settings(),
      ...tcpSettings,
      ...opts.settings,
    };
    opts.log("starting the local Functions host with the product app");
    const host = await startHostProcess({
      appEntry: join(REPO_ROOT, "functions/index.ts"),
      stateDir: join(opts.stateDir, "host"),
      port: opts.port ?? 7071,
      timeScale,
      clockOrigin,
      env: settings,
      echo: opts.echoHost === false ? undefined : process.stderr,
    });
    stops.push(() => host.stop());
    // The action group of the product's alert rules calls the product's webhook with its key.
    services.alerts.setReceivers([
      {
        name: "spire-autopilot",
        serviceUri: `${host.url}/api/alerts?code=${host.keys.functionKeys.default}`,
        auth: { kind: "function-key" },
      },
    ]);
    // As an operator subscribes the vault's events in Azure (README): the three secret events, on
    // the product's secrets only, to the Event Grid extension's webhook with its system key.
    // Subscribing does the validation handshake; a host that fails it fails the sandbox's start.
    const keyVault = services.keyVault;
    if (!keyVault) throw new Error("the sandbox needs its Key Vault");
    const keyVaultEvents =
      opts.keyVaultEvents === false
        ? undefined
        : await keyVault.subscribeEventGrid({
            name: "spire-autopilot-trust-material",
            endpointUrl: `${host.url}/runtime/webhooks/eventgrid?functionName=${KEY_VAULT_EVENTS_FUNCTION}&code=${host.keys.systemKeys.eventgrid_extension}`,
            includedEventTypes: KEY_VAULT_SECRET_EVENT_TYPES,
            subjectIn: trustMaterialSecrets(settings),
          });
    if (keyVaultEvents) stops.push(async () => keyVaultEvents.delete());

    return {
      host,
      spire,
      azure,
      services,
      settings,
      keyVaultEvents,
      clock: { ...clock, timeScale, origin: clockOrigin },
      describe() {
        return [
          "spire-autopilot sandbox",
          `  Functions host   ${host.url}  (keys: ${join(opts.stateDir, "host", "keys.json")})`,
          `  function key     ${host.keys.functionKeys.default ?? "(none)"}`,
          "  functions:",
          ...host.functions.map((f) => `    ${f.kind.padEnd(13)} ${f.name.padEnd(24)} ${f.detail}`),
          `  durable state    ${join(opts.stateDir, "host", "instances")}`,
          `  spire-server     127.0.0.1:${spire.port}, admin socket ${spire.socketPath}, trust domain ${SANDBOX_TRUST_DOMAIN}`,
          `  spire logs       ${spire.logFile}`,
          `  ARM simulator    ${settings.ARM_ENDPOINT} (CA ${settings.ARM_CA_CERT_FILE}; control API under /_sim/)`,
          `  Log Analytics    ${settings.LOGS_ENDPOINT} workspace ${settings.LOG_ANALYTICS_WORKSPACE_ID}`,
          `  Key Vault        ${settings.KEY_VAULT_URL}`,
          keyVaultEvents
            ? `  Event Grid       ${keyVault.resourceId} → ${KEY_VAULT_EVENTS_FUNCTION} (${trustMaterialSecrets(settings).join(", ")})`
            : "  Event Grid       (Key Vault events not subscribed)",
          `  Table Storage    Azurite (AzureWebJobsStorage)`,
        ].join("\n");
      },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
