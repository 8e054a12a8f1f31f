import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  type AppConfig,
  ConfigError,
  type ConfigProblem,
  describeSettings,
  exampleLocalSettings,
  loadConfig,
  SETTINGS,
  type SettingName,
} from "../../shared/config.js";

type Env = Record<string, string | undefined>;

/** The smallest valid config: the four required settings plus the gRPC socket that grpc (the default) needs. */
const MINIMAL: Env = {
  SPIRE_TRUST_DOMAIN: "aim.microsoft.com",
  AZURE_SUBSCRIPTION_ID: "6f1c2a9e-3b7d-4c55-9a1e-2d8f0b7c4e13",
  APPS_RESOURCE_GROUP: "rg-agents",
  KEY_VAULT_URL: "https://myvault.vault.azure.net/",
  SPIRE_SERVER_SOCKET: "/tmp/spire-server/private/api.sock",
};

function problemsOf(env: Env): readonly ConfigProblem[] {
  try {
    loadConfig(env);
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
}

function errorOf(env: Env): ConfigError {
  try {
    loadConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

const info = (name: SettingName) => {
  const s = SETTINGS.find((x) => x.name === name);
  if (!s) throw new Error(`no setting ${name}`);
  return s;
};

const tmp = mkdtempSync(join(tmpdir(), "config-test-"));
const CERT_PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ==\n-----END CERTIFICATE-----\n";
const caFile = join(tmp, "ca.pem");
writeFileSync(caFile, CERT_PEM);
const notPemFile = join(tmp, "not-a-cert.txt");
writeFileSync(notPemFile, "hello\n");
const keyAndCertFile = join(tmp, "key-and-cert.pem");
writeFileSync(
  keyAndCertFile,
  `${CERT_PEM}-----BEGIN PRIVATE KEY-----\nMC4CAQ==\n-----END PRIVATE KEY-----\n`,
);
const aDirectory = join(tmp, "dir");
mkdirSync(aDirectory);
chmodSync(caFile, 0o644);

describe("loadConfig: defaults", () => {
  it("fills every default from the minimal config", () => {
    const config = loadConfig(MINIMAL);
    const expected: AppConfig = {
      spire: {
        api: "grpc",
        trustDomain: "aim.microsoft.com",
        grpc: { transport: "unix", socketPath: "/tmp/spire-server/private/api.sock" },
        serverContainer: "spire-server",
        joinTokenTtlSeconds: 1200,
        admin: { spiffeId: "spiffe://aim.microsoft.com/spire-autopilot/admin", svidTtlSeconds: 86400 },
        runCommand: { cooldownSeconds: 10, pollSeconds: 5, timeoutSeconds: 300 },
      },
      azure: { subscriptionId: "6f1c2a9e-3b7d-4c55-9a1e-2d8f0b7c4e13", credential: "default" },
      apps: {
        resourceGroup: "rg-agents",
        managedTag: { name: "spire-autopilot", value: "managed" },
        blueprintOidTag: "spiffe-blueprint-oid",
        agentOidTag: "spiffe-agent-oid",
        workloadSelectors: [{ type: "unix", value: "uid:0" }],
        workloadX509TtlSeconds: 3600,
      },
      keyVault: { url: "https://myvault.vault.azure.net/", trustBundleSecretName: "spire-trust-bundle" },
      logs: {},
      fleet: { tableName: "fleet" },
      schedules: {
        healthSweep: "0 */5 * * * *",
        bundleRotation: "0 */15 * * * *",
        housekeeping: "0 30 3 * * *",
      },
      historyRetentionDays: 30,
      alerts: { auth: { mode: "function-key" }, cooldownSeconds: 900 },
      reattest: { revisionTimeoutSeconds: 600, verifyTimeoutSeconds: 300 },
      sweep: { mode: "repair", agentSvidTtlSeconds: 3600, logIngestionDelaySeconds: 300 },
      deploy: { attestSpacingMs: 1200 },
      endpoints: {
        arm: { url: "https://management.azure.com" },
        logs: { url: "https://api.loganalytics.azure.com/v1" },
        keyVault: { url: "https://myvault.vault.azure.net/", disableChallengeResourceVerification: false },
        tables: {},
      },
    };
    expect(config).toStrictEqual(expected);
  });

  it("defaults to process.env", () => {
    const saved = { ...process.env };
    try {
      Object.assign(process.env, MINIMAL);
      expect(loadConfig().spire.trustDomain).toBe("aim.microsoft.com");
    } finally {
      for (const key of Object.keys(MINIMAL)) {
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
      }
    }
  });

  it("treats an empty value as unset: required is missing, defaulted takes the default", () => {
    expect(problemsOf({ ...MINIMAL, SPIRE_TRUST_DOMAIN: "" })).toMatchObject([
      { kind: "missing", settings: ["SPIRE_TRUST_DOMAIN"] },
    ]);
    expect(
      loadConfig({ ...MINIMAL, JOIN_TOKEN_TTL_SECONDS: "", LOG_ANALYTICS_WORKSPACE_ID: "" }),
    ).toMatchObject({
      spire: { joinTokenTtlSeconds: 1200 },
      logs: {},
    });
  });

  it("ignores unknown settings", () => {
    expect(() => loadConfig({ ...MINIMAL, SOMETHING_ELSE: "x", spire_trust_domain: "BAD" })).not.toThrow();
  });
});

/** [setting, value, where the parsed value shows up] */
const VALID: readonly [SettingName, string, (c: AppConfig) => unknown, unknown][] = [
  ["SPIRE_TRUST_DOMAIN", "example.org", (c) => c.spire.trustDomain, "example.org"],
  ["SPIRE_TRUST_DOMAIN", "td_1-a.b", (c) => c.spire.trustDomain, "td_1-a.b"],
  [
    "AZURE_SUBSCRIPTION_ID",
    "ABCDEF01-2345-6789-ABCD-EF0123456789",
    (c) => c.azure.subscriptionId,
    "ABCDEF01-2345-6789-ABCD-EF0123456789",
  ],
  ["APPS_RESOURCE_GROUP", "My.Group_(prod)-1", (c) => c.apps.resourceGroup, "My.Group_(prod)-1"],
  ["APPS_RESOURCE_GROUP", "x".repeat(90), (c) => c.apps.resourceGroup.length, 90],
  ["APPS_RESOURCE_GROUP", "grüppe", (c) => c.apps.resourceGroup, "grüppe"],
  ["KEY_VAULT_URL", "https://v.vault.azure.net", (c) => c.keyVault.url, "https://v.vault.azure.net"],
  ["KEY_VAULT_URL", "https://127.0.0.1:8443/", (c) => c.endpoints.keyVault.url, "https://127.0.0.1:8443/"],
  ["SPIRE_SERVER_CONTAINER", "spire_server.1", (c) => c.spire.serverContainer, "spire_server.1"],
  // The smallest TTL the default revision (600 s) and verify (300 s) timeouts allow.
  ["JOIN_TOKEN_TTL_SECONDS", "900", (c) => c.spire.joinTokenTtlSeconds, 900],
  ["JOIN_TOKEN_TTL_SECONDS", "86400", (c) => c.spire.joinTokenTtlSeconds, 86400],
  ["REATTEST_REVISION_TIMEOUT_SECONDS", "60", (c) => c.reattest.revisionTimeoutSeconds, 60],
  ["REATTEST_VERIFY_TIMEOUT_SECONDS", "600", (c) => c.reattest.verifyTimeoutSeconds, 600],
  ["RUN_COMMAND_COOLDOWN_SECONDS", "0", (c) => c.spire.runCommand.cooldownSeconds, 0],
  ["RUN_COMMAND_TIMEOUT_SECONDS", "5400", (c) => c.spire.runCommand.timeoutSeconds, 5400],
  ["RUN_COMMAND_POLL_SECONDS", "1", (c) => c.spire.runCommand.pollSeconds, 1],
  ["MANAGED_TAG_NAME", "team:identity", (c) => c.apps.managedTag.name, "team:identity"],
  ["MANAGED_TAG_VALUE", "yes please", (c) => c.apps.managedTag.value, "yes please"],
  ["BLUEPRINT_OID_TAG", "bp-oid", (c) => c.apps.blueprintOidTag, "bp-oid"],
  ["AGENT_OID_TAG", "agent oid", (c) => c.apps.agentOidTag, "agent oid"],
  [
    "WORKLOAD_SELECTORS",
    "unix:uid:1000, docker:label:com.example:web",
    (c) => c.apps.workloadSelectors,
    [
      { type: "unix", value: "uid:1000" },
      { type: "docker", value: "label:com.example:web" },
    ],
  ],
  [
    "WORKLOAD_SELECTORS",
    "k8s_psat-2:cluster",
    (c) => c.apps.workloadSelectors,
    [{ type: "k8s_psat-2", value: "cluster" }],
  ],
  ["WORKLOAD_X509_TTL_SECONDS", "604800", (c) => c.apps.workloadX509TtlSeconds, 604800],
  ["TRUST_BUNDLE_SECRET_NAME", "A-1", (c) => c.keyVault.trustBundleSecretName, "A-1"],
  ["TRUST_BUNDLE_SECRET_NAME", "b".repeat(127), (c) => c.keyVault.trustBundleSecretName.length, 127],
  [
    "LOG_ANALYTICS_WORKSPACE_ID",
    "3c8e1f52-9a07-4b6d-b2e4-5f0a9d7c1e38",
    (c) => c.logs.workspaceId,
    "3c8e1f52-9a07-4b6d-b2e4-5f0a9d7c1e38",
  ],
  ["FLEET_TABLE_NAME", "Fle", (c) => c.fleet.tableName, "Fle"],
  ["FLEET_TABLE_NAME", `a${"1".repeat(62)}`, (c) => c.fleet.tableName.length, 63],
  [
    "FLEET_TABLES_ENDPOINT",
    "http://127.0.0.1:10002/devstoreaccount1",
    (c) => c.endpoints.tables.url,
    "http://127.0.0.1:10002/devstoreaccount1",
  ],
  [
    "FLEET_TABLES_ENDPOINT",
    "https://acct.table.core.windows.net",
    (c) => c.fleet.tablesEndpoint,
    "https://acct.table.core.windows.net",
  ],
  ["HEALTH_SWEEP_SCHEDULE", "*/30 * * * * *", (c) => c.schedules.healthSweep, "*/30 * * * * *"],
  [
    "HEALTH_SWEEP_SCHEDULE",
    "0 0,30 9-17 * Jan-DEC mon-fri",
    (c) => c.schedules.healthSweep,
    "0 0,30 9-17 * Jan-DEC mon-fri",
  ],
  ["BUNDLE_ROTATION_SCHEDULE", "  0 0 */2 1 * 0  ", (c) => c.schedules.bundleRotation, "0 0 */2 1 * 0"],
  ["BUNDLE_ROTATION_SCHEDULE", "59 59 23 31 12 6", (c) => c.schedules.bundleRotation, "59 59 23 31 12 6"],
  ["ALERT_COOLDOWN_SECONDS", "0", (c) => c.alerts.cooldownSeconds, 0],
  [
    "AZURE_CLIENT_ID",
    "0d9b7a34-5e21-4f6a-8c3d-7e4b2a1f9c60",
    (c) => c.azure.clientId,
    "0d9b7a34-5e21-4f6a-8c3d-7e4b2a1f9c60",
  ],
  ["AZURE_CREDENTIAL", "managed-identity", (c) => c.azure.credential, "managed-identity"],
  ["AZURE_CREDENTIAL", "sandbox", (c) => c.azure.credential, "sandbox"],
  ["ARM_ENDPOINT", "https://127.0.0.1:8443", (c) => c.endpoints.arm.url, "https://127.0.0.1:8443"],
  ["LOGS_ENDPOINT", "https://localhost:8444/v1", (c) => c.endpoints.logs.url, "https://localhost:8444/v1"],
  [
    "AUTHORITY_HOST",
    "https://login.microsoftonline.us",
    (c) => c.endpoints.authorityHost,
    "https://login.microsoftonline.us",
  ],
  ["ARM_CA_CERT_FILE", caFile, (c) => c.endpoints.arm.ca, CERT_PEM],
  ["LOGS_CA_CERT_FILE", caFile, (c) => c.endpoints.logs.ca, CERT_PEM],
  ["KEY_VAULT_CA_CERT_FILE", caFile, (c) => c.endpoints.keyVault.ca, CERT_PEM],
  ["TABLES_CA_CERT_FILE", caFile, (c) => c.endpoints.tables.ca, CERT_PEM],
  ["AUTHORITY_CA_CERT_FILE", caFile, (c) => c.endpoints.authorityCa, CERT_PEM],
  [
    "KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION",
    "true",
    (c) => c.endpoints.keyVault.disableChallengeResourceVerification,
    true,
  ],
  // A CA file alone does not switch the challenge check off.
  ["KEY_VAULT_CA_CERT_FILE", caFile, (c) => c.endpoints.keyVault.disableChallengeResourceVerification, false],
];

describe("loadConfig: valid values", () => {
  it.each(VALID)("accepts %s=%j", (name, value, pick, expected) => {
    expect(pick(loadConfig({ ...MINIMAL, [name]: value }))).toEqual(expected);
  });
});

/** [setting, value, reason shown in parentheses, or undefined when the description says it all] */
const INVALID: readonly [SettingName, string, string | undefined][] = [
  ["SPIRE_TRUST_DOMAIN", "spiffe://aim.microsoft.com", "no scheme: drop spiffe://"],
  ["SPIRE_TRUST_DOMAIN", "aim.microsoft.com/agents", "no path allowed"],
  ["SPIRE_TRUST_DOMAIN", "Aim.Microsoft.com", "must be lowercase"],
  ["SPIRE_TRUST_DOMAIN", "aim microsoft", undefined],
  ["SPIRE_TRUST_DOMAIN", "aim:8443", undefined],
  ["SPIRE_TRUST_DOMAIN", "a".repeat(256), "longer than 255 characters"],
  ["AZURE_SUBSCRIPTION_ID", "not-a-guid", undefined],
  ["AZURE_SUBSCRIPTION_ID", "6f1c2a9e3b7d4c559a1e2d8f0b7c4e13", undefined],
  ["AZURE_SUBSCRIPTION_ID", "{6f1c2a9e-3b7d-4c55-9a1e-2d8f0b7c4e13}", undefined],
  ["APPS_RESOURCE_GROUP", "ends-with-dot.", undefined],
  ["APPS_RESOURCE_GROUP", "x".repeat(91), undefined],
  ["APPS_RESOURCE_GROUP", "has space", undefined],
  ["APPS_RESOURCE_GROUP", "slash/rg", undefined],
  ["KEY_VAULT_URL", "http://myvault.vault.azure.net/", "must be https"],
  ["KEY_VAULT_URL", "myvault.vault.azure.net", "not a URL"],
  ["KEY_VAULT_URL", "https://user:pw@myvault.vault.azure.net/", "must not embed credentials"],
  ["KEY_VAULT_URL", "https://myvault.vault.azure.net/?sig=abc", "must not carry a query or fragment"],
  ["SPIRE_API", "GRPC", undefined],
  ["SPIRE_API", "rest", undefined],
  ["SPIRE_SERVER_SOCKET", "relative/api.sock", "must be an absolute path"],
  ["SPIRE_SERVER_SOCKET", `/${"s".repeat(107)}`, "longer than 107 bytes, the unix socket limit"],
  ["SPIRE_SERVER_SOCKET", "/tmp/a\nb.sock", "must not contain control characters"],
  ["SPIRE_SERVER_ADDRESS", "10.0.0.4", "expected host:port"],
  ["SPIRE_SERVER_ADDRESS", "10.0.0.4:0", "port outside 1..65535"],
  ["SPIRE_SERVER_ADDRESS", "10.0.0.4:65536", "port outside 1..65535"],
  ["SPIRE_SERVER_ADDRESS", "10.0.0.4:80a", "expected host:port"],
  ["SPIRE_SERVER_ADDRESS", "10.0.0.999:8081", "not a valid host name or IPv4 address"],
  ["SPIRE_SERVER_ADDRESS", "-bad-.example:8081", "not a valid host name or IPv4 address"],
  ["SPIRE_SERVER_ADDRESS", "[zz::1]:8081", "not an IPv6 address in [...]"],
  ["SPIRE_SERVER_ADDRESS", "::1:8081", "expected host:port"],
  ["SPIRE_SERVER_ADDRESS", "tcp://10.0.0.4:8081", "expected host:port"],
  ["SPIRE_ADMIN_SVID_SECRET", "admin_svid", undefined],
  ["SPIRE_VM_RESOURCE_GROUP", "rg.", undefined],
  ["SPIRE_VM_NAME", "vm-", undefined],
  ["SPIRE_VM_NAME", "_vm", undefined],
  ["SPIRE_VM_NAME", "v".repeat(65), undefined],
  ["SPIRE_SERVER_CONTAINER", "-spire", undefined],
  ["SPIRE_SERVER_CONTAINER", "spire server", undefined],
  ["SPIRE_SERVER_CONTAINER", "spire;reboot", undefined],
  ["JOIN_TOKEN_TTL_SECONDS", "10x", "not a whole number"],
  ["JOIN_TOKEN_TTL_SECONDS", "1e3", "not a whole number"],
  ["JOIN_TOKEN_TTL_SECONDS", " 600", "not a whole number"],
  ["JOIN_TOKEN_TTL_SECONDS", "600.0", "not a whole number"],
  ["JOIN_TOKEN_TTL_SECONDS", "+600", "not a whole number"],
  ["JOIN_TOKEN_TTL_SECONDS", "-600", "not a whole number"],
  ["JOIN_TOKEN_TTL_SECONDS", "59", "outside 60..86400"],
  ["JOIN_TOKEN_TTL_SECONDS", "86401", "outside 60..86400"],
  ["JOIN_TOKEN_TTL_SECONDS", "99999999999999999999999", "outside 60..86400"],
  ["RUN_COMMAND_COOLDOWN_SECONDS", "601", "outside 0..600"],
  ["RUN_COMMAND_TIMEOUT_SECONDS", "59", "outside 60..5400"],
  ["RUN_COMMAND_POLL_SECONDS", "0", "outside 1..60"],
  ["WORKLOAD_X509_TTL_SECONDS", "604801", "outside 60..604800"],
  ["ALERT_COOLDOWN_SECONDS", "ten", "not a whole number"],
  ["MANAGED_TAG_NAME", "a/b", undefined],
  ["MANAGED_TAG_NAME", "a<b", undefined],
  ["MANAGED_TAG_NAME", "x".repeat(513), undefined],
  ["MANAGED_TAG_VALUE", "x".repeat(257), undefined],
  ["BLUEPRINT_OID_TAG", "50%", undefined],
  ["AGENT_OID_TAG", "a?b", undefined],
  ["WORKLOAD_SELECTORS", "unix", "expected type:value items"],
  ["WORKLOAD_SELECTORS", "Unix:uid:0", "expected type:value items"],
  ["WORKLOAD_SELECTORS", "unix:", "expected type:value items"],
  ["WORKLOAD_SELECTORS", "unix:uid:", "expected type:value items"],
  ["WORKLOAD_SELECTORS", "unix:uid 0", "expected type:value items"],
  ["WORKLOAD_SELECTORS", "unix:uid:0,", "empty selector in the list"],
  ["WORKLOAD_SELECTORS", ",", "empty selector in the list"],
  ["TRUST_BUNDLE_SECRET_NAME", "spire_trust_bundle", undefined],
  ["TRUST_BUNDLE_SECRET_NAME", "b".repeat(128), undefined],
  ["LOG_ANALYTICS_WORKSPACE_ID", "workspace", undefined],
  ["FLEET_TABLE_NAME", "1fleet", undefined],
  ["FLEET_TABLE_NAME", "fl", undefined],
  ["FLEET_TABLE_NAME", "fleet-ledger", undefined],
  ["FLEET_TABLE_NAME", `a${"1".repeat(63)}`, undefined],
  ["FLEET_TABLE_NAME", "Tables", "reserved by Table Storage"],
  ["FLEET_TABLES_ENDPOINT", "ftp://127.0.0.1:10002", "must be http or https"],
  ["FLEET_TABLES_ENDPOINT", "127.0.0.1:10002", "not a URL"],
  [
    "FLEET_TABLES_ENDPOINT",
    "https://acct.table.core.windows.net/?sv=1&sig=abc",
    "must not carry a query or fragment",
  ],
  ["HEALTH_SWEEP_SCHEDULE", "*/5 * * * *", "expected 6 fields, got 5"],
  ["HEALTH_SWEEP_SCHEDULE", "0 */5 * * * * *", "expected 6 fields, got 7"],
  ["HEALTH_SWEEP_SCHEDULE", "00:05:00", "expected 6 fields, got 1"],
  ["HEALTH_SWEEP_SCHEDULE", "60 * * * * *", "bad second field"],
  ["HEALTH_SWEEP_SCHEDULE", "0 */5 24 * * *", "bad hour field"],
  ["HEALTH_SWEEP_SCHEDULE", "0 0 0 0 * *", "bad day field"],
  ["HEALTH_SWEEP_SCHEDULE", "0 0 0 1 13 *", "bad month field"],
  ["HEALTH_SWEEP_SCHEDULE", "0 0 0 * * 7", "bad day-of-week field"],
  ["HEALTH_SWEEP_SCHEDULE", "0 */0 * * * *", "bad minute field"],
  ["HEALTH_SWEEP_SCHEDULE", "0 $(reboot) * * * *", "bad minute field"],
  ["BUNDLE_ROTATION_SCHEDULE", "0 0 * * * funday", "bad day-of-week field"],
  ["BUNDLE_ROTATION_SCHEDULE", "0 0 * mon * *", "bad day field"],
  ["BUNDLE_ROTATION_SCHEDULE", "0 0 * * * ?", "bad day-of-week field"],
  // cron-parser extensions the Functions host does not accept
  ["BUNDLE_ROTATION_SCHEDULE", "0 0 0 L * *", "bad day field"],
  ["BUNDLE_ROTATION_SCHEDULE", "0 0 0 * * 1#2", "bad day-of-week field"],
  ["BUNDLE_ROTATION_SCHEDULE", "0 0 0 * * 5-7", "bad day-of-week field"],
  ["ALERT_AUTH", "key", undefined],
  ["ALERT_AUDIENCE", "api://spire autopilot", undefined],
  ["ALERT_AUDIENCE", "spire-autopilot", undefined],
  ["ALERT_AUDIENCE", "api://a,api://b,api://c", "at most two audiences"],
  ["KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION", "yes", undefined],
  ["ALERT_TENANT_ID", "contoso.onmicrosoft.com", undefined],
  ["AZURE_CLIENT_ID", "my-identity", undefined],
  ["AZURE_CREDENTIAL", "cli", undefined],
  ["ARM_ENDPOINT", "http://127.0.0.1:8080", "must be https"],
  ["LOGS_ENDPOINT", "http://127.0.0.1:8080/v1", "must be https"],
  ["AUTHORITY_HOST", "http://login.local", "must be https"],
  ["ARM_CA_CERT_FILE", join(tmp, "missing.pem"), "cannot read the file"],
  ["LOGS_CA_CERT_FILE", aDirectory, "cannot read the file"],
  ["KEY_VAULT_CA_CERT_FILE", notPemFile, "no -----BEGIN CERTIFICATE----- block in the file"],
  ["TABLES_CA_CERT_FILE", keyAndCertFile, "the file holds a private key; give only certificates"],
];

describe("loadConfig: invalid values", () => {
  it.each(INVALID)("rejects %s=%j", (name, value, reason) => {
    // Settings that other rules tie together get the company they need, so only the value is at fault.
    const env: Env = { ...MINIMAL, [name]: value };
    if (name === "SPIRE_SERVER_ADDRESS") {
      env.SPIRE_SERVER_SOCKET = undefined;
      env.SPIRE_ADMIN_SVID_SECRET = "spire-admin-svid";
    }
    if (name === "SPIRE_VM_NAME") env.SPIRE_VM_RESOURCE_GROUP = "rg-spire";
    if (name === "SPIRE_VM_RESOURCE_GROUP") env.SPIRE_VM_NAME = "vm-spire";
    const s = info(name);
    const detail = reason === undefined ? "" : ` (${reason})`;
    expect(problemsOf(env)).toEqual([
      {
        settings: [name],
        kind: "invalid",
        message: `${name} is invalid${detail}: ${s.description}, e.g. ${s.example}`,
      },
    ]);
  });
});

describe("loadConfig: required settings", () => {
  const REQUIRED: SettingName[] = [
    "SPIRE_TRUST_DOMAIN",
    "AZURE_SUBSCRIPTION_ID",
    "APPS_RESOURCE_GROUP",
    "KEY_VAULT_URL",
  ];

  it("lists exactly these as always required", () => {
    expect(SETTINGS.filter((s) => s.required).map((s) => s.name)).toEqual(REQUIRED);
  });

  it.each(REQUIRED)("reports %s missing with what it should look like", (name) => {
    const s = info(name);
    expect(problemsOf({ ...MINIMAL, [name]: undefined })).toEqual([
      {
        settings: [name],
        kind: "missing",
        message: `${name} is missing: ${s.description}, e.g. ${s.example}`,
      },
    ]);
  });

  it("formats the spec's example lines", () => {
    const e = errorOf({ ...MINIMAL, SPIRE_TRUST_DOMAIN: undefined, KEY_VAULT_URL: "ftp://vault" });
    expect(e.message.split("\n")).toEqual([
      "Invalid configuration (2 problems):",
      `  - SPIRE_TRUST_DOMAIN is missing: ${info("SPIRE_TRUST_DOMAIN").description}, e.g. aim.microsoft.com`,
      "  - KEY_VAULT_URL is invalid (must be https): an https URL of the vault, e.g. https://myvault.vault.azure.net/",
    ]);
  });

  it("says '1 problem' in the singular", () => {
    expect(errorOf({ ...MINIMAL, KEY_VAULT_URL: undefined }).message).toMatch(
      /^Invalid configuration \(1 problem\):\n/,
    );
  });
});

/** [case, overrides on MINIMAL, expected problems as [kind, settings, message fragment]] */
const CONDITIONAL: readonly [string, Env, [ConfigProblem["kind"], SettingName[], string][]][] = [
  [
    "a join token TTL shorter than the revision and verify timeouts it must outlive",
    { JOIN_TOKEN_TTL_SECONDS: "899" },
    [
      [
        "conflict",
        ["JOIN_TOKEN_TTL_SECONDS", "REATTEST_REVISION_TIMEOUT_SECONDS", "REATTEST_VERIFY_TIMEOUT_SECONDS"],
        "JOIN_TOKEN_TTL_SECONDS is shorter than REATTEST_REVISION_TIMEOUT_SECONDS + REATTEST_VERIFY_TIMEOUT_SECONDS: the join token is created before the new revision starts",
      ],
    ],
  ],
  [
    "longer timeouts than the default TTL covers",
    { REATTEST_REVISION_TIMEOUT_SECONDS: "1000", REATTEST_VERIFY_TIMEOUT_SECONDS: "300" },
    [
      [
        "conflict",
        ["JOIN_TOKEN_TTL_SECONDS", "REATTEST_REVISION_TIMEOUT_SECONDS", "REATTEST_VERIFY_TIMEOUT_SECONDS"],
        "raise JOIN_TOKEN_TTL_SECONDS or lower the others",
      ],
    ],
  ],
  [
    "an invalid timeout is reported alone, not compared",
    { JOIN_TOKEN_TTL_SECONDS: "60", REATTEST_VERIFY_TIMEOUT_SECONDS: "soon" },
    [["invalid", ["REATTEST_VERIFY_TIMEOUT_SECONDS"], "whole number"]],
  ],
  [
    "grpc without socket or address",
    { SPIRE_SERVER_SOCKET: undefined },
    [
      [
        "missing",
        ["SPIRE_SERVER_SOCKET", "SPIRE_SERVER_ADDRESS"],
        "SPIRE_SERVER_SOCKET or SPIRE_SERVER_ADDRESS is missing (SPIRE_API=grpc needs exactly one)",
      ],
    ],
  ],
  [
    "socket and address both set",
    { SPIRE_SERVER_ADDRESS: "10.0.0.4:8081", SPIRE_ADMIN_SVID_SECRET: "spire-admin-svid" },
    [["conflict", ["SPIRE_SERVER_SOCKET", "SPIRE_SERVER_ADDRESS"], "are both set: set only one"]],
  ],
  [
    "both set with run-command too",
    {
      SPIRE_API: "run-command",
      SPIRE_SERVER_ADDRESS: "10.0.0.4:8081",
      SPIRE_ADMIN_SVID_SECRET: "s-1",
      SPIRE_VM_RESOURCE_GROUP: "rg",
      SPIRE_VM_NAME: "vm",
    },
    [["conflict", ["SPIRE_SERVER_SOCKET", "SPIRE_SERVER_ADDRESS"], "are both set"]],
  ],
  [
    "an invalid socket is still in conflict with an address",
    {
      SPIRE_SERVER_SOCKET: "rel.sock",
      SPIRE_SERVER_ADDRESS: "10.0.0.4:8081",
      SPIRE_ADMIN_SVID_SECRET: "s-1",
    },
    [
      ["invalid", ["SPIRE_SERVER_SOCKET"], "must be an absolute path"],
      ["conflict", ["SPIRE_SERVER_SOCKET", "SPIRE_SERVER_ADDRESS"], "are both set"],
    ],
  ],
  [
    "address without admin SVID secret",
    { SPIRE_SERVER_SOCKET: undefined, SPIRE_SERVER_ADDRESS: "10.0.0.4:8081" },
    [["missing", ["SPIRE_ADMIN_SVID_SECRET"], "(required when SPIRE_SERVER_ADDRESS is set)"]],
  ],
  [
    "an invalid address still needs the admin SVID secret",
    { SPIRE_SERVER_SOCKET: undefined, SPIRE_SERVER_ADDRESS: "nope" },
    [
      ["invalid", ["SPIRE_SERVER_ADDRESS"], "expected host:port"],
      ["missing", ["SPIRE_ADMIN_SVID_SECRET"], "(required when SPIRE_SERVER_ADDRESS is set)"],
    ],
  ],
  [
    "run-command without the VM",
    { SPIRE_API: "run-command", SPIRE_SERVER_SOCKET: undefined },
    [
      ["missing", ["SPIRE_VM_RESOURCE_GROUP"], "(required when SPIRE_API=run-command)"],
      ["missing", ["SPIRE_VM_NAME"], "(required when SPIRE_API=run-command)"],
    ],
  ],
  [
    "run-command with only the VM name: one line for the resource group",
    { SPIRE_API: "run-command", SPIRE_VM_NAME: "vm" },
    [["missing", ["SPIRE_VM_RESOURCE_GROUP"], "(required when SPIRE_API=run-command)"]],
  ],
  [
    "a half-configured fallback VM with grpc",
    { SPIRE_VM_RESOURCE_GROUP: "rg-spire" },
    [["missing", ["SPIRE_VM_NAME"], "(required when SPIRE_VM_RESOURCE_GROUP is set)"]],
  ],
  [
    "the other half",
    { SPIRE_VM_NAME: "vm" },
    [["missing", ["SPIRE_VM_RESOURCE_GROUP"], "(required when SPIRE_VM_NAME is set)"]],
  ],
  [
    "entra alerts without audience and tenant",
    { ALERT_AUTH: "entra" },
    [
      ["missing", ["ALERT_AUDIENCE"], "(required when ALERT_AUTH=entra)"],
      ["missing", ["ALERT_TENANT_ID"], "(required when ALERT_AUTH=entra)"],
    ],
  ],
  [
    "an invalid SPIRE_API does not guess which settings it needs",
    { SPIRE_API: "grcp", SPIRE_SERVER_SOCKET: undefined },
    [["invalid", ["SPIRE_API"], "SPIRE_API is invalid: "]],
  ],
  ["an invalid ALERT_AUTH does not guess either", { ALERT_AUTH: "Entra" }, [["invalid", ["ALERT_AUTH"], ""]]],
];

describe("loadConfig: conditional requirements", () => {
  it.each(CONDITIONAL)("%s", (_, overrides, expected) => {
    const problems = problemsOf({ ...MINIMAL, ...overrides });
    expect(problems.map((p) => [p.kind, p.settings])).toEqual(
      expected.map(([kind, settings]) => [kind, settings]),
    );
    problems.forEach((p, i) => {
      expect(p.message).toContain(expected[i]?.[2]);
    });
  });

  it("names both alternatives with their examples when neither is set", () => {
    const [p] = problemsOf({ ...MINIMAL, SPIRE_SERVER_SOCKET: undefined });
    expect(p?.message).toContain("e.g. /tmp/spire-server/private/api.sock");
    expect(p?.message).toContain("e.g. 10.0.0.4:8081");
  });

  it("needs no socket or address with run-command", () => {
    const config = loadConfig({
      ...MINIMAL,
      SPIRE_SERVER_SOCKET: undefined,
      SPIRE_API: "run-command",
      SPIRE_VM_RESOURCE_GROUP: "rg-spire",
      SPIRE_VM_NAME: "vm-spire-server",
    });
    expect(config.spire).toStrictEqual({
      api: "run-command",
      trustDomain: "aim.microsoft.com",
      vm: { resourceGroup: "rg-spire", name: "vm-spire-server" },
      serverContainer: "spire-server",
      joinTokenTtlSeconds: 1200,
      admin: { spiffeId: "spiffe://aim.microsoft.com/spire-autopilot/admin", svidTtlSeconds: 86400 },
      runCommand: { cooldownSeconds: 10, pollSeconds: 5, timeoutSeconds: 300 },
    });
  });

  it("keeps a gRPC target with run-command when one is configured", () => {
    const config = loadConfig({
      ...MINIMAL,
      SPIRE_API: "run-command",
      SPIRE_VM_RESOURCE_GROUP: "rg",
      SPIRE_VM_NAME: "vm",
    });
    expect(config.spire.grpc).toEqual({
      transport: "unix",
      socketPath: "/tmp/spire-server/private/api.sock",
    });
  });

  it("builds a TCP target with its admin SVID secret", () => {
    const config = loadConfig({
      ...MINIMAL,
      SPIRE_SERVER_SOCKET: undefined,
      SPIRE_SERVER_ADDRESS: "spire.internal.example:8081",
      SPIRE_ADMIN_SVID_SECRET: "spire-admin-svid",
    });
    expect(config.spire.api === "grpc" && config.spire.grpc).toStrictEqual({
      transport: "tcp",
      address: "spire.internal.example:8081",
      host: "spire.internal.example",
      port: 8081,
      adminSvidSecretName: "spire-admin-svid",
    });
  });

  it("accepts a bracketed IPv6 address", () => {
    const config = loadConfig({
      ...MINIMAL,
      SPIRE_SERVER_SOCKET: undefined,
      SPIRE_SERVER_ADDRESS: "[fd00::4]:8081",
      SPIRE_ADMIN_SVID_SECRET: "spire-admin-svid",
    });
    expect(config.spire.grpc).toMatchObject({ transport: "tcp", host: "fd00::4", port: 8081 });
  });

  it("keeps the VM as a fallback with grpc", () => {
    const config = loadConfig({
      ...MINIMAL,
      SPIRE_VM_RESOURCE_GROUP: "rg-spire",
      SPIRE_VM_NAME: "vm-spire-server",
    });
    expect(config.spire).toMatchObject({
      api: "grpc",
      vm: { resourceGroup: "rg-spire", name: "vm-spire-server" },
    });
  });

  it("builds entra alert auth", () => {
    const config = loadConfig({
      ...MINIMAL,
      ALERT_AUTH: "entra",
      ALERT_AUDIENCE: "api://spire-autopilot",
      ALERT_TENANT_ID: "72f988bf-86f1-41af-91ab-2d7cd011db47",
    });
    expect(config.alerts.auth).toStrictEqual({
      mode: "entra",
      audience: "api://spire-autopilot",
      tenantId: "72f988bf-86f1-41af-91ab-2d7cd011db47",
    });
  });

  it("ignores audience and tenant with function-key auth", () => {
    const config = loadConfig({
      ...MINIMAL,
      ALERT_AUDIENCE: "api://x",
      ALERT_TENANT_ID: "72f988bf-86f1-41af-91ab-2d7cd011db47",
    });
    expect(config.alerts.auth).toStrictEqual({ mode: "function-key" });
  });
});

describe("ConfigError", () => {
  it("names all three missing settings in ONE error", () => {
    const e = errorOf({
      SPIRE_TRUST_DOMAIN: "aim.microsoft.com",
      SPIRE_SERVER_SOCKET: "/tmp/api.sock",
    });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe("ConfigError");
    expect(e.problems.map((p) => p.settings[0])).toEqual([
      "AZURE_SUBSCRIPTION_ID",
      "APPS_RESOURCE_GROUP",
      "KEY_VAULT_URL",
    ]);
    const lines = e.message.split("\n");
    expect(lines[0]).toBe("Invalid configuration (3 problems):");
    expect(lines).toHaveLength(4);
    for (const name of ["AZURE_SUBSCRIPTION_ID", "APPS_RESOURCE_GROUP", "KEY_VAULT_URL"]) {
      expect(e.message).toContain(`  - ${name} is missing: `);
    }
  });

  it("reports every kind of problem at once, in settings order", () => {
    const e = errorOf({
      KEY_VAULT_URL: "nope",
      JOIN_TOKEN_TTL_SECONDS: "5",
      ALERT_AUTH: "entra",
      SPIRE_API: "run-command",
      SPIRE_SERVER_SOCKET: "/a.sock",
      SPIRE_SERVER_ADDRESS: "h:1",
    });
    expect(e.problems.map((p) => `${p.kind} ${p.settings.join("+")}`)).toEqual([
      "missing SPIRE_TRUST_DOMAIN",
      "conflict SPIRE_SERVER_SOCKET+SPIRE_SERVER_ADDRESS",
      "missing SPIRE_ADMIN_SVID_SECRET",
      "missing SPIRE_VM_RESOURCE_GROUP",
      "missing SPIRE_VM_NAME",
      "invalid JOIN_TOKEN_TTL_SECONDS",
      "missing AZURE_SUBSCRIPTION_ID",
      "missing APPS_RESOURCE_GROUP",
      "invalid KEY_VAULT_URL",
      "missing ALERT_AUDIENCE",
      "missing ALERT_TENANT_ID",
    ]);
    expect(e.message.split("\n")).toHaveLength(e.problems.length + 1);
  });

  it("never echoes a configured value", () => {
    // Distinctive values that would stand out if echoed; each one is invalid for its setting.
    const values: Env = {
      SPIRE_TRUST_DOMAIN: "SECRET-TD-Qx7Vb9",
      AZURE_SUBSCRIPTION_ID: "secret-sub-Qx7Vb9",
      APPS_RESOURCE_GROUP: "secret rg Qx7Vb9",
      KEY_VAULT_URL: "http://secret-vault-qx7vb9.example/",
      SPIRE_API: "secret-api-Qx7Vb9",
      SPIRE_SERVER_SOCKET: "secret-socket-Qx7Vb9",
      SPIRE_SERVER_ADDRESS: "secret-address-Qx7Vb9",
      SPIRE_ADMIN_SVID_SECRET: "secret_svid_Qx7Vb9",
      JOIN_TOKEN_TTL_SECONDS: "77777x",
      WORKLOAD_SELECTORS: "SECRET:Qx7Vb9",
      HEALTH_SWEEP_SCHEDULE: "secret sched Qx7Vb9",
      ALERT_AUDIENCE: "secret audience Qx7Vb9",
      ALERT_TENANT_ID: "secret-tenant-Qx7Vb9",
      AZURE_CLIENT_ID: "secret-client-Qx7Vb9",
      ARM_ENDPOINT: "https://user:pass-Qx7Vb9@arm.example",
      ARM_CA_CERT_FILE: "/nonexistent/secret-ca-Qx7Vb9.pem",
      FLEET_TABLES_ENDPOINT: "https://acct.example/?sig=secret-Qx7Vb9",
    };
    const e = errorOf(values);
    expect(e.problems.length).toBeGreaterThanOrEqual(Object.keys(values).length);
    expect(e.message).not.toMatch(/qx7vb9/i);
    expect(e.message).not.toContain("77777");
    for (const p of e.problems) expect(p.message).not.toMatch(/qx7vb9/i);
    expect(JSON.stringify(e.problems)).not.toMatch(/qx7vb9/i);
    expect(String(e.stack)).not.toMatch(/qx7vb9/i);
  });
});

describe("SETTINGS", () => {
  it("has unique names in SCREAMING_SNAKE_CASE, each with a description and an example", () => {
    const names = SETTINGS.map((s) => s.name);
    expect(new Set(names).size).toBe(names.length);
    for (const s of SETTINGS) {
      expect(s.name).toMatch(/^[A-Z][A-Z0-9_]*$/);
      expect(s.description.length).toBeGreaterThan(10);
      expect(s.example.length).toBeGreaterThan(0);
      if (s.required) expect(s.default).toBeUndefined();
    }
  });

  it("documents the conditional requirements", () => {
    expect(info("SPIRE_VM_NAME").requiredWhen).toBe(
      "SPIRE_API=run-command, or SPIRE_VM_RESOURCE_GROUP is set",
    );
    expect(info("SPIRE_ADMIN_SVID_SECRET").requiredWhen).toBe("SPIRE_SERVER_ADDRESS is set");
    expect(info("SPIRE_SERVER_SOCKET").requiredWhen).toBe("SPIRE_API=grpc and SPIRE_SERVER_ADDRESS is unset");
    expect(info("ALERT_TENANT_ID").requiredWhen).toBe("ALERT_AUTH=entra");
    expect(info("ARM_CA_CERT_FILE").requiredWhen).toBeUndefined();
  });

  it.each(SETTINGS.filter((s) => !s.name.endsWith("_CA_CERT_FILE")))("example of $name is valid", (s) => {
    const invalid = problemsOf({ ...MINIMAL, [s.name]: s.example }).filter((p) => p.kind === "invalid");
    expect(invalid).toEqual([]);
  });

  it("lists the defaults the spec asks for", () => {
    const defaults = Object.fromEntries(
      SETTINGS.filter((s) => s.default !== undefined).map((s) => [s.name, s.default]),
    );
    expect(defaults).toEqual({
      SPIRE_API: "grpc",
      SPIRE_SERVER_CONTAINER: "spire-server",
      JOIN_TOKEN_TTL_SECONDS: "1200",
      ADMIN_SVID_TTL_SECONDS: "86400",
      RUN_COMMAND_COOLDOWN_SECONDS: "10",
      RUN_COMMAND_POLL_SECONDS: "5",
      RUN_COMMAND_TIMEOUT_SECONDS: "300",
      MANAGED_TAG_NAME: "spire-autopilot",
      MANAGED_TAG_VALUE: "managed",
      BLUEPRINT_OID_TAG: "spiffe-blueprint-oid",
      AGENT_OID_TAG: "spiffe-agent-oid",
      WORKLOAD_SELECTORS: "unix:uid:0",
      WORKLOAD_X509_TTL_SECONDS: "3600",
      TRUST_BUNDLE_SECRET_NAME: "spire-trust-bundle",
      FLEET_TABLE_NAME: "fleet",
      HEALTH_SWEEP_SCHEDULE: "0 */5 * * * *",
      HOUSEKEEPING_SCHEDULE: "0 30 3 * * *",
      HISTORY_RETENTION_DAYS: "30",
      BUNDLE_ROTATION_SCHEDULE: "0 */15 * * * *",
      ALERT_AUTH: "function-key",
      ALERT_COOLDOWN_SECONDS: "900",
      REATTEST_REVISION_TIMEOUT_SECONDS: "600",
      REATTEST_VERIFY_TIMEOUT_SECONDS: "300",
      DEPLOY_ATTEST_SPACING_MS: "1200",
      AZURE_CREDENTIAL: "default",
      ARM_ENDPOINT: "https://management.azure.com",
      LOGS_ENDPOINT: "https://api.loganalytics.azure.com/v1",
      KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: "false",
      HEALTH_SWEEP_MODE: "repair",
      SPIRE_AGENT_SVID_TTL_SECONDS: "3600",
      LOG_INGESTION_DELAY_SECONDS: "300",
    });
  });

  it("describes every setting in a markdown table", () => {
    const lines = describeSettings().split("\n");
    expect(lines[0]).toBe("| Setting | Required | Default | Description | Example |");
    expect(lines[1]).toBe("| --- | --- | --- | --- | --- |");
    expect(lines).toHaveLength(SETTINGS.length + 2);
    SETTINGS.forEach((s, i) => {
      expect(lines[i + 2]).toMatch(new RegExp(`^\\| \`${s.name}\` \\| `));
    });
    expect(describeSettings()).toContain("| `SPIRE_TRUST_DOMAIN` | yes |  |");
    expect(describeSettings()).toContain("| `SPIRE_API` | no | `grpc` |");
    expect(describeSettings()).toContain("| `ALERT_AUDIENCE` | when ALERT_AUTH=entra |  |");
    // Every row has exactly five cells: no unescaped '|' leaks out of a description.
    for (const line of lines) expect(line.replaceAll("\\|", "").split("|")).toHaveLength(7);
  });
});

describe("local.settings.json.example", () => {
  const file = JSON.parse(
    readFileSync(new URL("../../local.settings.json.example", import.meta.url), "utf8"),
  ) as {
    IsEncrypted: boolean;
    Values: Record<string, string>;
  };

  it("lists exactly every setting in SETTINGS, plus the host's own", () => {
    expect(Object.keys(file.Values).sort()).toEqual(
      [...SETTINGS.map((s) => s.name), "FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage"].sort(),
    );
    expect(file.IsEncrypted).toBe(false);
    expect(file.Values.FUNCTIONS_WORKER_RUNTIME).toBe("node");
    expect(file.Values.AzureWebJobsStorage).toBe("UseDevelopmentStorage=true");
  });

  it("holds each setting's example (or blank where the example cannot be part of one config)", () => {
    // On failure, regenerate the file from exampleLocalSettings().
    expect(file).toEqual(exampleLocalSettings());
    for (const s of SETTINGS) expect([s.example, ""]).toContain(file.Values[s.name]);
  });

  it("is accepted by loadConfig", () => {
    const config = loadConfig(file.Values);
    expect(config.spire.trustDomain).toBe("aim.microsoft.com");
    expect(config.alerts.auth.mode).toBe("entra");
  });
});

describe("loadConfig: the admin SVID", () => {
  it.each([
    ["the default ID is in the trust domain", {}, "spiffe://aim.microsoft.com/spire-autopilot/admin", 86400],
    [
      "a configured ID and a short TTL",
      { SPIRE_ADMIN_SPIFFE_ID: "spiffe://aim.microsoft.com/ops/admin", ADMIN_SVID_TTL_SECONDS: "45" },
      "spiffe://aim.microsoft.com/ops/admin",
      45,
    ],
  ])("%s", (_, overrides, spiffeId, ttl) => {
    expect(loadConfig({ ...MINIMAL, ...overrides }).spire.admin).toEqual({ spiffeId, svidTtlSeconds: ttl });
  });

  it.each([
    [
      "another trust domain",
      { SPIRE_ADMIN_SPIFFE_ID: "spiffe://other.org/admin" },
      "conflict",
      "not in SPIRE_TRUST_DOMAIN",
    ],
    [
      "not a SPIFFE ID",
      { SPIRE_ADMIN_SPIFFE_ID: "https://aim.microsoft.com/admin" },
      "invalid",
      "SPIRE_ADMIN_SPIFFE_ID is invalid",
    ],
    [
      "no path",
      { SPIRE_ADMIN_SPIFFE_ID: "spiffe://aim.microsoft.com" },
      "invalid",
      "SPIRE_ADMIN_SPIFFE_ID is invalid",
    ],
    [
      "a TTL too short to renew",
      { ADMIN_SVID_TTL_SECONDS: "10" },
      "invalid",
      "ADMIN_SVID_TTL_SECONDS is invalid",
    ],
  ])("refuses %s", (_, overrides, kind, text) => {
    const [p, ...rest] = problemsOf({ ...MINIMAL, ...overrides });
    expect(rest).toEqual([]);
    expect(p?.kind).toBe(kind);
    expect(p?.message).toContain(text);
    expect(p?.message).not.toContain("other.org");
  });
});

describe("loadConfig: the rotation schedule renews the admin SVID in time (TCP mode)", () => {
  const TCP: Env = {
    ...MINIMAL,
    SPIRE_SERVER_SOCKET: undefined,
    SPIRE_SERVER_ADDRESS: "10.0.0.4:8081",
    SPIRE_ADMIN_SVID_SECRET: "spire-admin-svid",
  };
  it.each<[string, Env, boolean]>([
    ["default TTL (1 day) and schedule (15 min)", TCP, true],
    ["half the TTL just longer than the schedule's gap", { ...TCP, ADMIN_SVID_TTL_SECONDS: "1801" }, true],
    ["half the TTL exactly the schedule's gap", { ...TCP, ADMIN_SVID_TTL_SECONDS: "1800" }, false],
    ["a short TTL with the default schedule", { ...TCP, ADMIN_SVID_TTL_SECONDS: "600" }, false],
    [
      "a short TTL with a fast schedule",
      { ...TCP, ADMIN_SVID_TTL_SECONDS: "30", BUNDLE_ROTATION_SCHEDULE: "*/5 * * * * *" },
      true,
    ],
    [
      "an uneven schedule counts its longest gap (55 min)",
      { ...TCP, ADMIN_SVID_TTL_SECONDS: "3600", BUNDLE_ROTATION_SCHEDULE: "0 0,5 * * * *" },
      false,
    ],
    ["no admin SVID without TCP: any TTL", { ...MINIMAL, ADMIN_SVID_TTL_SECONDS: "60" }, true],
  ])("%s", (_, env, ok) => {
    const problems = problemsOf(env);
    if (ok) {
      expect(problems).toEqual([]);
      return;
    }
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({
      kind: "conflict",
      settings: ["ADMIN_SVID_TTL_SECONDS", "BUNDLE_ROTATION_SCHEDULE"],
    });
    expect(problems[0]?.message).toMatch(
      /BUNDLE_ROTATION_SCHEDULE can wait longer between runs than half of ADMIN_SVID_TTL_SECONDS: .*run it more often or raise ADMIN_SVID_TTL_SECONDS/,
    );
  });
});
