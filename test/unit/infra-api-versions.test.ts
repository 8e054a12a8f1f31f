import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { Parser } from "web-tree-sitter";
import { type ApiFact, apiProblems, usedTypes } from "./infra/api-check.js";
import { bicepParser, loadTemplates, mutate } from "./infra/bicep.js";

const { facts } = JSON.parse(
  readFileSync(join(import.meta.dirname, "infra-fixtures/api-versions.json"), "utf8"),
) as {
  facts: ApiFact[];
};

const templates = loadTemplates();
let parser: Parser;
beforeAll(async () => {
  parser = await bicepParser();
});

describe("every resource type and API version used is in Microsoft's published specs", () => {
  it("every type@version the templates use is a fact with its spec file", () => {
    expect(apiProblems(parser, templates, facts)).toEqual([]);
  });

  it("sees the templates' resources, existing ones included", () => {
    const used = usedTypes(parser, templates).map((u) => `${u.type}@${u.apiVersion}`);
    expect(used).toEqual(
      expect.arrayContaining(["Microsoft.Web/sites@2024-04-01", "Microsoft.KeyVault/vaults@2022-07-01"]),
    );
    expect(used.length).toBeGreaterThan(20);
  });

  it.each([
    [
      "an API version that was never published",
      "infra/modules/keyvault.bicep",
      (t: string) => t.replace("vaults@2022-07-01", "vaults@2099-01-01"),
    ],
    [
      "a misspelt resource type",
      "infra/modules/storage.bicep",
      (t: string) => t.replace("Microsoft.Storage/storageAccounts@", "Microsoft.Storage/storageAccount@"),
    ],
  ])("fails on %s, naming file:line", (_what, path, edit) => {
    const problems = apiProblems(parser, mutate(templates, path, edit), facts);
    expect(problems.join("\n")).toMatch(
      new RegExp(`^${path.replace(/\./g, "\\.")}:\\d+: .* is not in the published-spec fixture`, "m"),
    );
  });

  it("fails on a property the spec does not define", () => {
    const broken = mutate(templates, "infra/modules/keyvault.bicep", (t) =>
      t.replace("enablePurgeProtection: true", "enablePurgeProtections: true"),
    );
    expect(apiProblems(parser, broken, facts).join("\n")).toMatch(
      /keyvault\.bicep:\d+: Microsoft\.KeyVault\/vaults@2022-07-01 has no property enablePurgeProtections/,
    );
  });

  it("fails on a fact citing a spec of another version", () => {
    const wrong = facts.map((f) =>
      f.type === "Microsoft.Web/sites" ? { ...f, spec: f.spec.replace("2024-04-01", "2023-12-01") } : f,
    );
    expect(apiProblems(parser, templates, wrong).join("\n")).toMatch(
      /Microsoft\.Web\/sites@2024-04-01 cites/,
    );
  });
});
