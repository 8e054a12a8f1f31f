import { z } from "zod";
import {
  audienceList,
  booleanText,
  caCertFile,
  dockerContainerName,
  guid,
  hostPort,
  keyVaultSecretName,
  MAX_UNIX_SOCKET_PATH_BYTES,
  ncrontab,
  PLAIN,
  resourceGroupName,
  selectorList,
  spiffeId,
  tableName,
  tagName,
  tagValue,
  trustDomain,
  unixSocketPath,
  url,
  vmName,
  wholeNumber,
} from "./validators.js";

/*
 * Every app setting, declared once in SETTING_TABLE. The table drives validation (load.ts), the
 * docs and local.settings.json.example (docs.ts), so they cannot drift apart.
 */

export type SettingGroup =
  | "spire"
  | "azure"
  | "apps"
  | "keyVault"
  | "logs"
  | "fleet"
  | "schedules"
  | "alerts"
  | "reattest"
  | "endpoints"
  | "sweep";

type Presence = "required" | "default" | "optional";

interface Setting<S extends z.ZodType, P extends Presence> {
  readonly group: SettingGroup;
  readonly presence: P;
  /** Raw text, parsed like a configured value so defaults obey the same rules. */
  readonly default?: string;
  /** Noun phrase naming what the value is and its rules; error lines read "NAME is invalid: <description>, e.g. <example>". */
  readonly description: string;
  readonly example: string;
  readonly schema: S;
}

type SettingInput<S extends z.ZodType> = Omit<Setting<S, Presence>, "presence" | "default">;

const required = <S extends z.ZodType>(s: SettingInput<S>): Setting<S, "required"> => ({
  ...s,
  presence: "required",
});

const withDefault = <S extends z.ZodType>(value: string, s: SettingInput<S>): Setting<S, "default"> => ({
  ...s,
  presence: "default",
  default: value,
});

/** Optional on its own; RULES may still require it depending on other settings. */
const optional = <S extends z.ZodType>(s: SettingInput<S>): Setting<S, "optional"> => ({
  ...s,
  presence: "optional",
});

function caFileSetting(service: string) {
  return optional({
    group: "endpoints",
    description: `path of a PEM file of CA certificates to trust for ${service} (for a local simulator)`,
    example: "/etc/ssl/certs/simulator-ca.pem",
    schema: caCertFile,
  });
}

