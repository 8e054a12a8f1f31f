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

const input = (maxParallel: number): DeployInput => ({
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

function run(maxParallel: number, over?: Record<string, ActivityStub>) {
  harness = new ReplayHarness({
    orchestrations: {
      [DEPLOY_ORCHESTRATION]: deployOrchestrator,
      [REATTEST_ORCHESTRATION]: reattestOrchestrator,
      [ROTATE_BUNDLE_ORCHESTRATION]: rotateBundleOrchestrator,
    },
    activities: stubs(over),
    timeScale: 100,
  });
  return harness.run(DEPLOY_ORCHESTRATION, input(maxParallel), DEPLOY_INSTANCE_ID, 60_000);
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
  });
});
