import type { SettingName, Values } from "./settings.js";
import type { HostPort, Selector } from "./validators.js";

// The typed config

export type SpireGrpcTarget =
  | { transport: "unix"; socketPath: string }
  | ({ transport: "tcp"; adminSvidSecretName: string } & HostPort);

export interface SpireVm {
  resourceGroup: string;
  name: string;
}

interface SpireCommon {
  trustDomain: string;
  serverContainer: string;
  joinTokenTtlSeconds: number;
  /** The product's own admin X509-SVID (used for TCP with mTLS only). */
  admin: { spiffeId: string; svidTtlSeconds: number };
  runCommand: { cooldownSeconds: number; pollSeconds: number; timeoutSeconds: number };
}

/** With grpc the VM is an optional fallback; with run-command the VM is the way in. */
export type SpireConfig = SpireCommon &
  (
    | { api: "grpc"; grpc: SpireGrpcTarget; vm?: SpireVm }
    | { api: "run-command"; vm: SpireVm; grpc?: SpireGrpcTarget }
  );

export interface ServiceEndpoint {
  url: string;
  /** PEM text of extra CA certificates to trust, for a local simulator. */
  ca?: string;
}

export type AlertAuth = { mode: "function-key" } | { mode: "entra"; audience: string; tenantId: string };

export interface AppConfig {
  spire: SpireConfig;
  azure: {
    subscriptionId: string;
    credential: "default" | "managed-identity" | "sandbox";
    clientId?: string;
  };
  apps: {
    resourceGroup: string;
    managedTag: { name: string; value: string };
    blueprintOidTag: string;
    agentOidTag: string;
    workloadSelectors: Selector[];
    workloadX509TtlSeconds: number;
  };
  keyVault: { url: string; trustBundleSecretName: string };
  /** workspaceId unset: log-based checks are skipped. */
  logs: { workspaceId?: string };
  fleet: { tableName: string; tablesEndpoint?: string };
  schedules: { healthSweep: string; bundleRotation: string; housekeeping: string };
  /** Finished durable instances older than this are purged (the fleet ledger is not). */
  historyRetentionDays: number;
  alerts: { auth: AlertAuth; cooldownSeconds: number };
  /** Passed to each run in its input: orchestrations never read settings themselves. */
  reattest: { revisionTimeoutSeconds: number; verifyTimeoutSeconds: number };
  sweep: {
    mode: "repair" | "observe";
    maxRepairs?: number;
    agentSvidTtlSeconds: number;
    logIngestionDelaySeconds: number;
  };
  /** The deploy's pacing of attestations (on the host's clock, like every durable timer). */
  deploy: { attestSpacingMs: number };
  endpoints: {
    arm: ServiceEndpoint;
    logs: ServiceEndpoint;
    keyVault: ServiceEndpoint & {
      /** KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: a local emulator on a loopback name. */
      disableChallengeResourceVerification: boolean;
    };
    /** url unset: the account of AzureWebJobsStorage. */
    tables: { url?: string; ca?: string };
    authorityHost?: string;
    /** CA for AUTHORITY_HOST (a local token issuer). */
    authorityCa?: string;
  };
}

function present<T>(value: T | undefined, name: SettingName): T {
  if (value === undefined) throw new Error(`${name} passed validation but is absent`);
  return value;
}

/** Leaves absent optional fields out rather than present-but-undefined, so configs print cleanly. */
function compact<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function endpoint(url: string, ca: string | undefined): ServiceEndpoint {
  return compact({ url, ca });
}