export const SETTING_TABLE = {
  SPIRE_TRUST_DOMAIN: required({
    group: "spire",
    description:
      "the SPIFFE trust domain, lowercase DNS-style (letters, digits, '.', '-', '_'), no scheme or path",
    example: "aim.microsoft.com",
    schema: trustDomain,
  }),
  SPIRE_API: withDefault("grpc", {
    group: "spire",
    description:
      "how the app reaches the SPIRE server: grpc (Server API over a unix socket or TCP with mTLS) or run-command (managed run-commands on the VM)",
    example: "grpc",
    schema: z.enum(["grpc", "run-command"], PLAIN),
  }),
  SPIRE_SERVER_SOCKET: optional({
    group: "spire",
    description: `absolute path of the SPIRE server API unix socket, at most ${MAX_UNIX_SOCKET_PATH_BYTES} bytes`,
    example: "/tmp/spire-server/private/api.sock",
    schema: unixSocketPath,
  }),
  SPIRE_SERVER_ADDRESS: optional({
    group: "spire",
    description: "host:port of the SPIRE server API over TCP with mTLS",
    example: "10.0.0.4:8081",
    schema: hostPort,
  }),
  SPIRE_ADMIN_SVID_SECRET: optional({
    group: "spire",
    description:
      "name of the Key Vault secret holding the admin X509-SVID certificate and key (PEM) for mTLS to the server: 1-127 letters, digits and '-'",
    example: "spire-admin-svid",
    schema: keyVaultSecretName,
  }),
  SPIRE_ADMIN_SPIFFE_ID: optional({
    group: "spire",
    description:
      "SPIFFE ID of the product's admin X509-SVID for mTLS to the server, in SPIRE_TRUST_DOMAIN; the server's admin_ids must list it (default spiffe://<trust domain>/spire-autopilot/admin)",
    example: "spiffe://aim.microsoft.com/spire-autopilot/admin",
    schema: spiffeId,
  }),
  ADMIN_SVID_TTL_SECONDS: withDefault("86400", {
    group: "spire",
    description:
      "lifetime of the admin X509-SVID the product mints for itself, in seconds, a whole number from 30 to 2592000; the bundle rotation renews it at half of it, so BUNDLE_ROTATION_SCHEDULE must run more often than that",
    example: "86400",
    schema: wholeNumber(30, 2_592_000),
  }),
  SPIRE_VM_RESOURCE_GROUP: optional({
    group: "spire",
    description: "resource group of the SPIRE server VM, used for run-commands (and as a fallback with grpc)",
    example: "rg-spire",
    schema: resourceGroupName,
  }),
  SPIRE_VM_NAME: optional({
    group: "spire",
    description:
      "name of the SPIRE server VM: 1-64 letters, digits, '.', '_', '-', not starting with '_' or ending with '.' or '-'",
    example: "vm-spire-server",
    schema: vmName,
  }),
  SPIRE_SERVER_CONTAINER: withDefault("spire-server", {
    group: "spire",
    description: "Docker container on the VM that runs spire-server: letters, digits, '_', '.', '-'",
    example: "spire-server",
    schema: dockerContainerName,
  }),
  JOIN_TOKEN_TTL_SECONDS: withDefault("1200", {
    group: "spire",
    description:
      "lifetime of a join token in seconds, a whole number from 60 to 86400, at least REATTEST_REVISION_TIMEOUT_SECONDS + REATTEST_VERIFY_TIMEOUT_SECONDS",
    example: "1200",
    schema: wholeNumber(60, 86400),
  }),
  RUN_COMMAND_COOLDOWN_SECONDS: withDefault("10", {
    group: "spire",
    description:
      "pause between run-commands on the VM in seconds (firing them faster wedges the VM agent), a whole number from 0 to 600",
    example: "10",
    schema: wholeNumber(0, 600),
  }),
  RUN_COMMAND_POLL_SECONDS: withDefault("5", {
    group: "spire",
    description:
      "longest pause between polls of a running run-command in seconds (the first polls come sooner: 1, 2, 4 s), a whole number from 1 to 60",
    example: "5",
    schema: wholeNumber(1, 60),
  }),
  RUN_COMMAND_TIMEOUT_SECONDS: withDefault("300", {
    group: "spire",
    description: "how long one run-command may run, in seconds, a whole number from 60 to 5400",
    example: "300",
    schema: wholeNumber(60, 5400),
  }),
  AZURE_SUBSCRIPTION_ID: required({
    group: "azure",
    description: "the subscription holding the managed apps and the SPIRE VM, a GUID",
    example: "6f1c2a9e-3b7d-4c55-9a1e-2d8f0b7c4e13",
    schema: guid,
  }),
  AZURE_CREDENTIAL: withDefault("default", {
    group: "azure",
    description:
      "how the app gets Azure tokens: default (DefaultAzureCredential), managed-identity, or sandbox (the local simulator's fake token)",
    example: "default",
    schema: z.enum(["default", "managed-identity", "sandbox"], PLAIN),
  }),
  AZURE_CLIENT_ID: optional({
    group: "azure",
    description: "client id of the user-assigned managed identity to use, a GUID",
    example: "0d9b7a34-5e21-4f6a-8c3d-7e4b2a1f9c60",
    schema: guid,
  }),
  APPS_RESOURCE_GROUP: required({
    group: "apps",
    description:
      "resource group of the managed Container Apps: 1-90 letters, digits, '.', '_', '-', '(', ')', not ending with '.'",
    example: "rg-agents",
    schema: resourceGroupName,
  }),
  MANAGED_TAG_NAME: withDefault("spire-autopilot", {
    group: "apps",
    description: "tag that marks a Container App as managed: 1-512 characters, none of < > % & \\ ? /",
    example: "spire-autopilot",
    schema: tagName,
  }),
  MANAGED_TAG_VALUE: withDefault("managed", {
    group: "apps",
    description: "value of that tag on managed apps, 1-256 characters",
    example: "managed",
    schema: tagValue,
  }),
  BLUEPRINT_OID_TAG: withDefault("spiffe-blueprint-oid", {
    group: "apps",
    description: "tag carrying an app's blueprint object id: 1-512 characters, none of < > % & \\ ? /",
    example: "spiffe-blueprint-oid",
    schema: tagName,
  }),
  AGENT_OID_TAG: withDefault("spiffe-agent-oid", {
    group: "apps",
    description: "tag carrying an app's agent object id: 1-512 characters, none of < > % & \\ ? /",
    example: "spiffe-agent-oid",
    schema: tagName,
  }),
  WORKLOAD_SELECTORS: withDefault("unix:uid:0", {
    group: "apps",
    description:
      "SPIRE selectors of each app's workload entry: comma-separated type:value[:value] items, type of lowercase letters, digits, '_', '-'",
    example: "unix:uid:1000,unix:gid:1000",
    schema: selectorList,
  }),
  WORKLOAD_X509_TTL_SECONDS: withDefault("3600", {
    group: "apps",
    description: "X509-SVID lifetime of workload entries in seconds, a whole number from 60 to 604800",
    example: "3600",
    schema: wholeNumber(60, 604800),
  }),
  KEY_VAULT_URL: required({
    group: "keyVault",
    description: "an https URL of the vault",
    example: "https://myvault.vault.azure.net/",
    schema: url(["https:"]),
  }),
  TRUST_BUNDLE_SECRET_NAME: withDefault("spire-trust-bundle", {
    group: "keyVault",
    description: "Key Vault secret that holds the SPIRE trust bundle: 1-127 letters, digits and '-'",
    example: "spire-trust-bundle",
    schema: keyVaultSecretName,
  }),
  LOG_ANALYTICS_WORKSPACE_ID: optional({
    group: "logs",
    description:
      'Log Analytics workspace id, a GUID; unset skips the log-based health checks. The workload-SVID check reads the SPIRE server\'s "Signed X509 SVID" lines, which it logs only at log_level = "DEBUG"; at INFO verification reports the signal as hidden and relies on agent attestation',
    example: "3c8e1f52-9a07-4b6d-b2e4-5f0a9d7c1e38",
    schema: guid,
  }),
  FLEET_TABLE_NAME: withDefault("fleet", {
    group: "fleet",
    description: "Table Storage table of the fleet ledger: 3-63 letters and digits, starting with a letter",
    example: "fleet",
    schema: tableName,
  }),
  FLEET_TABLES_ENDPOINT: optional({
    group: "fleet",
    description:
      "Table service URL, http allowed for Azurite; unset uses the storage account of AzureWebJobsStorage",
    example: "http://127.0.0.1:10002/devstoreaccount1",
    schema: url(["https:", "http:"]),
  }),
  HEALTH_SWEEP_SCHEDULE: withDefault("0 */5 * * * *", {
    group: "schedules",
    description: "NCRONTAB schedule of the health sweep: 6 fields, second minute hour day month day-of-week",
    example: "0 */5 * * * *",
    schema: ncrontab,
  }),
  BUNDLE_ROTATION_SCHEDULE: withDefault("0 */15 * * * *", {
    group: "schedules",
    description:
      "NCRONTAB schedule of the trust bundle check: 6 fields, second minute hour day month day-of-week",
    example: "0 */15 * * * *",
    schema: ncrontab,
  }),
  HOUSEKEEPING_SCHEDULE: withDefault("0 30 3 * * *", {
    group: "schedules",
    description:
      "NCRONTAB schedule of the purge of finished durable instance history older than HISTORY_RETENTION_DAYS (the ledger is kept)",
    example: "0 30 3 * * *",
    schema: ncrontab,
  }),
  HISTORY_RETENTION_DAYS: withDefault("30", {
    group: "fleet",
    description:
      "days of finished durable instance history kept before the housekeeping timer purges it, 1-3650",
    example: "30",
    schema: wholeNumber(1, 3650),
  }),
  ALERT_AUTH: withDefault("function-key", {
    group: "alerts",
    description:
      "how alert webhooks authenticate: function-key (key in the webhook URL) or entra (secure webhook bearer token)",
    example: "entra",
    schema: z.enum(["function-key", "entra"], PLAIN),
  }),
  ALERT_AUDIENCE: optional({
    group: "alerts",
    description:
      "audience of the secure webhook tokens: the app registration's Application ID URI, its client id (a GUID), or both comma-separated without spaces; api://{client-id} and the bare {client-id} each admit the other (v1 tokens carry the URI, v2 tokens the client id)",
    example: "api://spire-autopilot",
    schema: audienceList,
  }),
  ALERT_TENANT_ID: optional({
    group: "alerts",
    description: "Entra tenant that issues the secure webhook tokens, a GUID",
    example: "72f988bf-86f1-41af-91ab-2d7cd011db47",
    schema: guid,
  }),
  ALERT_COOLDOWN_SECONDS: withDefault("900", {
    group: "alerts",
    description: "minimum seconds between alert-driven re-attests of one app, a whole number from 0 to 86400",
    example: "900",
    schema: wholeNumber(0, 86400),
  }),
  REATTEST_REVISION_TIMEOUT_SECONDS: withDefault("600", {
    group: "reattest",
    description:
      "how long a re-attestation waits for the new revision to run, in seconds, a whole number from 60 to 3600",
    example: "600",
    schema: wholeNumber(60, 3600),
  }),
  REATTEST_VERIFY_TIMEOUT_SECONDS: withDefault("300", {
    group: "reattest",
    description:
      "how long a re-attestation waits for the new agent to attest (and its workload SVID), in seconds, a whole number from 60 to 3600",
    example: "300",
    schema: wholeNumber(60, 3600),
  }),
  DEPLOY_ATTEST_SPACING_MS: withDefault("1200", {
    group: "reattest",
    description:
      "milliseconds between two apps' join-token PUTs in a deploy, so their agents attest apart: SPIRE admits one node attestation per second per source IP by default and a Container Apps environment's egress shares addresses; a whole number from 0 to 60000",
    example: "1200",
    schema: wholeNumber(0, 60000),
  }),
  ARM_ENDPOINT: withDefault("https://management.azure.com", {
    group: "endpoints",
    description: "Azure Resource Manager endpoint, https",
    example: "https://management.azure.com",
    schema: url(["https:"]),
  }),
  ARM_CA_CERT_FILE: caFileSetting("ARM_ENDPOINT"),
  LOGS_ENDPOINT: withDefault("https://api.loganalytics.azure.com/v1", {
    group: "endpoints",
    description: "Log Analytics query endpoint including /v1, https",
    example: "https://api.loganalytics.azure.com/v1",
    schema: url(["https:"]),
  }),
  LOGS_CA_CERT_FILE: caFileSetting("LOGS_ENDPOINT"),
  KEY_VAULT_CA_CERT_FILE: caFileSetting("KEY_VAULT_URL"),
  KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: withDefault("false", {
    group: "endpoints",
    description:
      "true or false: skip the Key Vault client's check that the auth challenge's resource matches the vault's host; only for a local vault emulator on a loopback name, never in Azure",
    example: "false",
    schema: booleanText,
  }),
  TABLES_CA_CERT_FILE: caFileSetting("the Table service"),
  AUTHORITY_HOST: optional({
    group: "endpoints",
    description:
      "Entra authority host for token requests and for the signing keys of alert webhook tokens, https",
    example: "https://login.microsoftonline.com",
    schema: url(["https:"]),
  }),
  AUTHORITY_CA_CERT_FILE: caFileSetting("AUTHORITY_HOST"),
  HEALTH_SWEEP_MODE: withDefault("repair", {
    group: "sweep",
    description:
      "what a scheduled health sweep does about what it finds: repair (restart a hung server, re-attest broken apps within the safety rails) or observe (record verdicts only)",
    example: "observe",
    schema: z.enum(["repair", "observe"], PLAIN),
  }),
  SWEEP_MAX_REPAIRS: optional({
    group: "sweep",
    description:
      "most apps one health sweep re-attests, a whole number from 1 to 10000; unset: a fifth of the managed fleet, at least 1",
    example: "20",
    schema: wholeNumber(1, 10000),
  }),
  SPIRE_AGENT_SVID_TTL_SECONDS: withDefault("3600", {
    group: "sweep",
    description:
      "the SPIRE server's agent SVID lifetime (agent_ttl, else default_x509_svid_ttl) in seconds, a whole number from 60 to 604800: the sweep finds a silent agent by its missed renewal at 60 % of it",
    example: "3600",
    schema: wholeNumber(60, 604800),
  }),
  LOG_INGESTION_DELAY_SECONDS: withDefault("300", {
    group: "sweep",
    description:
      "how late a log line may reach Log Analytics, in seconds, a whole number from 0 to 3600: the sweep waits this long past a renewal's due time before calling it stalled",
    example: "300",
    schema: wholeNumber(0, 3600),
  }),
};

