import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { Parser } from "web-tree-sitter";
import {
  bicepParser,
  declarations,
  loadTemplates,
  mutate,
  objectProps,
  ROOT,
  stringValue,
  type Templates,
} from "./infra/bicep.js";
import { eventGridFunctions } from "./infra/sdk-calls.js";

/*
 * What the templates wire to the code by name: the Event Grid trigger, the alert webhook's route,
 * the SPIRE server's syslog tag and config, and the parameters azd passes. Each check is a function
 * of the templates so a broken copy shows it fails.
 */

const read = (p: string) => readFileSync(join(ROOT, p), "utf8");
const templates = loadTemplates();
const cloudInit = read("infra/spire/cloud-init.yaml");
let parser: Parser;
beforeAll(async () => {
  parser = await bicepParser();
});

function eventGridProblems(t: Templates, indexTs: string): string[] {
  const text = t.get("infra/modules/eventgrid.bicep") ?? "";
  const target = /\/functions\/(\w+)'/.exec(text)?.[1];
  const registered = eventGridFunctions(indexTs);
  const problems: string[] = [];
  if (!target || !registered.includes(target)) {
    problems.push(
      `eventgrid.bicep delivers to ${target ?? "nothing"}; functions/index.ts registers ${registered.join(", ")}`,
    );
  }
  for (const type of ["SecretNewVersionCreated", "SecretNearExpiry", "SecretExpired"]) {
    if (!text.includes(`'Microsoft.KeyVault.${type}'`))
      problems.push(`eventgrid.bicep does not subscribe ${type}`);
  }
  if (!/eventDeliverySchema:\s*'EventGridSchema'/.test(text))
    problems.push("eventgrid.bicep: not the Event Grid schema");
  return problems;
}

/** Placeholders of cloud-init.yaml that spire-vm.bicep does not replace(), and replacements of none. */
function placeholderProblems(t: Templates, yaml: string): string[] {
  const bicep = t.get("infra/modules/spire-vm.bicep") ?? "";
  const inYaml = new Set(yaml.match(/__[A-Z_]+__/g) ?? []);
  const replaced = new Set([...bicep.matchAll(/'(__[A-Z_]+__)'/g)].map((m) => m[1] ?? ""));
  const problems: string[] = [];
  for (const p of inYaml)
    if (!replaced.has(p)) problems.push(`cloud-init placeholder ${p} is never replaced`);
  for (const p of replaced)
    if (!inYaml.has(p)) problems.push(`spire-vm.bicep replaces ${p}, which cloud-init lacks`);
  if (!/loadTextContent\('\.\.\/spire\/cloud-init\.yaml'\)/.test(bicep))
    problems.push("spire-vm.bicep does not load cloud-init.yaml");
  return problems;
}

/** Every main.bicep parameter without a default is given by main.parameters.json, and it names no other. */
function parameterProblems(p: Parser, t: Templates, parametersJson: string): string[] {
  const main = t.get("infra/main.bicep") ?? "";
  const params = [...main.matchAll(/^param (\w+) (\w+)( = .*)?$/gm)].map((m) => ({
    name: m[1] ?? "",
    hasDefault: !!m[3],
  }));
  const given = Object.keys((JSON.parse(parametersJson) as { parameters: object }).parameters);
  const problems: string[] = [];
  for (const x of params)
    if (!x.hasDefault && !given.includes(x.name)) problems.push(`main.parameters.json lacks ${x.name}`);
  for (const g of given)
    if (!params.some((x) => x.name === g)) problems.push(`main.parameters.json sets unknown ${g}`);
  if (declarations(p, t).length === 0) problems.push("no declarations parsed");
  return problems;
}

function hardeningProblems(p: Parser, t: Templates): string[] {
  const problems: string[] = [];
  const body = (file: string, typePrefix: string) =>
    declarations(p, new Map([[file, t.get(file) ?? ""]])).find(
      (d) => !d.existing && d.target?.startsWith(typePrefix),
    )?.body;
  const props = (n: ReturnType<typeof body>) => objectProps(objectProps(n).get("properties"));
  const storage = props(body("infra/modules/storage.bicep", "Microsoft.Storage/storageAccounts@"));
  if (storage.get("allowSharedKeyAccess")?.text !== "false")
    problems.push("storage: shared keys must be off");
  const vault = props(body("infra/modules/keyvault.bicep", "Microsoft.KeyVault/vaults@"));
  if (vault.get("enableRbacAuthorization")?.text !== "true")
    problems.push("vault: RBAC authorization must be on");
  if (vault.get("enablePurgeProtection")?.text !== "true")
    problems.push("vault: purge protection must be on");
  const site = props(body("infra/modules/functionapp.bicep", "Microsoft.Web/sites@"));
  const runtime = objectProps(objectProps(site.get("functionAppConfig")).get("runtime"));
  if (stringValue(runtime.get("name")) !== "node" || stringValue(runtime.get("version")) !== "22") {
    problems.push("function app: runtime must be node 22");
  }
  if (!site.get("virtualNetworkSubnetId")) problems.push("function app: no VNet integration");
  const plan = objectProps(body("infra/modules/functionapp.bicep", "Microsoft.Web/serverfarms@"));
  if (!/name:\s*'FC1'/.test(plan.get("sku")?.text ?? "")) problems.push("plan: not Flex Consumption (FC1)");
  const net = t.get("infra/modules/network.bicep") ?? "";
  if (!/serviceName:\s*'Microsoft\.App\/environments'/.test(net))
    problems.push("network: subnet not delegated for Flex");
  // App settings are readable from ARM by any Reader: no key or connection string with a secret.
  const fnText = t.get("infra/modules/functionapp.bicep") ?? "";
  if (/listKeys|listSecrets|AccountKey=|SharedAccessKey|DefaultEndpointsProtocol/i.test(fnText)) {
    problems.push("function app: a secret in its app settings");
  }
  // No secret leaves a deployment: outputs are names, ids and URLs.
  for (const [file, text] of t) {
    for (const m of text.matchAll(/^output (\w+) \w+ = (.*)$/gm)) {
      if (/listKeys|listSecrets|secret|password|key\b/i.test(m[2] ?? ""))
        problems.push(`${file}: output ${m[1]} exposes a secret`);
    }
    if (/insecure_bootstrap/.test(text)) problems.push(`${file}: insecure_bootstrap`);
  }
  return problems;
}

