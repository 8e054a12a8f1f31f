import type { OrchestrationContext } from "durable-functions";
import { afterEach, describe, expect, it } from "vitest";
import type { ActivityResult, SweepObserveOutput, SweepRecordInput } from "../../activities/contracts.js";
import {
  HEALTH_SWEEP_INSTANCE_ID,
  HEALTH_SWEEP_ORCHESTRATION,
  type HealthSweepOutput,
  healthSweepOrchestrator,
} from "../../orchestrations/healthSweep.js";
import { sweepInput } from "../../orchestrations/healthSweep.start.js";
import { REATTEST_ORCHESTRATION } from "../../orchestrations/reattest.js";
import { ROTATE_BUNDLE_ORCHESTRATION } from "../../orchestrations/rotateBundle.start.js";
import { type ActivityStub, ReplayHarness } from "../../sandbox/host/testing.js";

const ok = <T>(value: T): ActivityResult<T> => ({ ok: true, value });
const FP = "a".repeat(64);

function observed(plan: Partial<SweepObserveOutput["plan"]>, server = "healthy"): SweepObserveOutput {
  return {
    takenAt: "2026-12-01T12:00:00.000Z",
    server: { verdict: server as SweepObserveOutput["server"]["verdict"], reason: "test" },
    knownFingerprints: [FP],
    appsListed: true,
    managedApps: 3,
    counts: { healthy: 1 },
    calls: { logsQuery: 1 },
    problems: [],
    plan: { serverAction: "none", reattest: [], deferred: {}, ...plan },
    changes: 0,
  };
}

let harness: ReplayHarness;
const reattestRuns: string[] = [];
afterEach(async () => {
  await harness?.dispose();
  reattestRuns.length = 0;
});

// biome-ignore lint/correctness/useYield: an orchestrator is a generator; this stub schedules nothing
const reattestStub = function* (context: OrchestrationContext) {
  const input = context.df.getInput() as { app: string };
  reattestRuns.push(input.app);
  return {
    app: input.app,
    outcome: "succeeded",
    checks: { agentAttested: true, svidSigned: true },
    previousAgents: 1,
    stepSeconds: {},
  };
};
// biome-ignore lint/correctness/useYield: an orchestrator is a generator; this stub schedules nothing
const rotateStub = function* () {
  return { outcome: "succeeded", action: "ca-reset" };
};

async function sweep(activities: Record<string, ActivityStub>, mode: "repair" | "observe" = "repair") {
  harness = new ReplayHarness({
    orchestrations: {
      [HEALTH_SWEEP_ORCHESTRATION]: healthSweepOrchestrator,
      [REATTEST_ORCHESTRATION]: reattestStub,
      [ROTATE_BUNDLE_ORCHESTRATION]: rotateStub,
    },
    activities: { sweepRecord: () => ok({ rows: 1 }), ...activities },
    timeScale: 1000,
  });
  const input = sweepInput(
    { reattest: { revisionTimeoutSeconds: 600, verifyTimeoutSeconds: 300 } },
    "timer",
    mode,
  );
  const status = await harness.run(HEALTH_SWEEP_ORCHESTRATION, input, HEALTH_SWEEP_INSTANCE_ID, 40_000);
  const record = harness.calls.find((c) => c.name === "sweepRecord")?.input as SweepRecordInput;
  return { out: status.output as HealthSweepOutput, record, names: harness.calls.map((c) => c.name) };
}

describe("healthSweep orchestration (replayed by durable-functions, activities stubbed)", () => {
  it("a plan with nothing to do observes and records, and starts nothing", async () => {
    const { out, names } = await sweep(
      { sweepObserve: () => ok(observed({ deferred: { observe: 2 } })) },
      "observe",
    );
    expect(names).toEqual(["sweepObserve", "sweepRecord"]);
    expect(out).toMatchObject({
      mode: "observe",
      serverRestarts: 0,
      reattestsStarted: 0,
      deferred: { observe: 2 },
    });
    expect(reattestRuns).toEqual([]);
  });

  it("per-app repairs go through the reattest workflow, one sub-orchestration per app, all recorded", async () => {
    const { out, record } = await sweep({
      sweepObserve: () =>
        ok(
          observed({
            reattest: [
              { app: "a", verdict: "agent-silent" },
              { app: "b", verdict: "token-spent" },
            ],
          }),
        ),
    });
    expect(reattestRuns.sort()).toEqual(["a", "b"]);
    expect(out.actions).toEqual([
      { app: "a", action: "reattest", verdict: "agent-silent", outcome: "succeeded", svidSigned: true },
      { app: "b", action: "reattest", verdict: "token-spent", outcome: "succeeded", svidSigned: true },
    ]);
    expect(record.actions).toHaveLength(2);
  });

  it("a hung server: one restart, polled back to health, CA compared, nobody re-attested", async () => {
    const { out, names } = await sweep({
      sweepObserve: () => ok(observed({ serverAction: "restart-server" }, "hung")),
      sweepRestartServer: () => ok({ restarted: true, detail: "ok" }),
      sweepProbeServer: (_i, n) =>
        ok(
          n === 1
            ? { state: "timeout", detail: "starting", fingerprints: [] }
            : { state: "healthy", detail: "", fingerprints: [FP] },
        ),
    });
    expect(names.filter((n) => n === "sweepRestartServer")).toHaveLength(1);
    expect(names.filter((n) => n === "sweepProbeServer")).toHaveLength(2);
    expect(out).toMatchObject({ serverRestarts: 1, caUnchanged: true, reattestsStarted: 0 });
    expect(reattestRuns).toEqual([]);
  });

  it("a restart that brings back a different CA says so", async () => {
    const { out } = await sweep({
      sweepObserve: () => ok(observed({ serverAction: "restart-server" }, "hung")),
      sweepRestartServer: () => ok({ restarted: true, detail: "ok" }),
      sweepProbeServer: () => ok({ state: "healthy", detail: "", fingerprints: ["b".repeat(64)] }),
    });
    expect(out.caUnchanged).toBe(false);
    expect(out.serverActionOutcome).toMatch(/CHANGED/);
  });

  it("a CA reset: rotation first, entries restored, then every app re-attested", async () => {
    const { out, names } = await sweep({
      sweepObserve: () =>
        ok(
          observed(
            {
              serverAction: "rotate-and-reattest-all",
              reattest: ["a", "b", "c"].map((app) => ({ app, verdict: "not-deployed" })),
            },
            "ca-reset",
          ),
        ),
      sweepRestoreEntries: () => ok({ created: 3, existed: 0, failed: 0 }),
    });
    expect(names).toEqual(["sweepObserve", "sweepRestoreEntries", "sweepRecord"]);
    expect(reattestRuns.sort()).toEqual(["a", "b", "c"]);
    expect(out).toMatchObject({ entriesRestored: 3, reattestsStarted: 3 });
    expect(out.serverActionOutcome).toMatch(/3 of 3/);
  });
});
