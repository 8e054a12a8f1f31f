import type * as df from "durable-functions";
import type { OrchestrationContext } from "durable-functions";
import { afterEach, describe, expect, it } from "vitest";
import type { ActivityResult, SweepObserveOutput, SweepRecordInput } from "../../activities/contracts.js";
import type { DiscoverOutput, EntriesAndTokensOutput } from "../../activities/deploy.contracts.js";
import {
  DEPLOY_INSTANCE_ID,
  DEPLOY_ORCHESTRATION,
  type DeployInput,
  deployOrchestrator,
} from "../../orchestrations/deploy.js";
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
const deployRuns: Array<{ instanceId: string; input: DeployInput }> = [];
afterEach(async () => {
  await harness?.dispose();
  reattestRuns.length = 0;
  deployRuns.length = 0;
});

// The real deploy orchestration, counted once per run (not per replay).
const deployCounted = function* (context: OrchestrationContext) {
  if (!context.df.isReplaying)
    deployRuns.push({ instanceId: context.df.instanceId, input: context.df.getInput() as DeployInput });
  return yield* deployOrchestrator(context) as Generator<df.Task, unknown, unknown>;
};

const APPS = ["a", "b", "c"];
const discovered: DiscoverOutput = {
  targets: APPS.map((name) => ({
    name,
    alias: `spiffe://td/agent/${name}`,
    workloadId: `spiffe://td/ests/bp/b/aid/${name}`,
    selectors: [{ type: "unix", value: "uid:0" }],
    images: {},
  })),
  apps: [
    ...APPS.map((app) => ({ app, included: true, reason: "managed" })),
    { app: "plain", included: false, reason: "unmanaged: no spire-autopilot=managed tag" },
  ],
  images: [],
  keep: [],
  armPages: 1,
};
const batch: EntriesAndTokensOutput = {
  entries: { created: 3, existed: 0, updated: 0, deleted: 0, providedByUnowned: [], failures: [] },
  tokens: APPS.map((app) => ({
    app,
    secretUrl: `https://kv.example/secrets/join-token-${app}/${"0".repeat(32)}`,
    tokenSha256: app
      .repeat(64)
      .slice(0, 64)
      .replace(/[^0-9a-f]/g, "a"),
    reused: false,
  })),
};
/** The deploy's own activities (its bundle rotation and re-attestations are stubbed orchestrations). */
const deployStubs = (over: Record<string, ActivityStub> = {}): Record<string, ActivityStub> => ({
  deployDiscover: () => ok(discovered),
  deployServerHealth: () => ok({ healthy: true, detail: "ok" }),
  deployEntriesAndTokens: () => ok(batch),
  deployRecord: () => ok({ partitionKey: "_deploy", rowKey: "r" }),
  ...over,
});
const caReset = () =>
  ok(
    observed(
      {
        serverAction: "rotate-and-reattest-all",
        reattest: APPS.map((app) => ({ app, verdict: "not-deployed" })),
      },
      "ca-reset",
    ),
  );

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

async function sweep(
  activities: Record<string, ActivityStub>,
  mode: "repair" | "observe" = "repair",
  before?: (h: ReplayHarness) => Promise<void>,
) {
  harness = new ReplayHarness({
    orchestrations: {
      [HEALTH_SWEEP_ORCHESTRATION]: healthSweepOrchestrator,
      [REATTEST_ORCHESTRATION]: reattestStub,
      [ROTATE_BUNDLE_ORCHESTRATION]: rotateStub,
      [DEPLOY_ORCHESTRATION]: deployCounted,
    },
    activities: { sweepRecord: () => ok({ rows: 1 }), ...activities },
    timeScale: 1000,
  });
  if (before) await before(harness);
  const input = sweepInput(
    {
      reattest: { revisionTimeoutSeconds: 600, verifyTimeoutSeconds: 300 },
      deploy: { attestSpacingMs: 1000 },
    },
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

  it("a CA reset runs the deploy workflow once (its singleton id, the sweep's reason), then verifies the CA", async () => {
    const { out, names, record } = await sweep({
      sweepObserve: caReset,
      sweepProbeServer: () => ok({ state: "healthy", detail: "", fingerprints: [FP] }),
      ...deployStubs(),
    });
    expect(deployRuns).toHaveLength(1);
    expect(deployRuns[0]).toMatchObject({
      instanceId: DEPLOY_INSTANCE_ID,
      input: { reason: "sweep: ca-reset", startSpacingSeconds: 1, maxParallel: 5 },
    });
    expect(deployRuns[0]!.input.apps).toBeUndefined();
    // The deploy's fan-out re-attested every managed app; the sweep has no entry step of its own.
    expect(names).toEqual([
      "sweepObserve",
      "deployDiscover",
      "deployServerHealth",
      "deployEntriesAndTokens",
      "deployRecord",
      "sweepProbeServer",
      "sweepRecord",
    ]);
    expect(reattestRuns.sort()).toEqual(APPS);
    expect(out).toMatchObject({ entriesRestored: 3, reattestsStarted: 3, chainsToNewCa: true });
    expect(out.actions.map((a) => [a.app, a.outcome, a.verdict])).toEqual(
      APPS.map((app) => [app, "succeeded", "not-deployed"]),
    );
    expect(out.serverActionOutcome).toMatch(/3 of 3 apps re-attested; CA unchanged/);
    expect(record.actions).toHaveLength(3);
    expect(record.serverFingerprints).toEqual([FP]);
  });

  it("a CA that changed again during the deploy is not reported as the one every SVID chains to", async () => {
    const { out } = await sweep({
      sweepObserve: caReset,
      sweepProbeServer: () => ok({ state: "healthy", detail: "", fingerprints: ["b".repeat(64)] }),
      ...deployStubs(),
    });
    expect(out.chainsToNewCa).toBe(false);
    expect(out.serverActionOutcome).toMatch(/CA not confirmed/);
  });

  it("a deploy already running is reported, and no second deploy is started", async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => {
      release = r;
    });
    const { out, names } = await sweep(
      {
        sweepObserve: caReset,
        sweepProbeServer: () => ok({ state: "healthy", detail: "", fingerprints: [FP] }),
        // The operator's deploy hangs in discovery until the sweep is over.
        ...deployStubs({
          deployDiscover: async () => {
            await held;
            return ok(discovered);
          },
        }),
      },
      "repair",
      async (h) => {
        h.start(
          DEPLOY_ORCHESTRATION,
          { maxParallel: 5, reattestTiming: {}, startSpacingSeconds: 1, serverWaitSeconds: 60 },
          DEPLOY_INSTANCE_ID,
        );
        await h.waitFor(DEPLOY_INSTANCE_ID, () => harness.callsOf("deployDiscover").length === 1);
      },
    );
    release();
    expect(deployRuns).toHaveLength(1);
    expect(names.filter((n) => n === "deployDiscover")).toHaveLength(1);
    expect(out.failure).toMatch(/deploy not started by the sweep/);
    expect(out.reattestsStarted).toBe(0);
    expect(reattestRuns).toEqual([]);
  });
});
