/** Resource types, API versions and properties against facts read from Microsoft's published specs. */
import { dirname } from "node:path";
import type { Parser } from "web-tree-sitter";
import { declarations, objectProps, type Templates } from "./bicep.js";

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
