import type { OperationSummary } from "../operations/summary.js";
import type { FleetRow, SweepSummary } from "./schema.js";

/*
 * The fleet as an operator sees it: every managed or skipped app (from discovery, so a new app
 * shows before its first sweep) joined with the sweep's row, its latest operation and cooldown.
 * Pure: the trigger gathers the parts, this decides what each app shows.
 */

export interface BundleSide {
  fingerprints?: string[];
  earliestExpiry?: string;
  latestExpiry?: string;
  version?: string;
  error?: string;
}

export interface FleetInputs {
  now: number;
  cooldownSeconds: number;
  managed: string[];
  skipped: Array<{ name: string; reason: string }>;
  rows: FleetRow[];
  summary: SweepSummary | undefined;
  /** Running and recent operations, any kind. */
  operations: OperationSummary[];
  bundle: { server: BundleSide | null; vault: BundleSide | null; match: boolean | null };
  adminSvidExpiresAt: string | null;
}

export interface FleetApp {
  app: string;
  managed: boolean;
  /** Why the app is not managed, for skipped apps. */
  skipped: string | null;
  /** The sweep's verdict, or "not-swept" before the first sweep saw the app. */
  verdict: string;
  reason: string | null;
  since: string | null;
  agentSha256: string | null;
  agentExpiresAt: string | null;
  workloadExpiresAt: string | null;
  lastSignedAt: string | null;
  lastRun: {
    id: string;
    kind: string;
    outcome: string | null;
    finishedAt: string;
    failure: string | null;
  } | null;
  cooldownRemainingSeconds: number;
  running: { id: string; kind: string; step: string | null } | null;
}

export interface FleetView {
  generatedAt: string;
  server: {
    verdict: string;
    reason: string | null;
    roots: { fingerprints: string[]; earliestExpiry: string | null; latestExpiry: string | null } | null;
    vault: { version: string | null; matches: boolean | null };
    adminSvidExpiresAt: string | null;
    lastSweep: { at: string; mode: string; instanceId: string | null } | null;
    errors: string[];
  };
  apps: FleetApp[];
  counts: Record<string, number>;
  running: OperationSummary[];
}

const orNull = <T>(v: T | undefined): T | null => (v === undefined ? null : v);

/** A row the sweep wrote before it last saw the app is still the latest verdict; none is "not-swept". */
function appView(
  app: string,
  skipped: string | null,
  row: FleetRow | undefined,
  ops: OperationSummary[],
  now: number,
  cooldownSeconds: number,
): FleetApp {
  // Per-app runs name their app; a fleet-wide run (deploy, sweep) shows on the server card.
  const mine = ops.filter((o) => o.app === app);
  const running = mine.find((o) => o.running);
  const finished = mine
    .filter((o) => !o.running)
    .sort((a, b) => b.lastUpdatedTime.localeCompare(a.lastUpdatedTime))[0];
  const sinceFinish = finished
    ? (now - Date.parse(finished.lastUpdatedTime)) / 1000
    : Number.POSITIVE_INFINITY;
  return {
    app,
    managed: skipped === null,
    skipped,
    verdict: skipped !== null ? "skipped" : (row?.verdict ?? "not-swept"),
    reason: skipped ?? orNull(row?.reason),
    since: orNull(row?.since),
    agentSha256: orNull(row?.agentSha256),
    agentExpiresAt: orNull(row?.agentExpiresAt),
    workloadExpiresAt: orNull(row?.workloadExpiresAt),
    lastSignedAt: orNull(row?.lastSignedAt),
    lastRun: finished
      ? {
          id: finished.id,
          kind: finished.kind,
          outcome: finished.outcome ?? finished.runtimeStatus,
          finishedAt: finished.lastUpdatedTime,
          failure: finished.failure,
        }
      : null,
    cooldownRemainingSeconds: Math.max(0, Math.ceil(cooldownSeconds - sinceFinish)),
    running: running ? { id: running.id, kind: running.kind, step: running.step } : null,
  };
}

export function buildFleetView(i: FleetInputs): FleetView {
  const rowsByApp = new Map(i.rows.map((r) => [r.app, r]));
  const apps = [
    ...i.managed.map((name) =>
      appView(name, null, rowsByApp.get(name), i.operations, i.now, i.cooldownSeconds),
    ),
    ...i.skipped.map((s) => appView(s.name, s.reason, undefined, i.operations, i.now, i.cooldownSeconds)),
  ].sort((a, b) => a.app.localeCompare(b.app));
  const counts: Record<string, number> = {};
  for (const a of apps) counts[a.verdict] = (counts[a.verdict] ?? 0) + 1;
  const server = i.bundle.server;
  const errors = [
    ...(server?.error ? [`server bundle: ${server.error}`] : []),
    ...(i.bundle.vault?.error ? [`Key Vault bundle: ${i.bundle.vault.error}`] : []),
  ];
  return {
    generatedAt: new Date(i.now).toISOString(),
    server: {
      verdict: i.summary?.serverVerdict ?? (server && !server.error ? "not-swept" : "unknown"),
      reason: orNull(i.summary?.serverReason),
      roots:
        server && !server.error
          ? {
              fingerprints: server.fingerprints ?? [],
              earliestExpiry: orNull(server.earliestExpiry),
              latestExpiry: orNull(server.latestExpiry),
            }
          : null,
      vault: { version: orNull(i.bundle.vault?.version), matches: i.bundle.match },
      adminSvidExpiresAt: i.adminSvidExpiresAt,
      lastSweep: i.summary
        ? { at: i.summary.at, mode: i.summary.mode, instanceId: orNull(i.summary.instanceId) }
        : null,
      errors,
    },
    apps,
    counts,
    running: i.operations.filter((o) => o.running),
  };
}
