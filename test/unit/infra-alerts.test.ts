import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { Parser } from "web-tree-sitter";
import { ALERTS, type AlertSources, alertProblems } from "./infra/alerts-check.js";
import { bicepParser, loadTemplates, mutate, ROOT } from "./infra/bicep.js";

const sources: AlertSources = {
  rules: JSON.parse(readFileSync(join(ROOT, "shared/kql/alert-rules.json"), "utf8")),
};

const templates = loadTemplates();
let parser: Parser;
beforeAll(async () => {
  parser = await bicepParser();
});

describe("the alert rules are shared/kql's, loaded, not copied", () => {
  it("has a rule to check", () => {
    expect(sources.rules.length).toBeGreaterThan(0);
  });

  it("loads alert-rules.json and each rule's .kql, split by ContainerAppName, common alert schema", () => {
    expect(alertProblems(parser, templates, sources)).toEqual([]);
  });

  it.each([
    [
      "a query pasted inline",
      (t: string) =>
        t.replace(/loadTextContent\('[^']+'\)/, "'ContainerAppConsoleLogs | where Log has \"x\"'"),
      /inline KQL|must be loadTextContent/,
    ],
    [
      "a query loaded from another file",
      (t: string) =>
        t.replace("shared/kql/agent-attestation-failures.kql", "shared/kql/workload-svid-signed.kql"),
      /query agent-attestation-failures must be loadTextContent/,
    ],
    [
      "the rules typed in instead of loaded",
      (t: string) => t.replace(/loadJsonContent\('[^']+'\)/, "[]"),
      /loadJsonContent of shared\/kql\/alert-rules\.json/,
    ],
    [
      "a rule's query not taken from its queryFile",
      (t: string) => t.replace("queries[c.queryFile]", "queries['agent-attestation-failures']"),
      /queries\[<criterion>\.queryFile\]/,
    ],
    [
      "the dimensions dropped",
      (t: string) => t.replace("dimensions: c.dimensions", "dimensions: []"),
      /dimensions are not taken/,
    ],
    [
      "the common alert schema off",
      (t: string) => t.replace("useCommonAlertSchema: true", "useCommonAlertSchema: false"),
      /common alert schema/,
    ],
  ])("fails on %s", (_what, edit, expected) => {
    expect(alertProblems(parser, mutate(templates, ALERTS, edit), sources).join("\n")).toMatch(expected);
  });

  it("fails when a rule names a query the template does not load", () => {
    const first = sources.rules[0]!;
    const extra = {
      ...first,
      name: "x",
      criteria: { allOf: [{ ...first.criteria.allOf[0]!, queryFile: "workload-svid-signed" }] },
    };
    expect(alertProblems(parser, templates, { rules: [...sources.rules, extra] }).join("\n")).toMatch(
      /rule x names workload-svid-signed, which queries lacks/,
    );
  });

  it("fails when a rule is not split by ContainerAppName", () => {
    const first = sources.rules[0]!;
    const flat = { ...first, criteria: { allOf: [{ ...first.criteria.allOf[0]!, dimensions: [] }] } };
    expect(alertProblems(parser, templates, { rules: [flat] }).join("\n")).toMatch(
      /not split by ContainerAppName/,
    );
  });
});
