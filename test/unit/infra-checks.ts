/**
 * Checks of the Bicep templates in infra/ that run where no Bicep CLI can: every file is parsed
 * with tree-sitter-bicep (a real Bicep grammar, as wasm), and the syntax trees are cross-checked
 * against the code they deploy. Each check takes the templates as a map of path → text, so a test
 * can break a copy in memory and see the check fail. Test-only; product code never imports it.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, posix, relative, resolve } from "node:path";
import { Language, type Node, Parser } from "web-tree-sitter";

export const ROOT = resolve(import.meta.dirname, "../..");
const INFRA = join(ROOT, "infra");

/** Repo-relative path (posix) → file text. */
export type Templates = Map<string, string>;

export function loadTemplates(): Templates {
  const out: Templates = new Map();
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.name.endsWith(".bicep"))
        out.set(relative(ROOT, full).split("\\").join("/"), readFileSync(full, "utf8"));
    }
  };
  walk(INFRA);
  return out;
}

/** A copy of the templates with one file's text changed by `edit` (which must change it). */
export function mutate(templates: Templates, path: string, edit: (text: string) => string): Templates {
  const before = templates.get(path);
  if (before === undefined) throw new Error(`no template ${path}`);
  const after = edit(before);
  if (after === before) throw new Error(`the edit did not change ${path}`);
  return new Map(templates).set(path, after);
}

let parserPromise: Promise<Parser> | undefined;

export function bicepParser(): Promise<Parser> {
  parserPromise ??= (async () => {
    await Parser.init();
    const lang = await Language.load(join(ROOT, "node_modules/tree-sitter-bicep/tree-sitter-bicep.wasm"));
    const parser = new Parser();
    parser.setLanguage(lang);
    return parser;
  })();
  return parserPromise;
}

export function parse(parser: Parser, text: string): Node {
  const tree = parser.parse(text);
  if (tree === null) throw new Error("the parser returned no tree");
  return tree.rootNode;
}

// ---------------------------------------------------------------- syntax

/** "file:line: message" for every ERROR or MISSING node of every template. */
export function syntaxErrors(parser: Parser, templates: Templates): string[] {
  const problems: string[] = [];
  for (const [path, text] of templates) {
    const root = parse(parser, text);
    if (!root.hasError) continue;
    const walk = (n: Node): void => {
      if (n.isError || n.isMissing) {
        const what = n.isMissing ? `missing ${n.type}` : `unexpected ${JSON.stringify(n.text.slice(0, 40))}`;
        problems.push(`${path}:${n.startPosition.row + 1}: syntax error, ${what}`);
        return;
      }
      if (n.hasError) for (const c of n.children) if (c) walk(c);
    };
    walk(root);
    // hasError with no ERROR/MISSING node found still fails, naming the file.
    if (!problems.some((p) => p.startsWith(`${path}:`))) problems.push(`${path}:1: syntax error`);
  }
  return problems;
}

// ---------------------------------------------------------------- tree helpers

const kids = (n: Node): Node[] => n.namedChildren.filter((c): c is Node => c !== null);

/** The text of a string literal without interpolation, else undefined. */
export function stringValue(n: Node | undefined): string | undefined {
  if (n?.type !== "string") return undefined;
  const parts = kids(n);
  if (parts.some((p) => p.type !== "string_content" && p.type !== "escape_sequence")) return undefined;
  return parts.map((p) => p.text).join("");
}

/** An object's properties by key (identifier or quoted key). */
export function objectProps(obj: Node | undefined): Map<string, Node> {
  const props = new Map<string, Node>();
  if (obj?.type !== "object") return props;
  for (const p of kids(obj)) {
    if (p.type !== "object_property") continue;
    const [key, value] = kids(p);
    if (!key || !value) continue;
    const name = key.type === "string" ? stringValue(key) : key.text;
    if (name !== undefined) props.set(name, value);
  }
  return props;
}