/** The NSG opens the API port to the Function App subnet (and the agents), and denies it to everyone else. */
function nsgProblems(t: Templates): string[] {
  const text = t.get("infra/modules/spire-vm.bicep") ?? "";
  const problems: string[] = [];
  if (!/sourceAddressPrefix:\s*functionSubnetPrefix/.test(text))
    problems.push("nsg: API not opened to the Function App subnet");
  const deny =
    /name: 'spire-api-deny-others'[\s\S]*?access: 'Deny'[\s\S]*?sourceAddressPrefix: '\*'[\s\S]*?destinationPortRange: string\(spirePort\)/;
  if (!deny.test(text)) problems.push("nsg: the API port is not denied to other sources");
  if (
    /sourceAddressPrefix:\s*'(\*|Internet|VirtualNetwork)'[\s\S]{0,120}access: 'Allow'|access: 'Allow'[\s\S]{0,80}sourceAddressPrefix:\s*'(\*|Internet|VirtualNetwork)'/.test(
      text,
    )
  ) {
    problems.push("nsg: an allow rule from a broad source");
  }
  return problems;
}

describe("the templates are wired to the code by the right names", () => {
  const indexTs = read("functions/index.ts");

  it("Key Vault events go to the product's Event Grid trigger, in the Event Grid schema", () => {
    expect(eventGridFunctions(indexTs)).toContain("keyVaultEvents");
    expect(eventGridProblems(templates, indexTs)).toEqual([]);
    const broken = mutate(templates, "infra/modules/eventgrid.bicep", (t) =>
      t.replace("/functions/keyVaultEvents", "/functions/vaultEvents"),
    );
    expect(eventGridProblems(broken, indexTs).join("\n")).toMatch(/delivers to vaultEvents/);
  });

  it("no key is written into ARM except the function key the user chooses for the alert webhook", () => {
    const keyUses = (t: Templates) =>
      [...t].flatMap(([file, text]) => [...text.matchAll(/list(Keys|Secrets)\(/g)].map(() => file));
    expect(keyUses(templates)).toEqual(["infra/modules/alerts.bicep"]);
    // Only on the function-key branch: with entra the URL carries no key.
    expect(templates.get("infra/modules/alerts.bicep")).toMatch(
      /webhookUrl = alertAuth == 'entra'\s*\? 'https:\/\/\$\{site\.properties\.defaultHostName\}\/api\/alerts'\s*: '[^']*listKeys/,
    );
    // Event Grid fetches the extension key itself for an AzureFunction destination.
    expect(templates.get("infra/modules/eventgrid.bicep")).toMatch(/endpointType: 'AzureFunction'/);
    const leaked = mutate(templates, "infra/modules/eventgrid.bicep", (t) =>
      t.replace(
        "maxEventsPerBatch: 1",
        "maxEventsPerBatch: 1\n        key: listKeys(resourceId('Microsoft.Web/sites/host', functionAppName, 'default'), '2024-04-01').systemKeys.eventgrid_extension",
      ),
    );
    expect(keyUses(leaked)).toContain("infra/modules/eventgrid.bicep");
  });

  it("the alert webhook calls the alerts function's route", () => {
    expect(indexTs).toMatch(/df\.app\.client\.http\("alerts", \{\s*route: "alerts"/);
    expect(templates.get("infra/modules/alerts.bicep")).toContain("/api/alerts");
  });

  it("cloud-init's placeholders are exactly the ones spire-vm.bicep replaces", () => {
    expect(placeholderProblems(templates, cloudInit)).toEqual([]);
    expect(placeholderProblems(templates, `${cloudInit}\n# __NEW_ONE__`).join("\n")).toMatch(
      /__NEW_ONE__ is never replaced/,
    );
    const broken = mutate(templates, "infra/modules/spire-vm.bicep", (t) =>
      t.replace("'__ADMIN_SPIFFE_ID__'", "'__ADMIN_ID__'"),
    );
    expect(placeholderProblems(broken, cloudInit).join("\n")).toMatch(
      /__ADMIN_SPIFFE_ID__ is never replaced/,
    );
  });

  it("the SPIRE server logs DEBUG JSON to syslog as the process the product's queries read, with its data on the data disk", () => {
    const kql = read("shared/kql/workload-svid-signed.kql");
    const process = /ProcessName == "([^"]+)"/.exec(kql)?.[1];
    expect(process).toBe("spire-server");
    expect(cloudInit).toContain(`--log-driver syslog --log-opt tag=${process}`);
    expect(cloudInit).toMatch(/log_level = "DEBUG"/);
    expect(cloudInit).toMatch(/log_format = "json"/);
    expect(cloudInit).toMatch(/admin_ids = \["__ADMIN_SPIFFE_ID__"\]/);
    expect(cloudInit).toMatch(/data_dir = "\/opt\/spire\/data\/server"/);
    expect(cloudInit).toMatch(/LABEL=spire-data, \/opt\/spire\/data,/);
    expect(cloudInit).toMatch(/--name spire-server /);
    expect(cloudInit).not.toMatch(/insecure_bootstrap/);
  });

  it("the VM runs the SPIRE version the tests run, with the image's own entrypoint", () => {
    const pinned = (JSON.parse(read("scripts/spire-version.json")) as { version: string }).version;
    expect(templates.get("infra/modules/spire-vm.bicep")).toContain(
      `param spireVersion string = '${pinned}'`,
    );
    // The image's entrypoint is `spire-server run`: the container takes only the flags.
    expect(cloudInit).toMatch(/spire-server:__SPIRE_VERSION__\n\s+-config /);
  });

  it("the admin SPIFFE ID defaults to the product's own default", () => {
    const main = templates.get("infra/main.bicep") ?? "";
    expect(main).toMatch(/'spiffe:\/\/\$\{spireTrustDomain\}\/spire-autopilot\/admin'/);
    expect(read("shared/config/assemble.ts")).toMatch(
      /`spiffe:\/\/\$\{v\.SPIRE_TRUST_DOMAIN\}\/spire-autopilot\/admin`/,
    );
  });

  it("every parameter of main.bicep says what it is", () => {
    const undocumented = (text: string) =>
      [...text.matchAll(/^(?:@[^\n]*\n)*param (\w+)/gm)]
        .filter((m) => !m[0].includes("@description("))
        .map((m) => m[1]);
    expect(undocumented(templates.get("infra/main.bicep") ?? "")).toEqual([]);
    expect(undocumented("@description('x')\nparam a string\nparam b string\n")).toEqual(["b"]);
  });

  it("main.parameters.json gives every parameter without a default, and only real ones", () => {
    const json = read("infra/main.parameters.json");
    expect(parameterProblems(parser, templates, json)).toEqual([]);
    const broken = mutate(templates, "infra/main.bicep", (t) =>
      t.replace("param appsResourceGroupName string", "param appsResourceGroup string"),
    );
    expect(parameterProblems(parser, broken, json).join("\n")).toMatch(
      /lacks appsResourceGroup[\s\S]*unknown appsResourceGroupName/,
    );
  });

  it("the NSG opens the API port only to the Function App subnet and the agents", () => {
    expect(nsgProblems(templates)).toEqual([]);
    const open = mutate(templates, "infra/modules/spire-vm.bicep", (t) =>
      t.replace("sourceAddressPrefix: functionSubnetPrefix", "sourceAddressPrefix: '*'"),
    );
    expect(nsgProblems(open).join("\n")).toMatch(/not opened to the Function App subnet|broad source/);
  });

  it.each([
    ["storage.bicep", "allowSharedKeyAccess: false", "allowSharedKeyAccess: true", /shared keys/],
    ["keyvault.bicep", "enablePurgeProtection: true", "enablePurgeProtection: false", /purge protection/],
    ["keyvault.bicep", "enableRbacAuthorization: true", "enableRbacAuthorization: false", /RBAC/],
    ["functionapp.bicep", "version: '22'", "version: '20'", /node 22/],
    ["functionapp.bicep", "name: 'FC1'", "name: 'Y1'", /FC1/],
    [
      "functionapp.bicep",
      "AzureWebJobsStorage__credential: 'managedidentity'",
      "AzureWebJobsStorage: 'DefaultEndpointsProtocol=https;AccountName=x;AccountKey=y'",
      /secret in its app settings/,
    ],
    [
      "functionapp.bicep",
      "output url string =",
      "output key string = listKeys(site.id, '2024-04-01')\noutput url string =",
      /exposes a secret/,
    ],
  ])("hardening holds, and fails when %s gets %s → %s", (file, from, to, expected) => {
    expect(hardeningProblems(parser, templates)).toEqual([]);
    const broken = mutate(templates, `infra/modules/${file}`, (t) => t.replace(from, to));
    expect(hardeningProblems(parser, broken).join("\n")).toMatch(expected);
  });
});
