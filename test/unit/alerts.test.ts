import { describe, expect, it } from "vitest";
import { MAX_ALERT_APPS, parseCommonAlert } from "../../shared/alerts.js";

/** A log search alert V2 payload as Azure Monitor posts it (common alert schema). */
function payload(condition: "Fired" | "Resolved", dimensions: Array<{ name: string; value: string }>) {
  return {
    schemaId: "azureMonitorCommonAlertSchema",
    data: {
      essentials: {
        alertId: "/subscriptions/s/providers/Microsoft.AlertsManagement/alerts/7d3c",
        alertRule: "spire-agent-crash-loop",
        severity: "Sev1",
        signalType: "Log",
        monitorCondition: condition,
        monitoringService: "Log Alerts V2",
        alertTargetIDs: [
          "/subscriptions/s/resourcegroups/rg/providers/microsoft.operationalinsights/workspaces/w",
        ],
        configurationItems: ["budget"],
        firedDateTime: "2026-11-23T03:12:44.000Z",
      },
      alertContext: {
        conditionType: "LogQueryCriteria",
        condition: {
          windowSize: "PT5M",
          windowStartTime: "2026-11-23T03:07:00Z",
          windowEndTime: "2026-11-23T03:12:00Z",
          allOf: [
            {
              searchQuery: "ContainerAppConsoleLogs | ...",
              metricMeasureColumn: null,
              operator: "GreaterThan",
              threshold: "0",
              timeAggregation: "Count",
              dimensions,
              metricValue: 3,
              linkToSearchResultsAPI: "https://api.loganalytics.io/v1/...",
            },
          ],
        },
      },
    },
  };
}

describe("parseCommonAlert", () => {
  it("takes the app from the alert's dimensions", () => {
    expect(parseCommonAlert(payload("Fired", [{ name: "ContainerAppName", value: "budget" }]))).toEqual({
      ok: true,
      alert: {
        alertId: "/subscriptions/s/providers/Microsoft.AlertsManagement/alerts/7d3c",
        rule: "spire-agent-crash-loop",
        condition: "Fired",
        apps: ["budget"],
        firedAt: "2026-11-23T03:12:44.000Z",
      },
    });
  });

  it("accepts the older _CL column name and deduplicates", () => {
    const p = payload("Fired", [
      { name: "ContainerAppName_s", value: "web" },
      { name: "ContainerAppName", value: "web" },
      { name: "RevisionName", value: "web--1" },
    ]);
    expect(parseCommonAlert(p)).toMatchObject({ ok: true, alert: { apps: ["web"] } });
  });

  it("reads a Resolved notification", () => {
    expect(parseCommonAlert(payload("Resolved", []))).toMatchObject({
      ok: true,
      alert: { condition: "Resolved", apps: [] },
    });
  });

  it.each([
    [null, /body/],
    [{}, /schemaId/],
    [{ schemaId: "Microsoft.Insights/activityLogs", data: {} }, /schemaId/],
    [{ schemaId: "azureMonitorCommonAlertSchema", data: { essentials: {} } }, /data\.essentials\.alertId/],
  ])("names what is wrong with a payload that is not a common alert: %j", (body, where) => {
    const r = parseCommonAlert(body);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.problem).toMatch(/^not a common alert schema payload: /);
    expect(!r.ok && r.problem).toMatch(where);
  });

  it("rejects an unknown monitor condition", () => {
    const p = payload("Fired", []);
    (p.data.essentials as { monitorCondition: string }).monitorCondition = "Flapping";
    expect(parseCommonAlert(p)).toMatchObject({
      ok: false,
      problem: expect.stringMatching(/monitorCondition/),
    });
  });

  it.each([
    ["uppercase", "Budget"],
    ["a path", "../../providers/Microsoft.Compute/virtualMachines/vm"],
    ["a query string", "web?api-version=1"],
    ["too long", `a${"b".repeat(40)}`],
    ["a double dash", "web--1"],
  ])("refuses a dimension value that is not a Container App name (%s), naming it", (_what, value) => {
    const r = parseCommonAlert(
      payload("Fired", [
        { name: "ContainerAppName", value: "budget" },
        { name: "ContainerAppName", value },
      ]),
    );
    expect(r.ok).toBe(false);
    expect(!r.ok && r.problem).toContain("not a Container App");
    expect(!r.ok && r.problem).toContain(JSON.stringify(value));
  });

  it(`accepts ${MAX_ALERT_APPS} apps and refuses one more`, () => {
    const dims = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ name: "ContainerAppName", value: `app-${i}` }));
    expect(parseCommonAlert(payload("Fired", dims(MAX_ALERT_APPS)))).toMatchObject({ ok: true });
    const r = parseCommonAlert(payload("Fired", dims(MAX_ALERT_APPS + 1)));
    expect(r).toMatchObject({ ok: false, problem: expect.stringMatching(/names 51 apps; at most 50/) });
  });
});