export interface Declaration {
  file: string;
  kind: "resource" | "module" | "variable";
  symbol: string;
  /** Resource type@version or module path or undefined for variables. */
  target?: string;
  existing: boolean;
  /** The body object (through `if (...)` and `[for ...: ...]`). */
  body?: Node;
  /** Scope text of a module (`scope: ...`), or of a resource. */
  scopeText?: string;
  line: number;
  /** The comment lines right above the declaration. */
  comment: string;
  value?: Node;
}

function bodyOf(n: Node): Node | undefined {
  for (const c of kids(n)) {
    if (c.type === "object") return c;
    if (c.type === "if_statement" || c.type === "for_statement") return bodyOf(c);
  }
  return undefined;
}

function commentAbove(n: Node): string {
  const lines: string[] = [];
  let prev = n.previousNamedSibling;
  let row = n.startPosition.row;
  while (prev && prev.type === "comment" && prev.endPosition.row >= row - 1) {
    lines.unshift(prev.text);
    row = prev.startPosition.row;
    prev = prev.previousNamedSibling;
  }
  return lines.join("\n");
}

export function declarations(parser: Parser, templates: Templates): Declaration[] {
  const out: Declaration[] = [];
  for (const [file, text] of templates) {
    const root = parse(parser, text);
    for (const n of kids(root)) {
      const kind =
        n.type === "resource_declaration"
          ? "resource"
          : n.type === "module_declaration"
            ? "module"
            : n.type === "variable_declaration"
              ? "variable"
              : undefined;
      if (!kind) continue;
      const [id, second] = kids(n);
      if (!id) continue;
      const body = kind === "variable" ? undefined : bodyOf(n);
      const scope = objectProps(body).get("scope");
      out.push({
        file,
        kind,
        symbol: id.text,
        ...(kind !== "variable" && { target: stringValue(second) }),
        existing: kind === "resource" && /\bexisting\s*=/.test(n.text.split("\n")[0] ?? ""),
        ...(body && { body }),
        ...(scope && { scopeText: scope.text }),
        line: n.startPosition.row + 1,
        comment: commentAbove(n),
        ...(kind === "variable" && second && { value: second }),
      });
    }
  }
  return out;
}

// ---------------------------------------------------------------- app settings

export interface SettingsSpec {
  /** Every name the config table knows, with its presence. */
  table: ReadonlyArray<{ name: string; presence: "required" | "default" | "optional" }>;
  /** Settings the Functions host (not the product's config) reads. */
  hostKnown: readonly string[];
}

export const FUNCTION_APP = "infra/modules/functionapp.bicep";

export function appSettingNames(parser: Parser, templates: Templates): { product: string[]; host: string[] } {
  const vars = declarations(parser, new Map([[FUNCTION_APP, templates.get(FUNCTION_APP) ?? ""]]));
  const keysOf = (name: string) => [...objectProps(vars.find((d) => d.symbol === name)?.value).keys()];
  return { product: keysOf("productSettings"), host: keysOf("hostSettings") };
}

export function settingsProblems(parser: Parser, templates: Templates, spec: SettingsSpec): string[] {
  const problems: string[] = [];
  const { product, host } = appSettingNames(parser, templates);
  if (product.length === 0) problems.push(`${FUNCTION_APP}: no productSettings object found`);
  const known = new Map(spec.table.map((s) => [s.name, s.presence]));
  for (const s of spec.table) {
    if (s.presence === "required" && !product.includes(s.name)) {
      problems.push(`${FUNCTION_APP}: required setting ${s.name} is not set on the Function App`);
    }
  }
  for (const name of product) {
    if (!known.has(name))
      problems.push(`${FUNCTION_APP}: ${name} is not a setting of shared/config/settings.ts`);
  }
  for (const name of host) {
    if (!spec.hostKnown.includes(name))
      problems.push(`${FUNCTION_APP}: host setting ${name} is not one the host reads`);
    if (known.has(name)) problems.push(`${FUNCTION_APP}: ${name} belongs in productSettings`);
  }
  // The product's settings must reach the site: the appSettings built from both objects.
  const text = templates.get(FUNCTION_APP) ?? "";
  if (!/union\(productSettings,\s*hostSettings\)/.test(text) || !/appSettings:\s*appSettings/.test(text)) {
    problems.push(
      `${FUNCTION_APP}: siteConfig.appSettings is not built from productSettings and hostSettings`,
    );
  }
  return problems;
}

