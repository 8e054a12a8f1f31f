import { describe, expect, it } from "vitest";
import { parseFleetRow, parseSweepSummary } from "../../shared/fleet/schema.js";
import { buildFleetView, type FleetInputs } from "../../shared/fleet/view.js";
import { type OperationSummary, summarizeOperation } from "../../shared/operations/summary.js";

const NOW = Date.parse("2026-03-01T12:00:00Z");

const op = (
  over: Partial<Parameters<typeof summarizeOperation>[0]> & { instanceId: string },
): OperationSummary =>
  summarizeOperation({
    name: "reattest",
    runtimeStatus: "Completed",
    createdTime: "2026-03-01T11:50:00Z",
    lastUpdatedTime: "2026-03-01T11:55:00Z",
    ...over,
  });

const inputs = (over: Partial<FleetInputs> = {}): FleetInputs => ({
  now: NOW,
  cooldownSeconds: 600,
  managed: ["orders", "billing"],
  skipped: [{ name: "legacy", reason: "no sidecar container" }],
  rows: [],
  summary: undefined,
  operations: [],
  bundle: {
    server: { fingerprints: ["aa"], earliestExpiry: "2026-03-02T00:00:00Z" },
    vault: { version: "v1" },
    match: true,
  },
  adminSvidExpiresAt: null,
  ...over,
});

describe("parseFleetRow", () => {
  it.each([
    [
      { rowKey: "orders", verdict: "healthy", since: "2026-03-01T10:00:00Z" },
      { app: "orders", verdict: "healthy" },
    ],
    [
      { rowKey: "orders", verdict: 7 },
      { app: "orders", verdict: "unknown" },
    ],
    [{ rowKey: "orders", verdict: "healthy", since: "not a time" }, { since: undefined }],
    [{ rowKey: "orders", agentSha256: "short" }, { agentSha256: undefined }],
    [
      { rowKey: "orders", verdict: "agent-silent", agentExpiresAt: new Date("2026-03-01T13:00:00Z") },
      { agentExpiresAt: "2026-03-01T13:00:00.000Z" },
    ],
  ])("%j → %j", (entity, expected) => {
    expect(parseFleetRow(entity)).toMatchObject(expected);
  });

  it("reads the sweep's own column names (verdictSince, lastSweepAt)", () => {
    expect(
      parseFleetRow({
        rowKey: "orders",
        verdict: "healthy",
        verdictSince: "2026-03-01T10:00:00Z",
        lastSweepAt: "2026-03-01T11:00:00Z",
      }),
    ).toMatchObject({ since: "2026-03-01T10:00:00.000Z", sweptAt: "2026-03-01T11:00:00.000Z" });
  });

  it.each([
    [
      {
        finishedAt: "2026-03-01T11:00:00Z",
        mode: "observe",
        server: "hung",
        serverReason: "no signing",
        sweepId: "sweep-1",
        repairs: 2,
      },
      {
        at: "2026-03-01T11:00:00.000Z",
        mode: "observe",
        serverVerdict: "hung",
        instanceId: "sweep-1",
        repairs: 2,
      },
    ],
    [{ mode: "repair" }, undefined],
  ])("the sweep summary %j → %j", (entity, expected) => {
    const parsed = parseSweepSummary(entity);
    if (expected === undefined) expect(parsed).toBeUndefined();
    else expect(parsed).toMatchObject(expected);
  });

  it("a row without a key is not a row", () => {
    expect(parseFleetRow({ verdict: "healthy" })).toBeUndefined();
  });
});

describe("buildFleetView: what each app shows", () => {
  it.each([
    [
      "before any sweep, a managed app is not-swept",
      inputs(),
      "orders",
      { verdict: "not-swept", managed: true },
    ],
    [
      "the sweep's row gives the verdict and expiries",
      inputs({
        rows: [
          parseFleetRow({
            rowKey: "orders",
            verdict: "agent-silent",
            reason: "agent SVID not renewed",
            agentExpiresAt: "2026-03-01T12:30:00Z",
          })!,
        ],
      }),
      "orders",
      {
        verdict: "agent-silent",
        reason: "agent SVID not renewed",
        agentExpiresAt: "2026-03-01T12:30:00.000Z",
      },
    ],
    [
      "a skipped app says why and is never given a sweep verdict",
      inputs({ rows: [parseFleetRow({ rowKey: "legacy", verdict: "healthy" })!] }),
      "legacy",
      { verdict: "skipped", managed: false, skipped: "no sidecar container" },
    ],
    [
      "a run finished 5 min ago leaves 5 min of a 10 min cooldown",
      inputs({
        operations: [
          op({
            instanceId: "reattest-orders",
            customStatus: { app: "orders" },
            output: { outcome: "succeeded" },
          }),
        ],
      }),
      "orders",
      {
        cooldownRemainingSeconds: 300,
        lastRun: { outcome: "succeeded", id: "reattest-orders" },
        running: null,
      },
    ],
    [
      "a run older than the cooldown leaves none",
      inputs({
        operations: [
          op({
            instanceId: "reattest-orders",
            customStatus: { app: "orders" },
            lastUpdatedTime: "2026-03-01T11:00:00Z",
          }),
        ],
      }),
      "orders",
      { cooldownRemainingSeconds: 0 },
    ],
    [
      "a running run shows with its step",
      inputs({
        operations: [
          op({
            instanceId: "reattest-billing",
            runtimeStatus: "Running",
            customStatus: { app: "billing", step: "revision" },
          }),
        ],
      }),
      "billing",
      { running: { id: "reattest-billing", kind: "reattest", step: "revision" }, lastRun: null },
    ],
  ])("%s", (_what, i, app, expected) => {
    expect(buildFleetView(i).apps.find((a) => a.app === app)).toMatchObject(expected);
  });

  it("lists every managed and skipped app once, sorted, and counts verdicts", () => {
    const v = buildFleetView(inputs());
    expect(v.apps.map((a) => a.app)).toEqual(["billing", "legacy", "orders"]);
    expect(v.counts).toEqual({ "not-swept": 2, skipped: 1 });
  });
});

describe("buildFleetView: the server card", () => {
  it.each([
    [
      "no sweep yet, bundle readable",
      inputs(),
      { verdict: "not-swept", vault: { version: "v1", matches: true } },
    ],
    [
      "the sweep's summary gives the verdict and last sweep",
      inputs({
        summary: {
          at: "2026-03-01T11:59:00.000Z",
          mode: "observe",
          serverVerdict: "hung",
          serverReason: "no signing",
        },
      }),
      { verdict: "hung", reason: "no signing", lastSweep: { mode: "observe" } },
    ],
    [
      "an unreadable server is unknown and named in errors",
      inputs({ bundle: { server: { error: "connect ECONNREFUSED" }, vault: null, match: null } }),
      { verdict: "unknown", roots: null, errors: ["server bundle: connect ECONNREFUSED"] },
    ],
  ])("%s", (_what, i, expected) => {
    expect(buildFleetView(i).server).toMatchObject(expected);
  });
});
