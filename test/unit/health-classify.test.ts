import { describe, expect, it } from "vitest";
import { type AppVerdictKind, classifyFleet, type ServerVerdictKind } from "../../shared/health/classify.js";
import { repairBudget, scheduleIntervalSeconds, sweepPolicy } from "../../shared/health/policy.js";
import { planRepairs } from "../../shared/health/repairs.js";
import type { SnapshotLogs, SweepSnapshot } from "../../shared/health/snapshot.js";

const NOW = new Date("2026-12-01T12:00:00Z");
const S = 1000;
const ago = (seconds: number) => new Date(NOW.getTime() - seconds * S);
const inS = (seconds: number) => new Date(NOW.getTime() + seconds * S);

// Agent and workload TTL 600 s: renewals due by 0.6 * 600 + 10 = 370 s after issue; logs up to
// 60 s late; sweeps every 5 minutes.
const policy = sweepPolicy({
  workloadX509TtlSeconds: 600,
  agentSvidTtlSeconds: 600,
  logIngestionDelaySeconds: 60,
  healthSweepSchedule: "0 */5 * * * *",
  cooldownSeconds: 900,
});

const ROOT = "a".repeat(64);

interface AppFacts {
  /** Seconds since the agent's SVID was issued (undefined: no agent holds the alias). */
  agentAge?: number;
  /** Seconds since the workload's last signing (undefined: none in the window). */
  signedAgo?: number;
  failures?: { count: number; secondsAgo: number; revision: string };
  latestRevision?: string;
  deployed?: boolean;
  entryTtl?: number;
}

function snapshotOf(
  apps: Record<string, AppFacts>,
  extra: { logs?: Partial<SnapshotLogs> | null; server?: SweepSnapshot["server"]; vault?: string[] } = {},
): SweepSnapshot {
  const snap: SweepSnapshot = {
    apps: [],
    agents: [],
    entries: [],
    server: extra.server ?? { state: "healthy", bundleFingerprints: [ROOT] },
    vaultFingerprints: extra.vault ?? [ROOT],
  };
  const logs: SnapshotLogs = {
    complete: true,
    signings: new Map(),
    renewals: new Map(),
    failures: new Map(),
    ...(extra.logs ?? {}),
  };
  if (extra.logs !== null) snap.logs = logs;
  for (const [name, f] of Object.entries(apps)) {
    const alias = `spiffe://td/agent/${name}`;
    const workloadId = `spiffe://td/w/${name}`;
    snap.apps!.push({
      name,
      managed: true,
      alias,
      workloadId,
      latestRevision: f.latestRevision ?? `${name}--r1`,
      restartCount: 0,
    });
    if (f.deployed === false) continue;
    const ref = `ref-${name}`;
    snap.entries!.push({ spiffeId: alias, parent: ref, x509SvidTtl: 0 });
    snap.entries!.push({ spiffeId: workloadId, parent: alias, x509SvidTtl: f.entryTtl ?? 0 });
    if (f.agentAge !== undefined) {
      snap.agents!.push({ ref, expiresAt: inS(600 - f.agentAge), banned: false });
    }
    if (f.signedAgo !== undefined) logs.signings.set(workloadId, { lastAt: ago(f.signedAgo), count: 3 });
    if (f.failures) {
      logs.failures.set(name, {
        count: f.failures.count,
        lastAt: ago(f.failures.secondsAgo),
        revision: f.failures.revision,
      });
    }
  }
  return snap;
}

const healthy: AppFacts = { agentAge: 100, signedAgo: 100 };

describe("sweepPolicy: thresholds from the TTLs in play", () => {
  it.each([
    ["0 */5 * * * *", 300],
    ["0 0 * * * *", 3600],
    ["*/30 * * * * *", 30],
    ["0 0,10 * * * *", 3000],
  ])("schedule %s fires at most every %i s", (schedule, seconds) => {
    expect(scheduleIntervalSeconds(schedule)).toBe(seconds);
  });

  it("the window covers a whole renewal interval, the ingestion delay and a sweep interval", () => {
    expect(policy.latestRenewalFraction).toBeCloseTo(0.6);
    expect(policy.renewalGraceSeconds).toBe(10);
    expect(policy.windowSeconds).toBe(Math.ceil(600 * 0.6 + 10 + 60 + 300));
  });

  it.each([
    [undefined, 1, 1],
    [undefined, 4, 1],
    [undefined, 10, 2],
    [undefined, 10_000, 2000],
    [7, 10_000, 7],
  ])("budget: SWEEP_MAX_REPAIRS=%s over %i apps is %i", (max, fleet, budget) => {
    expect(repairBudget(max === undefined ? {} : { maxRepairs: max }, fleet)).toBe(budget);
  });
});