export function assemble(v: Values): AppConfig {
  let grpc: SpireGrpcTarget | undefined;
  if (v.SPIRE_SERVER_SOCKET !== undefined) {
    grpc = { transport: "unix", socketPath: v.SPIRE_SERVER_SOCKET };
  } else if (v.SPIRE_SERVER_ADDRESS !== undefined) {
    const adminSvidSecretName = present(v.SPIRE_ADMIN_SVID_SECRET, "SPIRE_ADMIN_SVID_SECRET");
    grpc = { transport: "tcp", ...v.SPIRE_SERVER_ADDRESS, adminSvidSecretName };
  }
  const vm =
    v.SPIRE_VM_RESOURCE_GROUP !== undefined && v.SPIRE_VM_NAME !== undefined
      ? { resourceGroup: v.SPIRE_VM_RESOURCE_GROUP, name: v.SPIRE_VM_NAME }
      : undefined;
  const common: SpireCommon = {
    trustDomain: v.SPIRE_TRUST_DOMAIN,
    serverContainer: v.SPIRE_SERVER_CONTAINER,
    joinTokenTtlSeconds: v.JOIN_TOKEN_TTL_SECONDS,
    admin: {
      spiffeId: v.SPIRE_ADMIN_SPIFFE_ID ?? `spiffe://${v.SPIRE_TRUST_DOMAIN}/spire-autopilot/admin`,
      svidTtlSeconds: v.ADMIN_SVID_TTL_SECONDS,
    },
    runCommand: {
      cooldownSeconds: v.RUN_COMMAND_COOLDOWN_SECONDS,
      pollSeconds: v.RUN_COMMAND_POLL_SECONDS,
      timeoutSeconds: v.RUN_COMMAND_TIMEOUT_SECONDS,
    },
  };
  const spire: SpireConfig =
    v.SPIRE_API === "grpc"
      ? { api: "grpc", ...common, grpc: present(grpc, "SPIRE_SERVER_SOCKET"), ...(vm && { vm }) }
      : { api: "run-command", ...common, vm: present(vm, "SPIRE_VM_NAME"), ...(grpc && { grpc }) };

  const auth: AlertAuth =
    v.ALERT_AUTH === "entra"
      ? {
          mode: "entra",
          audience: present(v.ALERT_AUDIENCE, "ALERT_AUDIENCE"),
          tenantId: present(v.ALERT_TENANT_ID, "ALERT_TENANT_ID"),
        }
      : { mode: "function-key" };

  return {
    spire,
    azure: compact({
      subscriptionId: v.AZURE_SUBSCRIPTION_ID,
      credential: v.AZURE_CREDENTIAL,
      clientId: v.AZURE_CLIENT_ID,
    }),
    apps: {
      resourceGroup: v.APPS_RESOURCE_GROUP,
      managedTag: { name: v.MANAGED_TAG_NAME, value: v.MANAGED_TAG_VALUE },
      blueprintOidTag: v.BLUEPRINT_OID_TAG,
      agentOidTag: v.AGENT_OID_TAG,
      workloadSelectors: v.WORKLOAD_SELECTORS,
      workloadX509TtlSeconds: v.WORKLOAD_X509_TTL_SECONDS,
    },
    keyVault: { url: v.KEY_VAULT_URL, trustBundleSecretName: v.TRUST_BUNDLE_SECRET_NAME },
    logs: compact({ workspaceId: v.LOG_ANALYTICS_WORKSPACE_ID }),
    fleet: compact({ tableName: v.FLEET_TABLE_NAME, tablesEndpoint: v.FLEET_TABLES_ENDPOINT }),
    schedules: {
      healthSweep: v.HEALTH_SWEEP_SCHEDULE,
      bundleRotation: v.BUNDLE_ROTATION_SCHEDULE,
      housekeeping: v.HOUSEKEEPING_SCHEDULE,
    },
    historyRetentionDays: v.HISTORY_RETENTION_DAYS,
    alerts: { auth, cooldownSeconds: v.ALERT_COOLDOWN_SECONDS },
    reattest: {
      revisionTimeoutSeconds: v.REATTEST_REVISION_TIMEOUT_SECONDS,
      verifyTimeoutSeconds: v.REATTEST_VERIFY_TIMEOUT_SECONDS,
    },
    sweep: compact({
      mode: v.HEALTH_SWEEP_MODE,
      maxRepairs: v.SWEEP_MAX_REPAIRS,
      agentSvidTtlSeconds: v.SPIRE_AGENT_SVID_TTL_SECONDS,
      logIngestionDelaySeconds: v.LOG_INGESTION_DELAY_SECONDS,
    }),
    deploy: { attestSpacingMs: v.DEPLOY_ATTEST_SPACING_MS },
    endpoints: compact({
      arm: endpoint(v.ARM_ENDPOINT, v.ARM_CA_CERT_FILE),
      logs: endpoint(v.LOGS_ENDPOINT, v.LOGS_CA_CERT_FILE),
      keyVault: {
        ...endpoint(v.KEY_VAULT_URL, v.KEY_VAULT_CA_CERT_FILE),
        disableChallengeResourceVerification: v.KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION,
      },
      tables: compact({ url: v.FLEET_TABLES_ENDPOINT, ca: v.TABLES_CA_CERT_FILE }),
      authorityHost: v.AUTHORITY_HOST,
      authorityCa: v.AUTHORITY_CA_CERT_FILE,
    }),
  };
}