// ---------------------------------------------------------------- role assignments

export interface RoleFact {
  api: string;
  action: string;
  role: string;
  /** Built-in role definition id, or absent for the template's custom role. */
  roleId?: string;
  /** The module holding the assignment. */
  module: string;
  /** Type of the resource the assignment is scoped to; "resourceGroup" for the module's group. */
  scopeType: string;
  /** The scope main.bicep deploys that module to, when it matters. */
  mainScope?: string;
  source: string;
}

export interface Assignment {
  file: string;
  symbol: string;
  line: number;
  roleId?: string;
  /** Actions of the custom role definition it assigns. */
  customActions?: string[];
  scopeType: string;
  comment: string;
}

const GUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

export function roleAssignments(parser: Parser, templates: Templates): Assignment[] {
  const decls = declarations(parser, templates);
  const out: Assignment[] = [];
  for (const d of decls) {
    if (
      d.kind !== "resource" ||
      d.existing ||
      !d.target?.startsWith("Microsoft.Authorization/roleAssignments@")
    )
      continue;
    const inFile = decls.filter((x) => x.file === d.file);
    const scopeSymbol = objectProps(d.body).get("scope")?.text;
    const scoped = scopeSymbol ? inFile.find((x) => x.symbol === scopeSymbol) : undefined;
    const scopeType = scopeSymbol
      ? (scoped?.target?.split("@")[0] ?? `unknown scope ${scopeSymbol}`)
      : "resourceGroup";
    const roleDef = objectProps(objectProps(d.body).get("properties")).get("roleDefinitionId")?.text ?? "";
    const guid = GUID.exec(roleDef)?.[0];
    let customActions: string[] | undefined;
    const custom = /^(\w+)\.id$/.exec(roleDef)?.[1];
    if (custom) {
      const def = inFile.find((x) => x.symbol === custom);
      const perms = objectProps(def?.body).get("properties");
      customActions = (def?.body?.text.match(/'Microsoft\.[^']+'/g) ?? []).map((s) => s.slice(1, -1));
      if (!perms) customActions = [];
    }
    out.push({
      file: d.file,
      symbol: d.symbol,
      line: d.line,
      ...(guid && { roleId: guid.toLowerCase() }),
      ...(customActions && { customActions }),
      scopeType,
      comment: d.comment,
    });
  }
  return out;
}

/** Roles far broader than any API the product calls needs. */
export const FORBIDDEN_ROLES: Record<string, string> = {
  "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
  "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
  "9980e02c-c2be-4d73-94e8-173b1dc7cf3c": "Virtual Machine Contributor",
  "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
  "00482a5a-887f-4fb3-b363-3b7fe8e74483": "Key Vault Administrator",
};

export function rolesProblems(parser: Parser, templates: Templates, facts: readonly RoleFact[]): string[] {
  const problems: string[] = [];
  const assignments = roleAssignments(parser, templates);
  const modules = declarations(parser, templates).filter(
    (d) => d.kind === "module" && d.file === "infra/main.bicep",
  );
  for (const f of facts) {
    const file = `infra/modules/${f.module}`;
    const match = assignments.find(
      (a) =>
        a.file === file &&
        a.scopeType === f.scopeType &&
        (f.roleId ? a.roleId === f.roleId.toLowerCase() : (a.customActions ?? []).includes(f.action)),
    );
    if (!match) {
      problems.push(
        `${f.api} needs ${f.action} (${f.role}) on ${f.scopeType} in ${file}: no such role assignment`,
      );
      continue;
    }
    if (f.mainScope !== undefined) {
      const m = modules.find((d) => d.target === `modules/${f.module}`);
      if (!m) problems.push(`infra/main.bicep: module ${f.module} is not deployed`);
      else if ((m.scopeText ?? "").replace(/\s+/g, "") !== f.mainScope.replace(/\s+/g, "")) {
        problems.push(
          `infra/main.bicep:${m.line}: ${f.module} is deployed to ${m.scopeText ?? "(no scope)"}, ${f.api} needs ${f.mainScope}`,
        );
      }
    }
  }
  for (const a of assignments) {
    const where = `${a.file}:${a.line}`;
    if (a.roleId && FORBIDDEN_ROLES[a.roleId])
      problems.push(`${where}: ${FORBIDDEN_ROLES[a.roleId]} is broader than needed`);
    const explained = facts.some(
      (f) =>
        `infra/modules/${f.module}` === a.file &&
        f.scopeType === a.scopeType &&
        (f.roleId ? f.roleId.toLowerCase() === a.roleId : (a.customActions ?? []).includes(f.action)),
    );
    if (!explained)
      problems.push(`${where}: role assignment ${a.symbol} is not needed by any API in the fixture`);
    if (a.comment.replace(/^\s*\/\/\s*/gm, "").trim().length < 20) {
      problems.push(`${where}: role assignment ${a.symbol} has no comment saying why it exists`);
    }
    if (a.customActions) {
      const needed = new Set(
        facts.filter((f) => !f.roleId && `infra/modules/${f.module}` === a.file).map((f) => f.action),
      );
      for (const action of a.customActions) {
        if (!needed.has(action)) problems.push(`${where}: custom role grants ${action}, which no API needs`);
      }
    }
  }
  return problems;
}

// ---------------------------------------------------------------- alert rules

export const ALERTS = "infra/modules/alerts.bicep";

interface LoadCall {
  fn: string;
  path: string;
}

function loadCall(n: Node | undefined): LoadCall | undefined {
  if (n?.type !== "call_expression") return undefined;
  const fn = n.childForFieldName("function")?.text ?? "";
  const arg = kids(n.childForFieldName("arguments") ?? n)[0];
  const path = stringValue(arg);
  return path === undefined ? undefined : { fn, path };
}

export interface AlertSources {
  /** The rule definitions (shared/kql/alert-rules.json, parsed). */
  rules: ReadonlyArray<{
    name: string;
    criteria: { allOf: ReadonlyArray<{ queryFile: string; dimensions?: unknown }> };
  }>;
}

export function alertProblems(parser: Parser, templates: Templates, sources: AlertSources): string[] {
  const problems: string[] = [];
  const text = templates.get(ALERTS) ?? "";
  const decls = declarations(parser, new Map([[ALERTS, text]]));
  const resolveFrom = (p: string) => posix.normalize(posix.join(posix.dirname(ALERTS), p));
  const rulesVar = loadCall(decls.find((d) => d.symbol === "rules")?.value);
  if (rulesVar?.fn !== "loadJsonContent" || resolveFrom(rulesVar.path) !== "shared/kql/alert-rules.json") {
    problems.push(`${ALERTS}: var rules must be loadJsonContent of shared/kql/alert-rules.json`);
  }
  const queries = objectProps(decls.find((d) => d.symbol === "queries")?.value);
  for (const [name, value] of queries) {
    const call = loadCall(value);
    if (call?.fn !== "loadTextContent" || resolveFrom(call.path) !== `shared/kql/${name}.kql`) {
      problems.push(`${ALERTS}: query ${name} must be loadTextContent of shared/kql/${name}.kql`);
    } else {
      try {
        readFileSync(join(ROOT, resolveFrom(call.path)));
      } catch {
        problems.push(`${ALERTS}: ${resolveFrom(call.path)} does not exist`);
      }
    }
  }
  for (const rule of sources.rules) {
    for (const c of rule.criteria.allOf) {
      if (!queries.has(c.queryFile))
        problems.push(`${ALERTS}: rule ${rule.name} names ${c.queryFile}, which queries lacks`);
      if (!JSON.stringify(c.dimensions ?? []).includes('"ContainerAppName"')) {
        problems.push(`alert rule ${rule.name} is not split by ContainerAppName`);
      }
    }
  }
  const ruleRes = decls.find((d) => d.target?.startsWith("Microsoft.Insights/scheduledQueryRules@"));
  if (!ruleRes) problems.push(`${ALERTS}: no scheduledQueryRules resource`);
  else {
    const loop = /=\s*\[\s*for\s+(\w+)\s+in\s+rules\s*:/.exec(text);
    if (!loop) problems.push(`${ALERTS}: the alert rules are not one per entry of rules`);
    if (!/query:\s*queries\[\s*\w+\.queryFile\s*\]/.test(ruleRes.body?.text ?? "")) {
      problems.push(`${ALERTS}: a rule's query is not taken from queries[<criterion>.queryFile]`);
    }
    if (!/dimensions:\s*\w+\.dimensions/.test(ruleRes.body?.text ?? "")) {
      problems.push(`${ALERTS}: a rule's dimensions are not taken from alert-rules.json`);
    }
  }
  // No query text of its own: a KQL pipe in a template string means a second source of truth.
  for (const [path, t] of templates) {
    if (/'[^'\n]*\|\s*(where|summarize|project)\b/.test(t))
      problems.push(`${path}: inline KQL; load it from shared/kql`);
  }
  const group = decls.find((d) => d.target?.startsWith("Microsoft.Insights/actionGroups@"));
  if (!/useCommonAlertSchema:\s*true/.test(group?.body?.text ?? "")) {
    problems.push(`${ALERTS}: the action group's webhook does not use the common alert schema`);
  }
  if (!/\/api\/alerts\b/.test(group ? text : ""))
    problems.push(`${ALERTS}: the webhook does not call /api/alerts`);
  return problems;
}

// ---------------------------------------------------------------- resource types and API versions

export interface ApiFact {
  type: string;
  apiVersion: string;
  /** File in Azure/azure-rest-api-specs that defines it. */
  spec: string;
  /** Properties the templates rely on, as named in that spec. */
  properties?: string[];
}

export interface UsedType {
  file: string;
  line: number;
  type: string;
  apiVersion: string;
}

export function usedTypes(parser: Parser, templates: Templates): UsedType[] {
  return declarations(parser, templates)
    .filter((d) => d.kind === "resource" && d.target?.includes("@"))
    .map((d) => {
      const [type = "", apiVersion = ""] = (d.target ?? "").split("@");
      return { file: d.file, line: d.line, type, apiVersion };
    });
}

export function apiProblems(parser: Parser, templates: Templates, facts: readonly ApiFact[]): string[] {
  const problems: string[] = [];
  for (const u of usedTypes(parser, templates)) {
    const fact = facts.find(
      (f) => f.type.toLowerCase() === u.type.toLowerCase() && f.apiVersion === u.apiVersion,
    );
    if (!fact)
      problems.push(`${u.file}:${u.line}: ${u.type}@${u.apiVersion} is not in the published-spec fixture`);
  }
  // Where the fixture lists a type's properties (read from its spec), the templates use no others.
  for (const d of declarations(parser, templates)) {
    if (d.kind !== "resource" || d.existing || !d.target) continue;
    const [type = "", apiVersion = ""] = d.target.split("@");
    const fact = facts.find(
      (f) => f.type.toLowerCase() === type.toLowerCase() && f.apiVersion === apiVersion,
    );
    if (!fact?.properties) continue;
    for (const key of objectProps(objectProps(d.body).get("properties")).keys()) {
      if (!fact.properties.includes(key)) {
        problems.push(`${d.file}:${d.line}: ${type}@${apiVersion} has no property ${key} in ${fact.spec}`);
      }
    }
  }
  for (const f of facts) {
    const dir = dirname(f.spec);
    if (!f.spec.startsWith("specification/") || !dir.endsWith(`/stable/${f.apiVersion}`)) {
      problems.push(`fixture: ${f.type}@${f.apiVersion} cites ${f.spec}, not a stable ${f.apiVersion} spec`);
    }
  }
  return problems;
}

/** Names of the Event Grid triggers functions/index.ts registers. */
export function eventGridFunctions(indexTs: string): string[] {
  return [...indexTs.matchAll(/\.eventGrid\(\s*"([^"]+)"/g)].map((m) => m[1] ?? "");
}

// ---------------------------------------------------------------- the Azure calls in the code

/** ARM operation groups of @azure/arm-appcontainers and @azure/arm-compute the product may call. */
const ARM_GROUPS = [
  "containerApps",
  "containerAppsRevisions",
  "containerAppsRevisionReplicas",
  "managedEnvironments",
  "virtualMachines",
  "virtualMachineRunCommands",
  "virtualMachineExtensions",
  "disks",
];

/** Data-plane SDK methods (Key Vault, Logs, Tables, Blobs) with names no other code uses. */
const DATA_METHODS = [
  "getSecret",
  "setSecret",
  "listPropertiesOfSecretVersions",
  "listPropertiesOfSecrets",
  "beginDeleteSecret",
  "updateSecretProperties",
  "queryWorkspace",
  "queryBatch",
  "queryResource",
  "createTable",
  "deleteTable",
  "upsertEntity",
  "getEntity",
  "listEntities",
  "deleteEntity",
  "updateEntity",
  "createEntity",
  "submitTransaction",
  "acquireLease",
  "renewLease",
  "releaseLease",
  "breakLease",
  "changeLease",
  "upload",
  "uploadData",
  "appendBlock",
  "downloadToBuffer",
  "deleteIfExists",
  "createIfNotExists",
  "getUserDelegationKey",
  "generateSasUrl",
];

/** Product source files (never sandbox/ or test/): path → text. */
export function productSources(): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.name.endsWith(".ts"))
        out.set(relative(ROOT, full).split("\\").join("/"), readFileSync(full, "utf8"));
    }
  };
  for (const d of ["shared", "activities", "functions", "orchestrations"]) walk(join(ROOT, d));
  return out;
}

