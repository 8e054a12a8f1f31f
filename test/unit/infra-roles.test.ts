import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { Parser } from "web-tree-sitter";
import { bicepParser, loadTemplates, mutate } from "./infra/bicep.js";
import { type RoleFact, roleAssignments, rolesProblems } from "./infra/roles-check.js";
import { productSources, sdkCalls, uncoveredCalls } from "./infra/sdk-calls.js";

const { facts } = JSON.parse(
  readFileSync(join(import.meta.dirname, "infra-fixtures/role-facts.json"), "utf8"),
) as {
  facts: Array<RoleFact & { calls?: string[] }>;
};

const templates = loadTemplates();
let parser: Parser;
beforeAll(async () => {
  parser = await bicepParser();
});

describe("role assignments: every API the product calls is granted, at the narrowest scope, and nothing more", () => {
  it("the fixture cites a source for every fact", () => {
    for (const f of facts) expect(f.source, f.api).toMatch(/^https:\/\/learn\.microsoft\.com\//);
  });

  it("covers every fact and grants nothing unexplained", () => {
    expect(rolesProblems(parser, templates, facts)).toEqual([]);
  });

  it("finds each assignment with its scope", () => {
    const found = roleAssignments(parser, templates).map(
      (a) => `${a.file} ${a.scopeType} ${a.roleId ?? "custom"}`,
    );
    expect(found).toEqual(
      expect.arrayContaining([
        "infra/modules/roles-apps.bicep resourceGroup 358470bc-b998-42bd-ab17-a7e34c199c0f",
        "infra/modules/roles-vm.bicep Microsoft.Compute/virtualMachines custom",
        "infra/modules/roles-keyvault.bicep Microsoft.KeyVault/vaults b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
        "infra/modules/roles-workspace.bicep Microsoft.OperationalInsights/workspaces 73c42c96-874c-492b-b04d-ab87d138a893",
      ]),
    );
  });

  it.each([
    [
      "run-commands widened to Virtual Machine Contributor",
      "infra/modules/roles-vm.bicep",
      (t: string) =>
        t.replace(
          "runCommandsRole.id",
          "subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '9980e02c-c2be-4d73-94e8-173b1dc7cf3c')",
        ),
      /Virtual Machine Contributor is broader than needed/,
    ],
    [
      "the run-command role scoped to the resource group instead of the VM",
      "infra/modules/roles-vm.bicep",
      (t: string) => t.replace("  scope: vm\n", ""),
      /runCommands\/write .* on Microsoft\.Compute\/virtualMachines/,
    ],
    [
      "a custom role action no API needs",
      "infra/modules/roles-vm.bicep",
      (t: string) =>
        t.replace(
          "'Microsoft.Compute/virtualMachines/read'",
          "'Microsoft.Compute/virtualMachines/read'\n          'Microsoft.Compute/virtualMachines/delete'",
        ),
      /grants Microsoft\.Compute\/virtualMachines\/delete, which no API needs/,
    ],
    [
      "Container Apps granted on the wrong resource group",
      "infra/main.bicep",
      (t: string) => t.replace("scope: resourceGroup(appsResourceGroupName)", "scope: rg"),
      /roles-apps\.bicep is deployed to rg/,
    ],
    [
      "the Key Vault role removed",
      "infra/modules/roles-keyvault.bicep",
      (t: string) =>
        t.replace("b86a8fe4-44ce-4948-aee5-eccb2c155cd7", "4633458b-17de-408a-b874-0445c86b69e6"),
      /setSecret .* no such role assignment/,
    ],
    [
      "an assignment without a comment saying why",
      "infra/modules/roles-apps.bicep",
      (t: string) => t.replace(/\/\/ Re-attestation[\s\S]*?(?=resource containerApps)/, ""),
      /containerApps has no comment/,
    ],
    [
      "Owner on the vault",
      "infra/modules/roles-keyvault.bicep",
      (t: string) =>
        t.replace("b86a8fe4-44ce-4948-aee5-eccb2c155cd7", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"),
      /Owner is broader than needed/,
    ],
  ])("fails on %s", (_what, path, edit, expected) => {
    expect(rolesProblems(parser, mutate(templates, path, edit), facts).join("\n")).toMatch(expected);
  });
});

describe("the fixture accounts for every Azure call the product code makes", () => {
  const sources = productSources();
  const calls = sdkCalls(sources);

  it("finds the calls the product makes today", () => {
    expect([...calls.keys()]).toEqual(
      expect.arrayContaining([
        "containerApps.createOrUpdate",
        "containerApps.listSecrets",
        "virtualMachineRunCommands.createOrUpdate",
        "getSecret",
        "setSecret",
        "queryWorkspace",
        "upsertEntity",
        "getUserDelegationKey",
      ]),
    );
  });

  it("every call has a role fact", () => {
    expect(uncoveredCalls(calls, facts)).toEqual([]);
  });

  it.each([
    [
      "a new ARM call",
      "const app = await s.containerApps.containerApps.beginDelete(rg, name);",
      /containerApps\.beginDelete/,
    ],
    [
      "a call through an alias",
      "const rev = s.containerApps.containerAppsRevisions;\nawait rev.restartRevision(rg, a, r);",
      /containerAppsRevisions\.restartRevision/,
    ],
    ["a new data-plane call", "await secrets.beginDeleteSecret(name);", /beginDeleteSecret/],
  ])("fails on %s", (_what, code, expected) => {
    const grown = sdkCalls(new Map(sources).set("activities/new.ts", code));
    expect(uncoveredCalls(grown, facts).join("\n")).toMatch(expected);
  });
});
