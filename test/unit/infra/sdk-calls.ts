/** The Azure SDK calls the product code makes, and the Event Grid triggers it registers. */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { ROOT } from "./bicep.js";

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

/** Names of the Event Grid triggers functions/index.ts registers. */
export function eventGridFunctions(indexTs: string): string[] {
  return [...indexTs.matchAll(/\.eventGrid\(\s*"([^"]+)"/g)].map((m) => m[1] ?? "");
}