type Table = typeof SETTING_TABLE;
export type SettingName = keyof Table;

/** Parsed settings; only `optional` ones may be absent. */
export type Values = {
  [K in SettingName]: Table[K]["presence"] extends "optional"
    ? z.output<Table[K]["schema"]> | undefined
    : z.output<Table[K]["schema"]>;
};

export const NAMES = Object.keys(SETTING_TABLE) as SettingName[];

export function settingOf(name: SettingName): Setting<z.ZodType, Presence> {
  return SETTING_TABLE[name];
}

export interface RuleContext {
  /** Parsed value; undefined when absent or invalid, so rules never fire on a guess. */
  value<K extends SettingName>(name: K): Values[K] | undefined;
  /** Whether the setting was given at all, valid or not. */
  given(name: SettingName): boolean;
}

type Rule =
  | { kind: "requires"; setting: SettingName; when: string; applies: (c: RuleContext) => boolean }
  | {
      /** `setting` (a duration) must be at least the sum of the `covers` durations. */
      kind: "coversSum";
      setting: SettingName;
      covers: readonly SettingName[];
      /** Why, shown in the error: what must still hold when those durations have passed. */
      because: string;
    }
  | {
      /** `setting` (a SPIFFE ID) must belong to the trust domain in `trustDomain`. */
      kind: "inTrustDomain";
      setting: SettingName;
      trustDomain: SettingName;
      because: string;
    }
  | {
      /** The longest wait between `schedule`'s runs must be shorter than half of `ttl` (seconds). */
      kind: "scheduleWithinHalf";
      schedule: SettingName;
      ttl: SettingName;
      applies: (c: RuleContext) => boolean;
      because: string;
    }
  | {
      kind: "exactlyOne";
      settings: readonly [SettingName, SettingName];
      when: string;
      applies: (c: RuleContext) => boolean;
    };

