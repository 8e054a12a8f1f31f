import { afterEach, describe, expect, it } from "vitest";
import { Activities, type ActivityResult } from "../../activities/contracts.js";
import {
  REATTEST_ORCHESTRATION,
  RETRY_TIMEOUT_MS,
  RETRY_WAITS_MS,
  type ReattestInput,
  type ReattestOutput,
  reattestInstanceId,
  reattestOrchestrator,
  retryPolicy,
} from "../../orchestrations/reattest.js";
import { type ActivityStub, ReplayHarness } from "../../sandbox/host/testing.js";

const ok = <T>(value: T): ActivityResult<T> => ({ ok: true, value });
const fail = (code: string, message: string): ActivityResult<never> => ({
  ok: false,
  error: { code, message },
});
const SHA = "a".repeat(64);

function stubs(
  overrides: Partial<Record<keyof typeof Activities, ActivityStub>> = {},
): Record<string, ActivityStub> {
  return {
    reattestPrepare: () =>
      ok({
        app: "budget",
        alias: "spiffe://td/agent/budget",
        workloadId: "spiffe://td/ests/bp/b/aid/a",
        previousAgents: ["x", "y"],
      }),
    reattestApplyToken: () => ok({ tokenSha256: SHA, revisionName: "budget--sa-1", alreadyApplied: false }),
    reattestRevisionState: (_i, n) =>
      ok(n < 3 ? { state: "Pending", detail: "Provisioning" } : { state: "Running", detail: "1/1 replicas" }),
    reattestVerify: (_i, n) => ok({ agentAttested: n >= 2, svidSigned: n >= 2 }),
    reattestEvictOld: () => ok({ evicted: 2, remaining: 1 }),
    reattestRetireRevisions: () =>
      ok({
        mode: "Single",
        retired: [],
        keptWithTraffic: [],
        keptNewer: [],
        detail: "Single revision mode: nothing to do.",
      }),
    ledgerRecord: () => ok(null),
    ...overrides,
  };
}

const input: ReattestInput = {
  app: "budget",
  trigger: "alert",
  reason: "crash loop",
  timing: { firstPollSeconds: 1, maxPollSeconds: 4, revisionTimeoutSeconds: 60, verifyTimeoutSeconds: 30 },
};

let harness: ReplayHarness;
afterEach(async () => {
  await harness?.dispose();
});

// Real milliseconds of each episode count as virtual seconds at 1000x: under a loaded machine that ate
// the 60 s revision budget. 100x keeps every wait short and the budgets honest.
function run(overrides?: Parameters<typeof stubs>[0], inp: ReattestInput = input, timeScale = 100) {
  harness = new ReplayHarness({
    orchestrations: { [REATTEST_ORCHESTRATION]: reattestOrchestrator },
    activities: stubs(overrides),
    timeScale,
  });
  return harness.run(REATTEST_ORCHESTRATION, inp, reattestInstanceId(inp.app), 40_000);
}