describe("classifyFleet: per-app verdicts", () => {
  it.each<[string, AppFacts, AppVerdictKind, RegExp]>([
    ["renewed on time", healthy, "healthy", /on time/],
    [
      "agent renewed 369 s ago (within 0.6 TTL + grace)",
      { agentAge: 369, signedAgo: 100 },
      "healthy",
      /on time/,
    ],
    [
      "agent SVID not renewed after 0.6 TTL + grace",
      { agentAge: 371, signedAgo: 100 },
      "agent-silent",
      /due/,
    ],
    ["agent SVID expired", { agentAge: 700, signedAgo: 100 }, "agent-silent", /expired/],
    [
      "workload signed 420 s ago: due by 370 + 60 s lag",
      { agentAge: 100, signedAgo: 420 },
      "healthy",
      /on time/,
    ],
    ["workload signed 431 s ago: overdue", { agentAge: 100, signedAgo: 431 }, "renewal-stalled", /was due/],
    ["no signing in the window", { agentAge: 300 }, "renewal-stalled", /no workload SVID signed/],
    ["no signing, agent renewed seconds ago", { agentAge: 20 }, "healthy", /not ingested yet/],
    ["no agent holds the alias", { signedAgo: 100 }, "unattested", /no agent holds/],
    [
      "sidecar failures in the running revision since the agent's SVID",
      { agentAge: 300, signedAgo: 100, failures: { count: 4, secondsAgo: 30, revision: "x--r1" } },
      "token-spent",
      /4 attestation failures/,
    ],
    [
      "failures in an older revision (repaired since)",
      {
        agentAge: 100,
        signedAgo: 100,
        latestRevision: "x--r2",
        failures: { count: 4, secondsAgo: 30, revision: "x--r1" },
      },
      "healthy",
      /on time/,
    ],
    [
      "failures older than the agent's SVID (before it attested)",
      { agentAge: 100, signedAgo: 100, failures: { count: 1, secondsAgo: 200, revision: "x--r1" } },
      "healthy",
      /on time/,
    ],
    ["no SPIRE entries at all", { deployed: false }, "not-deployed", /no SPIRE entry/],
    [
      "entry TTL longer than the window shows, no signing",
      { agentAge: 100, entryTtl: 86_400 },
      "unknown",
      /renews less often/,
    ],
  ])("%s → %s", (_what, facts, verdict, reason) => {
    const result = classifyFleet(snapshotOf({ x: facts }), NOW, policy);
    expect(result.apps[0]).toMatchObject({ app: "x", verdict });
    expect(result.apps[0]!.reason).toMatch(reason);
  });

  it.each<[string, Parameters<typeof snapshotOf>[1], AppVerdictKind]>([
    ["logs answered PartialError", { logs: { complete: false, problem: "PartialError" } }, "unknown"],
    ["no workspace", { logs: null }, "unknown"],
  ])("%s → every deployed app is %s", (_what, extra, verdict) => {
    const result = classifyFleet(snapshotOf({ a: healthy, b: { agentAge: 500 } }, extra), NOW, policy);
    expect(result.apps.map((a) => a.verdict)).toEqual([verdict, verdict]);
  });

  it("agents or entries not listed → unknown; an app the model refuses → unmanageable with its reason", () => {
    const snap = snapshotOf({ a: healthy });
    delete snap.agents;
    snap.apps!.push({ name: "b", managed: false, reason: "no container reads JOIN_TOKEN" });
    const result = classifyFleet(snap, NOW, policy);
    expect(result.apps).toMatchObject([
      { app: "a", verdict: "unknown" },
      { app: "b", verdict: "unmanageable", reason: "no container reads JOIN_TOKEN" },
    ]);
    expect(result.counts).toMatchObject({ unknown: 1, unmanageable: 1, healthy: 0 });
  });

  it("apps not listed: no verdicts, and the result says so", () => {
    const snap = snapshotOf({ a: healthy });
    delete snap.apps;
    expect(classifyFleet(snap, NOW, policy)).toMatchObject({ apps: [], appsListed: false });
  });
});