/** Requirements that depend on other settings. `when` is shown in errors and docs. */
export const RULES: readonly Rule[] = [
  {
    kind: "exactlyOne",
    settings: ["SPIRE_SERVER_SOCKET", "SPIRE_SERVER_ADDRESS"],
    when: "SPIRE_API=grpc",
    applies: (c) => c.value("SPIRE_API") === "grpc",
  },
  {
    kind: "requires",
    setting: "SPIRE_ADMIN_SVID_SECRET",
    when: "SPIRE_SERVER_ADDRESS is set",
    applies: (c) => c.given("SPIRE_SERVER_ADDRESS"),
  },
  // The server only authorizes SVIDs of its own trust domain: another domain's ID never works.
  {
    kind: "inTrustDomain",
    setting: "SPIRE_ADMIN_SPIFFE_ID",
    trustDomain: "SPIRE_TRUST_DOMAIN",
    because: "the SPIRE server mints and authorizes admin SVIDs of its own trust domain only",
  },
  {
    kind: "requires",
    setting: "SPIRE_VM_RESOURCE_GROUP",
    when: "SPIRE_API=run-command",
    applies: (c) => c.value("SPIRE_API") === "run-command",
  },
  {
    kind: "requires",
    setting: "SPIRE_VM_NAME",
    when: "SPIRE_API=run-command",
    applies: (c) => c.value("SPIRE_API") === "run-command",
  },
  // A half-configured fallback VM would only be noticed in the outage it was meant for.
  {
    kind: "requires",
    setting: "SPIRE_VM_RESOURCE_GROUP",
    when: "SPIRE_VM_NAME is set",
    applies: (c) => c.given("SPIRE_VM_NAME"),
  },
  {
    kind: "requires",
    setting: "SPIRE_VM_NAME",
    when: "SPIRE_VM_RESOURCE_GROUP is set",
    applies: (c) => c.given("SPIRE_VM_RESOURCE_GROUP"),
  },
  {
    kind: "requires",
    setting: "ALERT_AUDIENCE",
    when: "ALERT_AUTH=entra",
    applies: (c) => c.value("ALERT_AUTH") === "entra",
  },
  {
    kind: "requires",
    setting: "ALERT_TENANT_ID",
    when: "ALERT_AUTH=entra",
    applies: (c) => c.value("ALERT_AUTH") === "entra",
  },
  // A token that expires before its agent attests makes every slow-but-healthy run fail, and the
  // retry after the cooldown fails the same way.
  {
    kind: "coversSum",
    setting: "JOIN_TOKEN_TTL_SECONDS",
    covers: ["REATTEST_REVISION_TIMEOUT_SECONDS", "REATTEST_VERIFY_TIMEOUT_SECONDS"],
    because:
      "the join token is created before the new revision starts and must still be valid when its agent attests",
  },
  // The rotation renews the admin SVID at half its life; a schedule slower than that lets the SVID
  // lapse between two runs (the Key Vault events only nudge, they are not a schedule).
  {
    kind: "scheduleWithinHalf",
    schedule: "BUNDLE_ROTATION_SCHEDULE",
    ttl: "ADMIN_SVID_TTL_SECONDS",
    applies: (c) => c.given("SPIRE_SERVER_ADDRESS"),
    because:
      "the bundle rotation renews the admin SVID for mTLS at half its lifetime, so it must run at least once in every half lifetime",
  },
];
