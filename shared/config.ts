import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { z } from "zod";

/*
 * Every app setting, declared once in SETTING_TABLE. The table drives validation (one zod schema per
 * setting), the docs (SETTINGS, describeSettings) and local.settings.json.example, so they cannot
 * drift apart. loadConfig reports every problem at once and never echoes a value: some settings
 * end up next to secrets, and error text travels to logs and HTTP callers.
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
  | "endpoints";

/** Reason text for failures the setting's description already explains; the error line then omits it. */
const PLAIN = "invalid";

class Rejection {
  constructor(readonly reason: string = PLAIN) {}
}

/** A string setting parsed by `parse`, which returns the typed value or a Rejection that never quotes the input. */
function parsedWith<T>(parse: (raw: string) => T | Rejection) {
  return z.string().transform((raw, ctx): T => {
    const out = parse(raw);
    if (out instanceof Rejection) {
      ctx.addIssue({ code: "custom", message: out.reason });
      return z.NEVER;
    }
    return out;
  });
}

/** A string setting kept as is once `problem` (returning a reason, or undefined when fine) accepts it. */
function checkedWith(problem: (raw: string) => string | undefined) {
  return parsedWith((raw) => {
    const reason = problem(raw);
    return reason === undefined ? raw : new Rejection(reason);
  });
}

const matching = (pattern: RegExp) => checkedWith((raw) => (pattern.test(raw) ? undefined : PLAIN));

const guid = matching(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);

function wholeNumber(min: number, max: number) {
  return z
    .string()
    .regex(/^[0-9]+$/, "not a whole number")
    .transform(Number)
    .pipe(z.number().min(min, `outside ${min}..${max}`).max(max, `outside ${min}..${max}`));
}

function url(schemes: readonly ("https:" | "http:")[]) {
  return checkedWith((raw) => {
    let parsed: URL;
    try {
      parsed = new URL(raw);
    } catch {
      return "not a URL";
    }
    if (!schemes.some((scheme) => scheme === parsed.protocol)) {
      // The Azure SDK refuses bearer tokens over plain http, so an http endpoint would only fail later.
      return schemes.includes("http:") ? "must be http or https" : "must be https";
    }
    if (parsed.username !== "" || parsed.password !== "") return "must not embed credentials";
    if (parsed.search !== "" || parsed.hash !== "") return "must not carry a query or fragment";
    return undefined;
  });
}

/** Reads the PEM so a bad path fails at startup instead of at the first TLS handshake. */
const caCertFile = parsedWith((path) => {
  let pem: string;
  try {
    pem = readFileSync(path, "utf8");
  } catch {
    return new Rejection("cannot read the file");
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    return new Rejection("no -----BEGIN CERTIFICATE----- block in the file");
  }
  if (/PRIVATE KEY-----/.test(pem))
    return new Rejection("the file holds a private key; give only certificates");
  return pem;
});

const trustDomain = checkedWith((raw) => {
  if (raw.includes("://")) return "no scheme: drop spiffe://";
  if (raw.includes("/")) return "no path allowed";
  if (/[A-Z]/.test(raw)) return "must be lowercase";
  if (!/^[a-z0-9._-]+$/.test(raw)) return PLAIN;
  return raw.length > 255 ? "longer than 255 characters" : undefined;
});

const resourceGroupName = checkedWith((raw) =>
  /^[\p{L}\p{N}._()-]{1,90}$/u.test(raw) && !raw.endsWith(".") ? undefined : PLAIN,
);

const vmName = matching(/^(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]{0,62}[A-Za-z0-9_])$/);

const dockerContainerName = matching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/);

const keyVaultSecretName = matching(/^[0-9A-Za-z-]{1,127}$/);

const tagName = matching(/^[^<>%&\\?/\p{Cc}]{1,512}$/u);

const tagValue = matching(/^[^\p{Cc}]{1,256}$/u);

