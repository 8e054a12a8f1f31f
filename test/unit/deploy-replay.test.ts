import { afterEach, describe, expect, it } from "vitest";
import type { ActivityResult } from "../../activities/contracts.js";
import type { DiscoverOutput, EntriesAndTokensOutput } from "../../activities/deploy.contracts.js";
import {
  DEPLOY_INSTANCE_ID,
  DEPLOY_ORCHESTRATION,
  type DeployInput,
  type DeployOutput,
  type DeployStatus,
  deployOrchestrator,
} from "../../orchestrations/deploy.js";
import { REATTEST_ORCHESTRATION, reattestOrchestrator } from "../../orchestrations/reattest.js";
import { rotateBundleOrchestrator } from "../../orchestrations/rotateBundle.js";
import { ROTATE_BUNDLE_ORCHESTRATION } from "../../orchestrations/rotateBundle.start.js";
import { type ActivityStub, ReplayHarness } from "../../sandbox/host/testing.js";

const ok = <T>(value: T): ActivityResult<T> => ({ ok: true, value });
const sha = (app: string) =>
  app
    .padEnd(64, "0")
    .replace(/[^0-9a-f]/g, "a")
    .slice(0, 64);
const url = (app: string) => `https://kv.example/secrets/join-token-${app}/${"0".repeat(32)}`;
const APPS = ["alpha", "beta", "gamma"];

const discovered: DiscoverOutput = {
  targets: APPS.map((name) => ({
    name,
    alias: `spiffe://td/agent/${name}`,
    workloadId: `spiffe://td/ests/bp/b/aid/${name}`,
    selectors: [{ type: "unix", value: "uid:0" }],
    images: (name === "alpha" ? { main: "acr.example/alpha:2" } : {}) as Record<string, string>,
  })),
  apps: [
    ...APPS.map((app) => ({ app, included: true, reason: "managed" })),
    { app: "plain", included: false, reason: "unmanaged: no spire-autopilot=managed tag" },
  ],
  images: [{ app: "alpha", container: "main", from: "acr.example/alpha:1", to: "acr.example/alpha:2" }],
  keep: [],
  armPages: 1,
};
const batch: EntriesAndTokensOutput = {
  entries: { created: 3, existed: 0, updated: 0, deleted: 1, providedByUnowned: [], failures: [] },
  tokens: APPS.map((app) => ({ app, secretUrl: url(app), tokenSha256: sha(app), reused: false })),
};

function stubs(over: Record<string, ActivityStub> = {}): Record<string, ActivityStub> {
  const appOf = (i: unknown) => (i as { app: string }).app;
  return {
    deployDiscover: () => ok(discovered),
    deployServerHealth: (_i, n) => ok({ healthy: n >= 2, detail: n >= 2 ? "ok" : "connection refused" }),
    bundleReadVault: () => ok(null),
    bundleSync: () =>
      ok({
        server: { fingerprints: [], roots: [], sequence: 1 },
        action: "initial",
        written: true,
        version: "v1",
        added: [],
        removed: [],
      }),
    bundleRecord: () => ok({ recorded: true }),
    // rotateBundle ends with the admin SVID step; outside TCP mode it does nothing.
    adminSvidEnsure: () => ok({ lastAction: "none", reason: "not TCP mode", minted: "none" }),
    deployEntriesAndTokens: () => ok(batch),
    // Over the API the VM's container is looked at once when the server does not answer.
    deployStartServer: () => ok({ started: false, detail: "spire-server is running; nothing started" }),
    deployRecord: () => ok({ partitionKey: "_deploy", rowKey: "r" }),
    // Run-command mode's deploy-wide steps.
    deployProbe: () =>
      ok({
        healthy: true,
        detail: "healthcheck passed",
        trust: {
          server: { fingerprints: [], roots: [], sequence: 1 },
          action: "first-write",
          written: true,
          version: "v1",
          added: [],
          removed: [],
          vaultFingerprints: [],
        },
        diff: { create: [], update: [], delete: ["spire-autopilot.ghost"], providedByUnowned: [] },
      }),
    deployRollover: (i) =>
      ok({
        apps: (i as { apps: Array<{ app: string }> }).apps.map(({ app }) => ({
          app,
          agentAttested: app !== "gamma",
          evicted: app === "alpha" ? 1 : 0,
          stale: 0,
          ...(app !== "gamma" && { svidSigned: true }),
          ...(app === "gamma" && { detail: "the new agent did not attest within 120 s" }),
        })),
      }),
    reattestPrepare: (i) =>
      ok({ app: appOf(i), alias: `spiffe://td/agent/${appOf(i)}`, workloadId: "w", previousAgents: [] }),
    reattestApplyToken: (i) => {
      const input = i as { app: string; token: { tokenSha256: string } };
      return ok({
        tokenSha256: input.token.tokenSha256,
        revisionName: `${input.app}--sa-1`,
        alreadyApplied: false,
      });
    },
    reattestRevisionState: () => ok({ state: "Running", detail: "1/1" }),
    reattestVerify: (i) => ok({ agentAttested: appOf(i) !== "gamma", svidSigned: appOf(i) !== "gamma" }),
    reattestEvictOld: () => ok({ evicted: 0, remaining: 1 }),
    reattestRetireRevisions: () =>
      ok({ mode: "Single", retired: [], keptWithTraffic: [], keptNewer: [], detail: "" }),
    ledgerRecord: () => ok(null),
    ...over,
  };
}

