import { beforeAll, describe, expect, it } from "vitest";
import type { Parser } from "web-tree-sitter";
import { NAMES, settingOf } from "../../shared/config/settings.js";
import { bicepParser, loadTemplates, mutate } from "./infra/bicep.js";
import {
  appSettingNames,
  FUNCTION_APP,
  type SettingsSpec,
  settingsProblems,
} from "./infra/settings-check.js";

// Read from the config table itself, so a setting added to it is checked here without editing this test.
const spec: SettingsSpec = {
  table: NAMES.map((name) => ({ name, presence: settingOf(name).presence })),
  // Read by the Functions host, not by shared/config: identity-based AzureWebJobsStorage
  // (shared/services.ts also reads __accountName for the fleet table and the run-command blobs)
  // and Entra-authenticated Application Insights.
  hostKnown: [
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
  ],
};

const templates = loadTemplates();
let parser: Parser;
beforeAll(async () => {
  parser = await bicepParser();
});

describe("the Function App's app settings match the config table", () => {
  it("sets every required setting and only settings the table knows", () => {
    expect(settingsProblems(parser, templates, spec)).toEqual([]);
  });

  it("reads the names from the template's syntax tree", () => {
    const { product, host } = appSettingNames(parser, templates);
    const required = spec.table.filter((s) => s.presence === "required").map((s) => s.name);
    expect(required.length).toBeGreaterThan(0);
    expect(product).toEqual(expect.arrayContaining(required));
    expect(host).toContain("AzureWebJobsStorage__accountName");
    // Azure talks to the app as its user-assigned identity, never a developer's credential.
    expect(product).toEqual(expect.arrayContaining(["AZURE_CREDENTIAL", "AZURE_CLIENT_ID"]));
  });

  it.each([
    [
      "a required setting removed",
      (t: string) => t.replace(/^\s*KEY_VAULT_URL: .*\n/m, ""),
      /KEY_VAULT_URL is not set/,
    ],
    [
      "a setting the table does not know",
      (t: string) => t.replace("SPIRE_API: spireApi", "SPIRE_APIS: spireApi"),
      /SPIRE_APIS is not a setting/,
    ],
    [
      "an unknown host setting",
      (t: string) => t.replace("AzureWebJobsStorage__credential", "AzureWebJobsStorage__secret"),
      /AzureWebJobsStorage__secret/,
    ],
    [
      "a product setting among the host's",
      (t: string) => t.replace("APPLICATIONINSIGHTS_CONNECTION_STRING:", "ALERT_AUTH:"),
      /ALERT_AUTH belongs in productSettings/,
    ],
    [
      "settings not reaching the site",
      (t: string) => t.replace("appSettings: appSettings", "appSettings: []"),
      /not built from productSettings/,
    ],
  ])("fails on %s", (_what, edit, expected) => {
    const problems = settingsProblems(parser, mutate(templates, FUNCTION_APP, edit), spec);
    expect(problems.join("\n")).toMatch(expected);
  });

  it("fails when the table gains a required setting the template does not set", () => {
    const grown = {
      ...spec,
      table: [...spec.table, { name: "NEW_REQUIRED_SETTING", presence: "required" as const }],
    };
    expect(settingsProblems(parser, templates, grown).join("\n")).toMatch(/NEW_REQUIRED_SETTING is not set/);
  });
});