describe("classifyFleet: the server's verdict", () => {
  const fleet = { a: healthy, b: healthy, c: healthy, d: healthy };
  const stalledFleet = {
    a: { agentAge: 100, signedAgo: 500 },
    b: { agentAge: 100, signedAgo: 480 },
    c: { agentAge: 100, signedAgo: 460 },
    // Signed 10 s ago, after the first of the others was due (70 s ago).
    d: { agentAge: 100, signedAgo: 10 },
  };
  it.each<[string, Record<string, AppFacts>, Parameters<typeof snapshotOf>[1], ServerVerdictKind]>([
    ["answers, bundle holds the vault's root", fleet, {}, "healthy"],
    ["API deadline exceeded", fleet, { server: { state: "timeout", detail: "DEADLINE_EXCEEDED" } }, "hung"],
    [
      "connection refused",
      fleet,
      { server: { state: "unreachable", detail: "ECONNREFUSED" } },
      "unreachable",
    ],
    ["none of the vault's roots in the bundle", fleet, { vault: ["b".repeat(64)] }, "ca-reset"],
    ["one of two vault roots still there", fleet, { vault: ["b".repeat(64), ROOT] }, "healthy"],
    ["no vault bundle yet: cannot tell a reset", fleet, { vault: [] }, "healthy"],
    ["3 of 4 overdue, one signed since: not the server", stalledFleet, {}, "healthy"],
    [
      "3 of 4 overdue, nothing signed since the first was due",
      { ...stalledFleet, d: { agentAge: 100, signedAgo: 500 } },
      {},
      "hung",
    ],
    ["1 of 4 overdue", { ...fleet, a: { agentAge: 100, signedAgo: 500 } }, {}, "healthy"],
  ])("%s → %s", (_what, apps, extra, verdict) => {
    expect(classifyFleet(snapshotOf(apps, extra), NOW, policy).server.verdict).toBe(verdict);
  });
});

describe("planRepairs: the safety rails", () => {
  const mixed = {
    a: healthy,
    b: { agentAge: 400, signedAgo: 100 },
    c: { signedAgo: 100 },
    d: { agentAge: 100, signedAgo: 500 },
    e: { agentAge: 300, signedAgo: 100, failures: { count: 2, secondsAgo: 10, revision: "e--r1" } },
    f: { deployed: false },
  };
  const cases: Array<[string, Parameters<typeof snapshotOf>[1], Parameters<typeof planRepairs>[1], object]> =
    [
      [
        "healthy server: most certain first, within the budget",
        {},
        { mode: "repair", budget: 2, cooling: new Set() },
        { serverAction: "none", reattest: ["e", "c"] },
      ],
      [
        "an app in its cooldown is skipped, the next one takes its place",
        {},
        { mode: "repair", budget: 2, cooling: new Set(["e"]) },
        { serverAction: "none", reattest: ["c", "b"] },
      ],
      [
        "observe: nothing",
        {},
        { mode: "observe", budget: 10, cooling: new Set() },
        { serverAction: "none", reattest: [] },
      ],
      [
        "hung server: restart it, re-attest nobody",
        { server: { state: "timeout", detail: "deadline" } },
        { mode: "repair", budget: 10, cooling: new Set() },
        { serverAction: "restart-server", reattest: [] },
      ],
      [
        "unreachable server: nothing",
        { server: { state: "unreachable", detail: "refused" } },
        { mode: "repair", budget: 10, cooling: new Set() },
        { serverAction: "none", reattest: [] },
      ],
      [
        "CA reset: rotate, then every managed app (a wiped server lost the entries) regardless of budget and cooldown",
        { vault: ["b".repeat(64)] },
        { mode: "repair", budget: 1, cooling: new Set(["a"]) },
        { serverAction: "rotate-and-reattest-all", reattest: ["a", "b", "c", "d", "e", "f"] },
      ],
      [
        "partial logs: every app unknown, nothing started",
        { logs: { complete: false, problem: "PartialError" } },
        { mode: "repair", budget: 10, cooling: new Set() },
        { serverAction: "none", reattest: [], deferred: [] },
      ],
    ];
  it.each(cases)("%s", (_what, extra, input, expected) => {
    const plan = planRepairs(classifyFleet(snapshotOf(mixed, extra), NOW, policy), input);
    expect(plan).toMatchObject(expected);
  });

  it("deferred apps say why", () => {
    const plan = planRepairs(classifyFleet(snapshotOf(mixed), NOW, policy), {
      mode: "repair",
      budget: 1,
      cooling: new Set(["c"]),
    });
    expect(plan.reattest).toEqual(["e"]);
    expect(plan.deferred).toEqual([
      { app: "c", verdict: "unattested", why: "cooldown" },
      { app: "b", verdict: "agent-silent", why: "budget" },
      { app: "d", verdict: "renewal-stalled", why: "budget" },
    ]);
  });
});
