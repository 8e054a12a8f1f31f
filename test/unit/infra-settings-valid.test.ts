import { beforeAll, describe, expect, it } from "vitest";
import type { Parser } from "web-tree-sitter";
import { loadConfig } from "../../shared/config.js";
import { bicepParser, declarations, loadTemplates, mutate, type Templates } from "./infra/bicep.js";
import { evaluateSettings, type Scope } from "./infra/evaluate.js";
import { FUNCTION_APP } from "./infra/settings-check.js";

/*
 * The settings the template gives the Function App, evaluated for each way it can be deployed,
 * must load with the product's own config validation: a combination the app would refuse at
 * start fails here instead of after `azd up`.
 */

const templates = loadTemplates();
let parser: Parser;
beforeAll(async () => {
  parser = await bicepParser();
});

const base: Record<string, string> = {
  spireTrustDomain: "aim.microsoft.com",
  spireApi: "grpc",
  spireServerAddress: "10.40.1.4:8081",
  adminSvidSecretName: "spire-admin-svid",
  spireAdminSpiffeId: "spiffe://aim.microsoft.com/spire-autopilot/admin",
  spireVmResourceGroup: "rg-spire",
  spireVmName: "vm-spire-server",
  identityClientId: "0d9b7a34-5e21-4f6a-8c3d-7e4b2a1f9c60",
  appsResourceGroup: "rg-agents",
  keyVaultUrl: "https://kv-spire-abc.vault.azure.net/",
  trustBundleSecretName: "spire-trust-bundle",
  logAnalyticsWorkspaceCustomerId: "3c8e1f52-9a07-4b6d-b2e4-5f0a9d7c1e38",
  alertAuth: "function-key",
  alertAudience: "",
};

function settingsFor(t: Templates, params: Record<string, string>): Record<string, string> {
  const scope: Scope = {
    params,
    subscriptionId: "6f1c2a9e-3b7d-4c55-9a1e-2d8f0b7c4e13",
    tenantId: "72f988bf-86f1-41af-91ab-2d7cd011db47",
  };
  const decl = declarations(parser, new Map([[FUNCTION_APP, t.get(FUNCTION_APP) ?? ""]])).find(
    (d) => d.symbol === "productSettings",
  );
  return evaluateSettings(decl?.value, scope);
}

describe("the Function App's settings load with the product's config validation in every mode", () => {
  it.each([
    [
      "gRPC over TCP with the VM for the admin SVID bootstrap",
      {},
      { SPIRE_SERVER_ADDRESS: "10.40.1.4:8081" },
    ],
    ["run-commands", { spireApi: "run-command", spireServerAddress: "" }, { SPIRE_API: "run-command" }],
    [
      "secure webhook alerts",
      { alertAuth: "entra", alertAudience: "api://spire-autopilot" },
      { ALERT_AUTH: "entra" },
    ],
    ["no workspace yet", { logAnalyticsWorkspaceCustomerId: "" }, { SPIRE_API: "grpc" }],
  ])("%s", (_mode, overrides, expected) => {
    const env = settingsFor(templates, { ...base, ...overrides });
    expect(env).toMatchObject(expected);
    expect(() => loadConfig(env)).not.toThrow();
    const config = loadConfig(env);
    expect(config.azure.subscriptionId).toBe("6f1c2a9e-3b7d-4c55-9a1e-2d8f0b7c4e13");
  });

  it("leaves out what a mode does not use", () => {
    const rc = settingsFor(templates, { ...base, spireApi: "run-command", spireServerAddress: "" });
    expect(rc).not.toHaveProperty("SPIRE_SERVER_ADDRESS");
    expect(rc).not.toHaveProperty("SPIRE_ADMIN_SVID_SECRET");
    expect(settingsFor(templates, base)).not.toHaveProperty("ALERT_AUDIENCE");
  });

  it.each([
    [
      "the admin SVID secret dropped with TCP",
      (t: string) =>
        t.replace(
          "SPIRE_ADMIN_SVID_SECRET: empty(spireServerAddress) ? '' : adminSvidSecretName",
          "SPIRE_ADMIN_SVID_SECRET: ''",
        ),
      base,
      /SPIRE_ADMIN_SVID_SECRET/,
    ],
    [
      "the tenant not set for entra",
      (t: string) =>
        t.replace("ALERT_TENANT_ID: alertAuth == 'entra' ? tenant().tenantId : ''", "ALERT_TENANT_ID: ''"),
      { ...base, alertAuth: "entra", alertAudience: "api://spire-autopilot" },
      /ALERT_TENANT_ID/,
    ],
    [
      "the VM name set without its resource group",
      (t: string) =>
        t.replace(
          "SPIRE_VM_RESOURCE_GROUP: empty(spireVmName) ? '' : spireVmResourceGroup",
          "SPIRE_VM_RESOURCE_GROUP: ''",
        ),
      base,
      /SPIRE_VM_RESOURCE_GROUP/,
    ],
  ])("fails when %s", (_what, edit, params, expected) => {
    const env = settingsFor(mutate(templates, FUNCTION_APP, edit), params);
    expect(() => loadConfig(env)).toThrow(expected);
  });

  it("fails for gRPC without a server address: the one combination main.bicep cannot refuse (README says to set it)", () => {
    const env = settingsFor(templates, { ...base, spireServerAddress: "" });
    expect(() => loadConfig(env)).toThrow(/SPIRE_SERVER_ADDRESS/);
  });
});
