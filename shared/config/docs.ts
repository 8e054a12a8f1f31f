import { NAMES, RULES, type SettingGroup, type SettingName, settingOf } from "./settings.js";

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
    if (rule.kind === "coversSum" || rule.kind === "inTrustDomain" || rule.kind === "scheduleWithinHalf")
      return [];
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