const input = (maxParallel: number, spireAccess?: DeployInput["spireAccess"]): DeployInput => ({
  ...(spireAccess && { spireAccess }),
  maxParallel,
  reason: "ship alpha:2",
  reattestTiming: {
    firstPollSeconds: 1,
    maxPollSeconds: 2,
    revisionTimeoutSeconds: 20,
    verifyTimeoutSeconds: 5,
  },
  startSpacingSeconds: 1,
  serverWaitSeconds: 60,
});

let harness: ReplayHarness;
afterEach(async () => {
  await harness?.dispose();
});

function run(
  maxParallel: number,
  over?: Record<string, ActivityStub>,
  spireAccess?: DeployInput["spireAccess"],
) {
  harness = new ReplayHarness({
    orchestrations: {
      [DEPLOY_ORCHESTRATION]: deployOrchestrator,
      [REATTEST_ORCHESTRATION]: reattestOrchestrator,
      [ROTATE_BUNDLE_ORCHESTRATION]: rotateBundleOrchestrator,
    },
    activities: stubs(over),
    timeScale: 100,
  });
  return harness.run(DEPLOY_ORCHESTRATION, input(maxParallel, spireAccess), DEPLOY_INSTANCE_ID, 60_000);
}

describe("deploy orchestration (replayed by durable-functions, activities stubbed)", () => {
  it("waits for the server, rotates trust, batches entries+tokens once, re-attests each app; one failing does not stop the others", async () => {
    const s = await run(5);
    expect(s.runtimeStatus).toBe("Completed");
    const out = s.output as DeployOutput;
    expect(out.outcome).toBe("partial");
    expect(out.apps.map((a) => [a.app, a.outcome])).toEqual([
      ["alpha", "succeeded"],
      ["beta", "succeeded"],
      ["gamma", "failed"],
      ["plain", "skipped"],
    ]);
    expect(out.apps.find((a) => a.app === "gamma")?.reason).toMatch(/did not attest/);
    expect(out.totals).toMatchObject({
      succeeded: 2,
      failed: 1,
      skipped: 1,
      entriesCreated: 3,
      entriesDeleted: 1,
      tokenCount: 3,
      imagesChanged: 1,
    });
    expect(harness.callsOf("deployServerHealth")).toHaveLength(2);
    expect(harness.callsOf("deployEntriesAndTokens")).toHaveLength(1);
    expect(harness.callsOf("bundleSync")).toHaveLength(1);
    // One PUT per app, carrying the deploy's token reference and the app's image change.
    const applies = harness.callsOf("reattestApplyToken") as Array<{
      app: string;
      token: unknown;
      images?: unknown;
    }>;
    expect(applies.map((a) => a.app).sort()).toEqual(APPS);
    expect(applies.find((a) => a.app === "alpha")).toMatchObject({
      token: { secretUrl: url("alpha"), tokenSha256: sha("alpha") },
      images: { main: "acr.example/alpha:2" },
    });
    expect(applies.find((a) => a.app === "beta")?.images).toBeUndefined();
    const status = s.customStatus as DeployStatus;
    expect(status).toMatchObject({ step: "done", appsDone: 3, appsTotal: 3 });
    expect(status.apps).toEqual({ alpha: "succeeded", beta: "succeeded", gamma: "failed", plain: "skipped" });
    // Each app's re-attestation ran under its own singleton id, so a running one blocks it.
    expect(harness.status("reattest-beta")?.runtimeStatus).toBe("Completed");
  });

  it("with maxParallel 1 runs the apps one after another", async () => {
    await run(1);
    const order = harness.calls
      .filter((c) => c.name.startsWith("reattest") || c.name === "ledgerRecord")
      .map((c) => (c.input as { app: string }).app);
    const firstChange = order.findIndex((a) => a !== order[0]);
    const runs = order.filter((a, i) => i === 0 || a !== order[i - 1]);
    expect(firstChange).toBeGreaterThan(0);
    expect(runs).toEqual(APPS);
  });

  it("reports an app whose re-attestation is already running instead of acting on it twice", async () => {
    harness = new ReplayHarness({
      orchestrations: {
        [DEPLOY_ORCHESTRATION]: deployOrchestrator,
        [REATTEST_ORCHESTRATION]: reattestOrchestrator,
        [ROTATE_BUNDLE_ORCHESTRATION]: rotateBundleOrchestrator,
      },
      // beta's own re-attestation hangs in prepare until the deploy is over.
      activities: stubs({
        reattestPrepare: async (i) => {
          const app = (i as { app: string }).app;
          if (app === "beta") await new Promise((r) => setTimeout(r, 4_000));
          return ok({ app, alias: `spiffe://td/agent/${app}`, workloadId: "w", previousAgents: [] });
        },
      }),
      timeScale: 100,
    });
    harness.start(REATTEST_ORCHESTRATION, { app: "beta", trigger: "http" }, "reattest-beta");
    const s = await harness.run(DEPLOY_ORCHESTRATION, input(5), DEPLOY_INSTANCE_ID, 60_000);
    const out = s.output as DeployOutput;
    expect(out.apps.find((a) => a.app === "beta")).toMatchObject({ outcome: "failed" });
    expect(out.apps.find((a) => a.app === "beta")?.reason).toMatch(/re-attestation/);
    expect(out.apps.find((a) => a.app === "alpha")?.outcome).toBe("succeeded");
    // Only the operator's own run acted on beta.
    expect(
      harness.callsOf("reattestPrepare").filter((i) => (i as { app: string }).app === "beta"),
    ).toHaveLength(1);
  });

  it("fails the whole deploy, touching nothing, when the server never answers", async () => {
    const s = await run(5, {
      deployServerHealth: () => ok({ healthy: false, detail: "connection refused" }),
    });
    const out = s.output as DeployOutput;
    expect(out.outcome).toBe("failed");
    expect(out.failure).toMatch(/did not answer within 60 s.*docker start, never rm/);
    expect(harness.callsOf("deployEntriesAndTokens")).toHaveLength(0);
    expect(harness.callsOf("reattestApplyToken")).toHaveLength(0);
    // It looked at the container once (a run-command only because the server did not answer).
    expect(harness.callsOf("deployStartServer")).toHaveLength(1);
    expect(harness.callsOf("deployRecord")).toMatchObject([{ outcome: "failed", spireAccess: "grpc" }]);
  });

  it("records the deploy's own ledger row: outcome, totals, step times, each app's outcome", async () => {
    await run(5);
    const [row] = harness.callsOf("deployRecord") as Array<Record<string, unknown>>;
    expect(row).toMatchObject({
      outcome: "partial",
      reason: "ship alpha:2",
      totals: { apps: 4, succeeded: 2, failed: 1, skipped: 1, tokenCount: 3 },
      apps: expect.arrayContaining([{ app: "gamma", outcome: "failed", reason: expect.any(String) }]),
    });
    expect(Object.keys(row?.stepSeconds as object)).toEqual(
      expect.arrayContaining(["discover", "server", "trust", "entries", "reattest", "verify"]),
    );
  });

  it("by run-command: 3 deploy-wide SPIRE steps (probe, batch with its diff, rollover); the children make no SPIRE call", async () => {
    const s = await run(5, {}, "run-command");
    expect(s.runtimeStatus).toBe("Completed");
    const out = s.output as DeployOutput;
    expect(out.apps.map((a) => [a.app, a.outcome])).toEqual([
      ["alpha", "succeeded"],
      ["beta", "succeeded"],
      ["gamma", "failed"],
      ["plain", "skipped"],
    ]);
    expect(out.apps.find((a) => a.app === "gamma")?.reason).toMatch(/did not attest/);
    expect(out.apps.find((a) => a.app === "alpha")?.reason).toBe("attested; workload SVID signed");
    // Every SPIRE-touching activity, counted: one probe, one batch, one rollover for all apps.
    expect(harness.callsOf("deployProbe")).toHaveLength(1);
    expect(harness.callsOf("deployServerHealth")).toHaveLength(0);
    expect(harness.callsOf("bundleSync")).toHaveLength(0);
    expect(harness.callsOf("deployEntriesAndTokens")).toMatchObject([
      { diff: { delete: ["spire-autopilot.ghost"] } },
    ]);
    const [rollover] = harness.callsOf("deployRollover") as Array<{
      apps: Array<{ app: string; tokenSha256: string }>;
    }>;
    expect(harness.callsOf("deployRollover")).toHaveLength(1);
    expect(rollover?.apps.map((a) => [a.app, a.tokenSha256]).sort()).toEqual(APPS.map((a) => [a, sha(a)]));
    expect(harness.callsOf("reattestVerify")).toHaveLength(0);
    expect(harness.callsOf("reattestEvictOld")).toHaveLength(0);
    expect(harness.callsOf("reattestPrepare")).toEqual(
      expect.arrayContaining(APPS.map((app) => ({ app, skipSpire: true }))),
    );
    // The rotation is still recorded in the fleet table, from the probe's sync.
    expect(harness.callsOf("bundleRecord")).toMatchObject([{ trigger: "deploy", action: "first-write" }]);
    expect(harness.callsOf("deployRecord")).toMatchObject([
      { spireAccess: "run-command", outcome: "partial" },
    ]);
  });

  it("by run-command: an SVID not signed yet at the rollover is checked again in the logs (no run-command) until it is", async () => {
    const s = await run(
      5,
      {
        deployRollover: (i) =>
          ok({
            apps: (i as { apps: Array<{ app: string }> }).apps.map(({ app }) => ({
              app,
              agentAttested: true,
              evicted: 0,
              stale: 0,
              svidSigned: app !== "beta",
            })),
          }),
        deploySvidCheck: (i, n) =>
          ok({
            apps: (i as { apps: Array<{ app: string }> }).apps.map(({ app }) => ({
              app,
              svidSigned: n >= 2,
            })),
          }),
      },
      "run-command",
    );
    const out = s.output as DeployOutput;
    expect(out.apps.find((a) => a.app === "beta")).toMatchObject({
      outcome: "succeeded",
      reason: "attested; workload SVID signed",
    });
    // Only the unsigned app is checked again, twice (not yet, then signed), and no more rollovers.
    expect(harness.callsOf("deploySvidCheck")).toEqual([
      expect.objectContaining({ apps: [{ app: "beta", workloadId: "spiffe://td/ests/bp/b/aid/beta" }] }),
      expect.objectContaining({ apps: [{ app: "beta", workloadId: "spiffe://td/ests/bp/b/aid/beta" }] }),
    ]);
    expect(harness.callsOf("deployRollover")).toHaveLength(1);
  });

  it("by run-command: a stopped server container is started once (docker start), then the deploy goes on", async () => {
    const s = await run(
      5,
      {
        deployProbe: (_i, n) =>
          n >= 2
            ? stubs().deployProbe!(_i, n)
            : ok({ healthy: false, detail: "container is not running", container: "stopped" }),
        deployStartServer: () => ok({ started: true, detail: "docker start exited 0" }),
      },
      "run-command",
    );
    expect(s.runtimeStatus).toBe("Completed");
    expect(harness.callsOf("deployStartServer")).toHaveLength(1);
    expect(harness.callsOf("deployProbe")).toHaveLength(2);
    expect((s.customStatus as DeployStatus).serverStarted).toBe(true);
    expect((s.output as DeployOutput).totals.succeeded).toBe(2);
  });
});