describe("reattest orchestration (replayed by durable-functions, activities stubbed)", () => {
  it("succeeds: applies once, waits for the revision, verifies, evicts the old agents, records", async () => {
    const s = await run();
    expect(s.runtimeStatus).toBe("Completed");
    const out = s.output as ReattestOutput;
    expect(out).toMatchObject({
      app: "budget",
      outcome: "succeeded",
      revisionName: "budget--sa-1",
      previousAgents: 2,
      evicted: 2,
      checks: { agentAttested: true, svidSigned: true },
    });
    expect(Object.keys(out.stepSeconds)).toEqual([
      "prepare",
      "apply",
      "revision",
      "verify",
      "evict",
      "retire",
      "record",
    ]);
    expect(harness.callsOf(Activities.reattestApplyToken)).toHaveLength(1);
    expect(harness.callsOf(Activities.reattestRevisionState)).toHaveLength(3);
    expect(harness.callsOf(Activities.reattestEvictOld)).toEqual([
      { app: "budget", alias: "spiffe://td/agent/budget", keepTokenSha256: SHA },
    ]);
    expect(harness.callsOf(Activities.reattestRetireRevisions)).toEqual([
      { app: "budget", keepRevision: "budget--sa-1" },
    ]);
    expect(out).toMatchObject({ retired: 0 });
    expect(out.warning).toBeUndefined();
    const [record] = harness.callsOf(Activities.ledgerRecord) as Array<Record<string, unknown>>;
    expect(record).toMatchObject({
      app: "budget",
      trigger: "alert",
      reason: "crash loop",
      outcome: "succeeded",
      newAgentSha256: SHA,
    });
    expect(s.customStatus).toMatchObject({ step: "done", app: "budget", revisionName: "budget--sa-1" });
  });

  it("passes a run id derived from the instance and its start time, the same on every replay", async () => {
    await run();
    const [apply] = harness.callsOf(Activities.reattestApplyToken) as Array<{ runId: string }>;
    expect(apply!.runId).toMatch(/^reattest-budget@\d{4}-\d\d-\d\dT/);
  });

  it("fails with the PUT's reason and evicts nothing when the apply step is refused", async () => {
    const s = await run({
      reattestApplyToken: () =>
        fail("SpecError", "Container app budget has no SPIRE agent sidecar: no container reads JOIN_TOKEN."),
    });
    const out = s.output as ReattestOutput;
    expect(out.outcome).toBe("failed");
    expect(out.failure).toMatch(/reattestApplyToken: Container app budget has no SPIRE agent sidecar/);
    expect(harness.callsOf(Activities.reattestApplyToken)).toHaveLength(1);
    expect(harness.callsOf(Activities.reattestEvictOld)).toHaveLength(0);
    expect(harness.callsOf(Activities.reattestRetireRevisions)).toHaveLength(0);
    expect(harness.callsOf(Activities.ledgerRecord)[0]).toMatchObject({ outcome: "failed" });
  });

  it("retries a transient error (a thrown one) and then succeeds", async () => {
    const s = await run({
      reattestApplyToken: (_i, n) => {
        if (n === 1) throw new Error("429 TooManyRequests");
        return ok({ tokenSha256: SHA, revisionName: "budget--sa-1", alreadyApplied: false });
      },
    });
    expect((s.output as ReattestOutput).outcome).toBe("succeeded");
    expect(harness.callsOf(Activities.reattestApplyToken)).toHaveLength(2);
  });

  it("gives up after the retry budget on an error that keeps being transient", async () => {
    const s = await run(
      {
        reattestPrepare: () => {
          throw new Error("503 ServiceUnavailable");
        },
      },
      input,
      // Each attempt's real milliseconds count as virtual seconds here, as attempts' own time counts
      // against the retry timeout in Azure; keep the scale low enough not to eat the margin.
      200,
    );
    const out = s.output as ReattestOutput;
    expect(out.outcome).toBe("failed");
    expect(out.failure).toMatch(/reattestPrepare kept failing after retries: .*503 ServiceUnavailable/);
    expect(harness.callsOf(Activities.reattestPrepare)).toHaveLength(15);
  });

  it("rides out ten minutes of a role assignment that has not propagated yet", async () => {
    // Attempts start at 0, 5, 15, 35, 75 s, then every 60 s: the 14th starts at 615 s.
    const s = await run(
      {
        reattestApplyToken: (_i, n) => {
          if (n < 14) throw new Error("403 AuthorizationFailed: the client does not have authorization");
          return ok({ tokenSha256: SHA, revisionName: "budget--sa-1", alreadyApplied: false });
        },
      },
      input,
      // Each attempt's real milliseconds count as virtual seconds here, as attempts' own time counts
      // against the retry timeout in Azure; keep the scale low enough not to eat the margin.
      200,
    );
    expect((s.output as ReattestOutput).outcome).toBe("succeeded");
    expect(harness.callsOf(Activities.reattestApplyToken)).toHaveLength(14);
  });

  it("gives every call a retry budget over ten minutes, which the attempt count uses up before the retry timeout", () => {
    const policy = retryPolicy();
    expect(policy.retryTimeoutInMilliseconds).toBe(RETRY_TIMEOUT_MS);
    expect(RETRY_WAITS_MS).toBeGreaterThanOrEqual(10 * 60_000);
    // The last attempt starts before the final wait; it must start well inside the timeout, or DTFx
    // would stop on the timeout and durable-functions would never return (durable-js#629).
    const lastAttemptStartsAt = RETRY_WAITS_MS - policy.maxRetryIntervalInMilliseconds;
    expect(RETRY_TIMEOUT_MS - lastAttemptStartsAt).toBeGreaterThanOrEqual(8 * 60_000);
  });

  it("takes the revision and verify timeouts from its input, as the starter passes them", async () => {
    const s = await run(
      { reattestRevisionState: () => ok({ state: "Pending", detail: "Provisioning" }) },
      { ...input, timing: { ...input.timing, revisionTimeoutSeconds: 77 } },
    );
    expect((s.output as ReattestOutput).failure).toMatch(/was not running after 77 s/);
  });

  it("fails when the new revision fails, saying what to check", async () => {
    const s = await run({
      reattestRevisionState: () => ok({ state: "Failed", detail: "container crashed: exit 1" }),
    });
    const out = s.output as ReattestOutput;
    expect(out.outcome).toBe("failed");
    expect(out.failure).toMatch(/revision budget--sa-1 failed to start: container crashed: exit 1/);
    expect(harness.callsOf(Activities.reattestVerify)).toHaveLength(0);
  });

  it("waits on a revision state it does not know, naming it in customStatus and the failure", async () => {
    const detail = 'unrecognised running state "Hibernating", still waiting: running Hibernating';
    const s = await run(
      { reattestRevisionState: () => ok({ state: "Pending", runningState: "Hibernating", detail }) },
      input,
      100,
    );
    const out = s.output as ReattestOutput;
    expect(out.failure).toMatch(/was not running after 60 s \(unrecognised running state "Hibernating"/);
    expect(s.customStatus).toMatchObject({ revision: { state: "Pending", runningState: "Hibernating" } });
    expect(harness.callsOf(Activities.reattestVerify)).toHaveLength(0);
  });

  it("times out verification with bounded, growing waits", async () => {
    const s = await run({ reattestVerify: () => ok({ agentAttested: false }) }, input, 100);
    const out = s.output as ReattestOutput;
    expect(out.failure).toMatch(/the new agent did not attest within 30 s/);
    // Waits of 1, 2, 4, 4, ... virtual seconds until 30 s: at most 10 polls (fewer when episodes
    // themselves take virtual time), far from the 30 a fixed 1 s poll would make.
    const polls = harness.callsOf(Activities.reattestVerify).length;
    expect(polls).toBeGreaterThanOrEqual(5);
    expect(polls).toBeLessThanOrEqual(10);
    expect(harness.callsOf(Activities.reattestEvictOld)).toHaveLength(0);
  });

  it("fails when the agent attests but the workload SVID is never signed", async () => {
    const s = await run({ reattestVerify: () => ok({ agentAttested: true, svidSigned: false }) });
    expect((s.output as ReattestOutput).failure).toMatch(
      /no SVID was signed for spiffe:\/\/td\/ests\/bp\/b\/aid\/a/,
    );
  });

  it("succeeds on attestation, at once and saying why, when the server's log level hides signings", async () => {
    const note = 'the SPIRE server\'s log level hides workload signings: set log_level = "DEBUG"';
    const s = await run({
      reattestVerify: () => ok({ agentAttested: true, svidSigned: "unknown", svidNote: note }),
    });
    const out = s.output as ReattestOutput;
    expect(out).toMatchObject({
      outcome: "succeeded",
      checks: { agentAttested: true, svidSigned: "unknown", svidNote: note },
    });
    expect(harness.callsOf(Activities.reattestVerify)).toHaveLength(1);
  });

  it("accepts a run without log checks (svidSigned undefined when no workspace is configured)", async () => {
    const s = await run({ reattestVerify: () => ok({ agentAttested: true }) });
    expect((s.output as ReattestOutput).outcome).toBe("succeeded");
  });

  it("keeps one instance per app: a second start with the same id is refused while it runs", async () => {
    harness = new ReplayHarness({
      orchestrations: { [REATTEST_ORCHESTRATION]: reattestOrchestrator },
      activities: stubs({ reattestVerify: () => ok({ agentAttested: false }) }),
      timeScale: 10,
    });
    const id = harness.start(REATTEST_ORCHESTRATION, input, reattestInstanceId("budget"));
    expect(() => harness.start(REATTEST_ORCHESTRATION, input, reattestInstanceId("budget"))).toThrow(
      /already exists/,
    );
    expect(id).toBe("reattest-budget");
  });

  it("reports the run even when the ledger is down", async () => {
    const s = await run({ ledgerRecord: () => fail("TableUnavailable", "fleet table unreachable") });
    const out = s.output as ReattestOutput;
    expect(out.outcome).toBe("succeeded");
    expect(out.failure).toMatch(/ledger not updated: ledgerRecord: fleet table unreachable/);
  });

  it("retires the replaced revisions after evicting, and counts them in the output", async () => {
    const order: string[] = [];
    const s = await run({
      reattestEvictOld: () => {
        order.push("evict");
        return ok({ evicted: 1, remaining: 1 });
      },
      reattestRetireRevisions: () => {
        order.push("retire");
        return ok({
          mode: "Multiple",
          retired: ["budget--v1", "budget--v2"],
          keptWithTraffic: [],
          keptNewer: [],
          detail: "Multiple revision mode: deactivated budget--v1, budget--v2.",
        });
      },
    });
    const out = s.output as ReattestOutput;
    expect(order).toEqual(["evict", "retire"]);
    expect(out).toMatchObject({ outcome: "succeeded", retired: 2 });
    expect(out.warning).toBeUndefined();
    expect(out.stepSeconds).toHaveProperty("retire");
  });

  it("a revision left active because it still carries traffic is a warning on a succeeded run", async () => {
    const detail =
      "Multiple revision mode: left budget--canary active because traffic or a label still points at them";
    const s = await run({
      reattestRetireRevisions: () =>
        ok({
          mode: "Multiple",
          retired: ["budget--v1"],
          keptWithTraffic: ["budget--canary"],
          keptNewer: [],
          detail,
        }),
    });
    const out = s.output as ReattestOutput;
    expect(out).toMatchObject({ outcome: "succeeded", retired: 1, warning: detail });
    expect(out.failure).toBeUndefined();
    // The ledger keeps the warning too, so the fleet's history shows what was left for a person.
    expect(harness.callsOf(Activities.ledgerRecord)[0]).toMatchObject({
      outcome: "succeeded",
      warning: detail,
    });
  });

  it("a retire step that fails leaves the verified run succeeded, with a warning saying what to do", async () => {
    const refused = await run({
      reattestRetireRevisions: () =>
        fail(
          "KeepRevisionNotActive",
          "revision budget--sa-1 is not an active revision of container app budget",
        ),
    });
    expect(refused.output as ReattestOutput).toMatchObject({
      outcome: "succeeded",
      evicted: 2,
      warning: expect.stringMatching(
        /replaced revisions not retired: reattestRetireRevisions: revision budget--sa-1 is not an active revision.*deactivate them/,
      ),
    });
    expect((refused.output as ReattestOutput).retired).toBeUndefined();
    await harness.dispose();

    const down = await run(
      {
        reattestRetireRevisions: () => {
          throw new Error("503 ServiceUnavailable");
        },
      },
      input,
      200,
    );
    expect(down.output as ReattestOutput).toMatchObject({
      outcome: "succeeded",
      warning: expect.stringMatching(/reattestRetireRevisions kept failing after retries: .*503/),
    });
    // Retried as transient, then given up on: the run stands.
    expect(harness.callsOf(Activities.reattestRetireRevisions).length).toBeGreaterThan(1);
    expect(harness.callsOf(Activities.ledgerRecord)[0]).toMatchObject({ outcome: "succeeded" });
  });
});