const tableName = checkedWith((raw) => {
  if (!/^[A-Za-z][A-Za-z0-9]{2,62}$/.test(raw)) return PLAIN;
  return raw.toLowerCase() === "tables" ? "reserved by Table Storage" : undefined;
});

const noWhitespace = checkedWith((raw) => (/^\S+$/.test(raw) ? undefined : "must not contain whitespace"));

// sun_path in sockaddr_un is 108 bytes including the terminating NUL.
const MAX_UNIX_SOCKET_PATH_BYTES = 107;

const unixSocketPath = checkedWith((raw) => {
  if (!raw.startsWith("/")) return "must be an absolute path";
  if (/[\p{Cc}]/u.test(raw)) return "must not contain control characters";
  if (Buffer.byteLength(raw) > MAX_UNIX_SOCKET_PATH_BYTES) {
    return `longer than ${MAX_UNIX_SOCKET_PATH_BYTES} bytes, the unix socket limit`;
  }
  return undefined;
});

const DNS_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const DNS_NAME = new RegExp(`^${DNS_LABEL}(?:\\.${DNS_LABEL})*$`);

export interface HostPort {
  /** As configured, ready for a gRPC target. */
  address: string;
  host: string;
  port: number;
}

const hostPort = parsedWith((raw): HostPort | Rejection => {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(raw);
  if (!m) return new Rejection("expected host:port");
  const [, ipv6, name, portText] = m;
  const port = Number(portText);
  if (port < 1 || port > 65535) return new Rejection("port outside 1..65535");
  if (ipv6 !== undefined) {
    return isIP(ipv6) === 6
      ? { address: raw, host: ipv6, port }
      : new Rejection("not an IPv6 address in [...]");
  }
  const host = name ?? "";
  const looksLikeIpv4 = /^[0-9.]+$/.test(host);
  if (looksLikeIpv4 ? isIP(host) !== 4 : host.length > 253 || !DNS_NAME.test(host)) {
    return new Rejection("not a valid host name or IPv4 address");
  }
  return { address: raw, host, port };
});

export interface Selector {
  type: string;
  /** Everything after the first ':', e.g. "uid:0" for "unix:uid:0", as SPIRE splits it. */
  value: string;
}

const selectorList = parsedWith((raw): Selector[] | Rejection => {
  const selectors: Selector[] = [];
  for (const item of raw.split(",").map((s) => s.trim())) {
    const m = /^([a-z0-9_-]+):([^:\s]+(?::[^:\s]+)*)$/.exec(item);
    if (!m) return new Rejection(item === "" ? "empty selector in the list" : "expected type:value items");
    selectors.push({ type: m[1] ?? "", value: m[2] ?? "" });
  }
  return selectors;
});

const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

interface CronField {
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
}

const NCRONTAB_FIELDS: readonly CronField[] = [
  { name: "second", min: 0, max: 59 },
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day", min: 1, max: 31 },
  { name: "month", min: 1, max: 12, names: MONTHS },
  { name: "day-of-week", min: 0, max: 6, names: WEEKDAYS },
];

function cronValueOk(token: string, field: CronField): boolean {
  if (/^[0-9]{1,2}$/.test(token)) return Number(token) >= field.min && Number(token) <= field.max;
  return field.names?.includes(token.toLowerCase()) ?? false;
}

function cronFieldOk(text: string, field: CronField): boolean {
  return text.split(",").every((item) => {
    const m = /^(\*|([0-9A-Za-z]+)(?:-([0-9A-Za-z]+))?)(?:\/([0-9]{1,2}))?$/.exec(item);
    if (!m) return false;
    const [, , from, to, step] = m;
    if (step !== undefined && Number(step) < 1) return false;
    if (from !== undefined && !cronValueOk(from, field)) return false;
    return to === undefined || cronValueOk(to, field);
  });
}

