/** The alert rules: shared/kql's definitions and queries, loaded by the template, not copied. */
import { readFileSync } from "node:fs";
import { join, posix } from "node:path";
import type { Node, Parser } from "web-tree-sitter";
import { declarations, kids, objectProps, ROOT, stringValue, type Templates } from "./bicep.js";

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