/**
 * The Azure SDK calls in the sources: "group.method" for ARM operation groups (also through a
 * `const x = <...>.group;` alias), the bare method name for data-plane clients. → files calling it.
 */
export function sdkCalls(sources: Map<string, string>): Map<string, string[]> {
  const found = new Map<string, Set<string>>();
  const add = (call: string, file: string) => {
    const files = found.get(call) ?? new Set<string>();
    files.add(file);
    found.set(call, files);
  };
  const generic = "(?:<[^()]*>)?\\(";
  for (const [file, text] of sources) {
    for (const m of text.matchAll(new RegExp(`\\.(\\w+)\\.(\\w+)${generic}`, "g"))) {
      if (ARM_GROUPS.includes(m[1] ?? "")) add(`${m[1]}.${m[2]}`, file);
    }
    for (const a of text.matchAll(/const (\w+) = [\w.]*\.(\w+);/g)) {
      const [, alias = "", group = ""] = a;
      if (!ARM_GROUPS.includes(group)) continue;
      for (const m of text.matchAll(new RegExp(`\\b${alias}\\.(\\w+)${generic}`, "g")))
        add(`${group}.${m[1]}`, file);
    }
    for (const m of text.matchAll(new RegExp(`\\.(\\w+)${generic}`, "g"))) {
      if (DATA_METHODS.includes(m[1] ?? "")) add(m[1] ?? "", file);
    }
  }
  return new Map([...found].map(([k, v]) => [k, [...v].sort()]));
}

/** Calls in the code that no role fact accounts for. */
export function uncoveredCalls(
  calls: Map<string, string[]>,
  facts: ReadonlyArray<{ calls?: string[] }>,
): string[] {
  const covered = new Set(facts.flatMap((f) => f.calls ?? []));
  return [...calls]
    .filter(([call]) => !covered.has(call))
    .map(
      ([call, files]) =>
        `${call} (${files.join(", ")}) has no role fact in test/unit/infra-fixtures/role-facts.json`,
    );
}