// Timer triggers take these through %NAME%, so a bad value would only surface when the host indexes.
const ncrontab = parsedWith((raw) => {
  const fields = raw.trim().split(/\s+/);
  if (fields.length !== NCRONTAB_FIELDS.length) {
    return new Rejection(`expected 6 fields, got ${fields.length}`);
  }
  const bad = NCRONTAB_FIELDS.find((field, i) => !cronFieldOk(fields[i] ?? "", field));
  return bad ? new Rejection(`bad ${bad.name} field`) : fields.join(" ");
});

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

const SETTING_TABLE = {
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
  JOIN_TOKEN_TTL_SECONDS: withDefault("600", {
    group: "spire",
    description: "lifetime of a join token in seconds, a whole number from 60 to 86400",
    example: "600",
    schema: wholeNumber(60, 86400),
  }),
  RUN_COMMAND_COOLDOWN_SECONDS: withDefault("10", {
    group: "spire",
    description:
      "pause between run-commands on the VM in seconds (firing them faster wedges the VM agent), a whole number from 0 to 600",
    example: "10",
    schema: wholeNumber(0, 600),
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
    description: "Log Analytics workspace id, a GUID; unset skips the log-based health checks",
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
  BUNDLE_ROTATION_SCHEDULE: withDefault("0 0 * * * *", {
    group: "schedules",
    description:
      "NCRONTAB schedule of the trust bundle check: 6 fields, second minute hour day month day-of-week",
    example: "0 0 * * * *",
    schema: ncrontab,
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
    description: "audience of the secure webhook tokens (Application ID URI or client id), no whitespace",
    example: "api://spire-autopilot",
    schema: noWhitespace,
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
  TABLES_CA_CERT_FILE: caFileSetting("the Table service"),
  AUTHORITY_HOST: optional({
    group: "endpoints",
    description:
      "Entra authority host for token requests and for the signing keys of alert webhook tokens, https",
    example: "https://login.microsoftonline.com",
    schema: url(["https:"]),
  }),
  AUTHORITY_CA_CERT_FILE: caFileSetting("AUTHORITY_HOST"),
};

type Table = typeof SETTING_TABLE;
export type SettingName = keyof Table;

/** Parsed settings; only `optional` ones may be absent. */
type Values = {
  [K in SettingName]: Table[K]["presence"] extends "optional"
    ? z.output<Table[K]["schema"]> | undefined
    : z.output<Table[K]["schema"]>;
};

const NAMES = Object.keys(SETTING_TABLE) as SettingName[];

function settingOf(name: SettingName): Setting<z.ZodType, Presence> {
  return SETTING_TABLE[name];
}

interface RuleContext {
  /** Parsed value; undefined when absent or invalid, so rules never fire on a guess. */
  value<K extends SettingName>(name: K): Values[K] | undefined;
  /** Whether the setting was given at all, valid or not. */
  given(name: SettingName): boolean;
}

type Rule =
  | { kind: "requires"; setting: SettingName; when: string; applies: (c: RuleContext) => boolean }
  | {
      kind: "exactlyOne";
      settings: readonly [SettingName, SettingName];
      when: string;
      applies: (c: RuleContext) => boolean;
    };

/** Requirements that depend on other settings. `when` is shown in errors and docs. */
const RULES: readonly Rule[] = [
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
];

// ---------------------------------------------------------------------------------------------
// Docs

export interface SettingInfo {
  name: SettingName;
  group: SettingGroup;
  required: boolean;
  /** Conditions under which an otherwise optional setting is required. */
  requiredWhen?: string;
  default?: string;
  description: string;
  example: string;
}

function requiredWhen(name: SettingName): string | undefined {
  const conditions = RULES.flatMap((rule) => {
    if (rule.kind === "requires") return rule.setting === name ? [rule.when] : [];
    if (!rule.settings.includes(name)) return [];
    const other = rule.settings.find((s) => s !== name);
    return [`${rule.when} and ${other} is unset`];
  });
  return conditions.length > 0 ? conditions.join(", or ") : undefined;
}

export const SETTINGS: readonly SettingInfo[] = NAMES.map((name) => {
  const s = settingOf(name);
  const info: SettingInfo = {
    name,
    group: s.group,
    required: s.presence === "required",
    description: s.description,
    example: s.example,
  };
  const when = requiredWhen(name);
  if (when !== undefined) info.requiredWhen = when;
  if (s.default !== undefined) info.default = s.default;
  return info;
});

const cell = (text: string) => text.replaceAll("|", "\\|");
const code = (text: string | undefined) => (text === undefined ? "" : `\`${cell(text)}\``);

/** Markdown table of every setting, for the README. */
export function describeSettings(): string {
  const rows = SETTINGS.map((s) => {
    const needed = s.required ? "yes" : s.requiredWhen ? `when ${s.requiredWhen}` : "no";
    return `| ${code(s.name)} | ${cell(needed)} | ${code(s.default)} | ${cell(s.description)} | ${code(s.example)} |`;
  });
  return [
    "| Setting | Required | Default | Description | Example |",
    "| --- | --- | --- | --- | --- |",
    ...rows,
  ].join("\n");
}

// Blank in the example file (the host passes "" and loadConfig treats it as unset) so that the file
// is one coherent config that loadConfig accepts: the example uses SPIRE_SERVER_ADDRESS, and CA files
// must exist to be valid.
const BLANK_IN_EXAMPLE_FILE: ReadonlySet<SettingName> = new Set([
  "SPIRE_SERVER_SOCKET",
  "ARM_CA_CERT_FILE",
  "LOGS_CA_CERT_FILE",
  "KEY_VAULT_CA_CERT_FILE",
  "TABLES_CA_CERT_FILE",
  "AUTHORITY_CA_CERT_FILE",
]);

export interface LocalSettingsFile {
  IsEncrypted: false;
  Values: Record<string, string>;
}

/** The content of local.settings.json.example at the repo root; a unit test keeps the file equal to it. */
export function exampleLocalSettings(): LocalSettingsFile {
  const values: Record<string, string> = {
    FUNCTIONS_WORKER_RUNTIME: "node",
    AzureWebJobsStorage: "UseDevelopmentStorage=true",
  };
  for (const s of SETTINGS) values[s.name] = BLANK_IN_EXAMPLE_FILE.has(s.name) ? "" : s.example;
  return { IsEncrypted: false, Values: values };
}

// ---------------------------------------------------------------------------------------------
// Loading

export type ProblemKind = "missing" | "invalid" | "conflict";

export interface ConfigProblem {
  /** The settings involved, first one decides the position in the report. */
  settings: readonly SettingName[];
  kind: ProblemKind;
  /** One line, never containing a configured value. */
  message: string;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    const count = `${problems.length} problem${problems.length === 1 ? "" : "s"}`;
    super([`Invalid configuration (${count}):`, ...problems.map((p) => `  - ${p.message}`)].join("\n"));
    this.problems = problems;
  }
}

const hint = (name: SettingName) => `${settingOf(name).description}, e.g. ${settingOf(name).example}`;

function missing(name: SettingName, when?: string): ConfigProblem {
  const condition = when === undefined ? "" : ` (required when ${when})`;
  return { settings: [name], kind: "missing", message: `${name} is missing${condition}: ${hint(name)}` };
}

function invalid(name: SettingName, reason: string): ConfigProblem {
  const detail = reason === PLAIN ? "" : ` (${reason})`;
  return { settings: [name], kind: "invalid", message: `${name} is invalid${detail}: ${hint(name)}` };
}

/** Reason of the first issue; our schemas only produce messages that never quote the input. */
function reasonOf(error: z.ZodError): string {
  return error.issues[0]?.message ?? PLAIN;
}

/** Parses a setting's default; a failure is a bug in the table, not a configuration problem. */
function parseDefault(name: SettingName, text: string): unknown {
  const result = settingOf(name).schema.safeParse(text);
  if (!result.success) throw new Error(`Default of ${name} does not satisfy its own rules`);
  return result.data;
}

function applyRules(ctx: RuleContext): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const rule of RULES) {
    if (rule.kind === "requires") {
      if (rule.applies(ctx) && !ctx.given(rule.setting)) problems.push(missing(rule.setting, rule.when));
      continue;
    }
    const [a, b] = rule.settings;
    if (ctx.given(a) && ctx.given(b)) {
      problems.push({
        settings: [a, b],
        kind: "conflict",
        message: `${a} and ${b} are both set: set only one, ${a} for a local socket or ${b} for TCP with mTLS`,
      });
    } else if (rule.applies(ctx) && !ctx.given(a) && !ctx.given(b)) {
      problems.push({
        settings: [a, b],
        kind: "missing",
        message: `${a} or ${b} is missing (${rule.when} needs exactly one): ${hint(a)}; or ${hint(b)}`,
      });
    }
  }
  return problems;
}

/** Validates every setting the app reads; throws one ConfigError listing every problem. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const parsed = new Map<SettingName, unknown>();
  const given = new Set<SettingName>();
  const problems: ConfigProblem[] = [];

  for (const name of NAMES) {
    const raw = env[name];
    const s = settingOf(name);
    // Functions hosts pass blank app settings as "", which means "not configured".
    if (raw === undefined || raw === "") {
      if (s.presence === "required") problems.push(missing(name));
      else if (s.default !== undefined) parsed.set(name, parseDefault(name, s.default));
      continue;
    }
    given.add(name);
    const result = s.schema.safeParse(raw);
    if (result.success) parsed.set(name, result.data);
    else problems.push(invalid(name, reasonOf(result.error)));
  }

  const ctx: RuleContext = {
    value: <K extends SettingName>(name: K) => parsed.get(name) as Values[K] | undefined,
    given: (name) => given.has(name),
  };
  const missingAlready = new Set<SettingName | undefined>();
  for (const p of applyRules(ctx)) {
    // "Missing because of A" and "missing because of B" say one thing: keep the first.
    if (p.kind === "missing" && missingAlready.has(p.settings[0])) continue;
    if (p.kind === "missing") missingAlready.add(p.settings[0]);
    problems.push(p);
  }

  if (problems.length > 0) {
    const position = (p: ConfigProblem) => NAMES.indexOf(p.settings[0] ?? NAMES[0]!);
    throw new ConfigError(problems.toSorted((x, y) => position(x) - position(y)));
  }
  // Every required or defaulted setting is in `parsed` now, which is what Values promises.
  return assemble(Object.fromEntries(parsed) as Values);
}

// ---------------------------------------------------------------------------------------------
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
  runCommand: { cooldownSeconds: number; timeoutSeconds: number };
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
  schedules: { healthSweep: string; bundleRotation: string };
  alerts: { auth: AlertAuth; cooldownSeconds: number };
  endpoints: {
    arm: ServiceEndpoint;
    logs: ServiceEndpoint;
    keyVault: ServiceEndpoint;
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

function assemble(v: Values): AppConfig {
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
    runCommand: {
      cooldownSeconds: v.RUN_COMMAND_COOLDOWN_SECONDS,
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
    schedules: { healthSweep: v.HEALTH_SWEEP_SCHEDULE, bundleRotation: v.BUNDLE_ROTATION_SCHEDULE },
    alerts: { auth, cooldownSeconds: v.ALERT_COOLDOWN_SECONDS },
    endpoints: compact({
      arm: endpoint(v.ARM_ENDPOINT, v.ARM_CA_CERT_FILE),
      logs: endpoint(v.LOGS_ENDPOINT, v.LOGS_CA_CERT_FILE),
      keyVault: endpoint(v.KEY_VAULT_URL, v.KEY_VAULT_CA_CERT_FILE),
      tables: compact({ url: v.FLEET_TABLES_ENDPOINT, ca: v.TABLES_CA_CERT_FILE }),
      authorityHost: v.AUTHORITY_HOST,
      authorityCa: v.AUTHORITY_CA_CERT_FILE,
    }),
  };
}
