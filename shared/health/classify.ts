import type { SweepPolicy } from "./policy.js";
import { HUNG_MIN_OVERDUE, HUNG_OVERDUE_FRACTION } from "./policy.js";
import type { SnapshotAgent, SnapshotApp, SnapshotEntry, SweepSnapshot } from "./snapshot.js";

/*
 * The health classifier: a snapshot, the time and the policy in, one verdict per app and one for
 * the server out. Pure: the sweep's activity gathers the snapshot, this decides. A verdict needing
 * data the snapshot lacks (a failed call, partial logs) is `unknown`, never a guess, and nothing
 * acts on `unknown`.
 */

export type AppVerdictKind =
  | "healthy"
  /** The workload's SVID was due for renewal and was not signed. */
  | "renewal-stalled"
  /** The agent's own SVID missed its renewal: the agent process is dead or frozen (#18). */
  | "agent-silent"
  /** The sidecar fails to attest or crash-loops: its join token is spent or expired. */
  | "token-spent"
  /** No agent holds the app's alias. */
  | "unattested"
  /** Tagged as managed but never deployed (no SPIRE entries for it). */
  | "not-deployed"
  /** Tagged as managed but the app model refuses it (reason says why). */
  | "unmanageable"
  | "unknown";

export type ServerVerdictKind = "healthy" | "unreachable" | "hung" | "ca-reset";

export const APP_VERDICTS: readonly AppVerdictKind[] = [
  "healthy",
  "renewal-stalled",
  "agent-silent",
  "token-spent",
  "unattested",
  "not-deployed",
  "unmanageable",
  "unknown",
];

export interface AppHealth {
  app: string;
  verdict: AppVerdictKind;
  /** Why, for a person. */
  reason: string;
  lastSignedAt?: Date;
  agentExpiresAt?: Date;
  /** When the renewal that did not happen was due, for stalled and silent verdicts. */
  dueAt?: Date;
}

export interface ServerHealth {
  verdict: ServerVerdictKind;
  reason: string;
}

export interface FleetHealth {
  server: ServerHealth;
  apps: AppHealth[];
  counts: Record<AppVerdictKind, number>;
  /** False when the apps could not be listed: no app has a verdict, which is not "all healthy". */
  appsListed: boolean;
}

const S = 1000;

interface Index {
  entriesById: Map<string, SnapshotEntry[]>;
  agentsByRef: Map<string, SnapshotAgent>;
}

function index(snapshot: SweepSnapshot): Index | undefined {
  if (!snapshot.entries || !snapshot.agents) return undefined;
  const entriesById = new Map<string, SnapshotEntry[]>();
  for (const e of snapshot.entries) {
    const list = entriesById.get(e.spiffeId);
    if (list) list.push(e);
    else entriesById.set(e.spiffeId, [e]);
  }
  const agentsByRef = new Map<string, SnapshotAgent>();
  for (const a of snapshot.agents) agentsByRef.set(a.ref, a);
  return { entriesById, agentsByRef };
}

/** The latest moment a healthy renewal of an SVID issued at `issuedMs` with this TTL has happened. */
function latestRenewal(issuedMs: number, ttlSeconds: number, policy: SweepPolicy): number {
  return issuedMs + (ttlSeconds * policy.latestRenewalFraction + policy.renewalGraceSeconds) * S;
}

function classifyManaged(
  app: Extract<SnapshotApp, { managed: true }>,
  snapshot: SweepSnapshot,
  idx: Index | undefined,
  nowMs: number,
  policy: SweepPolicy,
): AppHealth {
  const base = { app: app.name };
  if (!idx) {
    return {
      ...base,
      verdict: "unknown",
      reason: "the SPIRE server's agents or entries could not be listed",
    };
  }
  const aliasEntries = idx.entriesById.get(app.alias) ?? [];
  const workloadEntries = idx.entriesById.get(app.workloadId) ?? [];
  if (aliasEntries.length === 0 && workloadEntries.length === 0) {
    return { ...base, verdict: "not-deployed", reason: `no SPIRE entry for ${app.alias} or its workload` };
  }
  const logs = snapshot.logs;
  if (!logs?.complete) {
    return {
      ...base,
      verdict: "unknown",
      reason: logs
        ? `Log Analytics answered incompletely (${logs.problem ?? "partial"})`
        : "no Log Analytics workspace",
    };
  }
  const holders = aliasEntries
    .map((e) => idx.agentsByRef.get(e.parent))
    .filter((a): a is SnapshotAgent => a !== undefined && !a.banned);
  const newest = holders.reduce<SnapshotAgent | undefined>(
    (best, a) => ((a.expiresAt?.getTime() ?? 0) > (best?.expiresAt?.getTime() ?? -1) ? a : best),
    undefined,
  );
  const agentExpiresAt = newest?.expiresAt;
  const agentIssuedMs = agentExpiresAt ? agentExpiresAt.getTime() - policy.agentTtlSeconds * S : undefined;
  const signing = logs.signings.get(app.workloadId);
  const facts = {
    ...base,
    ...(signing ? { lastSignedAt: signing.lastAt } : {}),
    ...(agentExpiresAt ? { agentExpiresAt } : {}),
  };

  // Failures of the running revision after the newest agent's SVID was issued: the sidecar cannot
  // attest (a replica restarted on a spent token) and nothing healthy replaced it since.
  const failures = logs.failures.get(app.name);
  if (
    failures &&
    (app.latestRevision === undefined || failures.revision === app.latestRevision) &&
    (agentIssuedMs === undefined || failures.lastAt.getTime() > agentIssuedMs)
  ) {
    return {
      ...facts,
      verdict: "token-spent",
      reason: `${failures.count} attestation failures or crashes of the sidecar in ${failures.revision}${app.restartCount > 0 ? `, ${app.restartCount} replica restarts` : ""}`,
    };
  }
  if (!newest) {
    return { ...facts, verdict: "unattested", reason: `no agent holds ${app.alias}` };
  }
  if (!agentExpiresAt || agentIssuedMs === undefined) {
    return { ...facts, verdict: "unknown", reason: "the agent's SVID expiry is not reported" };
  }
  const agentDue = latestRenewal(agentIssuedMs, policy.agentTtlSeconds, policy);
  if (nowMs > agentDue) {
    return {
      ...facts,
      verdict: "agent-silent",
      dueAt: new Date(agentDue),
      reason:
        nowMs >= agentExpiresAt.getTime()
          ? "the agent's SVID has expired"
          : `the agent's SVID was due for renewal at ${new Date(agentDue).toISOString()} and was not renewed`,
    };
  }
  const entry = workloadEntries[0];
  if (!entry) {
    return { ...facts, verdict: "not-deployed", reason: `no workload entry for ${app.workloadId}` };
  }
  const ttl = entry.x509SvidTtl > 0 ? entry.x509SvidTtl : policy.workloadTtlSeconds;
  const lagMs = policy.ingestionDelaySeconds * S;
  if (signing) {
    const due = latestRenewal(signing.lastAt.getTime(), ttl, policy) + lagMs;
    if (nowMs > due) {
      return {
        ...facts,
        verdict: "renewal-stalled",
        dueAt: new Date(due),
        reason: `the workload SVID was due for renewal by ${new Date(due).toISOString()} and was not signed`,
      };
    }
    return { ...facts, verdict: "healthy", reason: "agent and workload SVIDs renewed on time" };
  }
  // No signing in the window: conclusive only when the window covers a whole renewal interval.
  const intervalSeconds =
    ttl * policy.latestRenewalFraction + policy.renewalGraceSeconds + policy.ingestionDelaySeconds;
  if (intervalSeconds > policy.windowSeconds) {
    return {
      ...facts,
      verdict: "unknown",
      reason: `the entry's X509 TTL (${ttl} s) renews less often than the sweep's ${policy.windowSeconds} s window shows`,
    };
  }
  // A fresh agent (just attested or renewed) may have signings not yet ingested.
  if (nowMs - agentIssuedMs < lagMs + policy.renewalGraceSeconds * S) {
    return {
      ...facts,
      verdict: "healthy",
      reason: "the agent renewed just now; its signings are not ingested yet",
    };
  }
  return {
    ...facts,
    verdict: "renewal-stalled",
    dueAt: new Date(nowMs - policy.windowSeconds * S + intervalSeconds * S),
    reason: `no workload SVID signed for ${app.workloadId} in the last ${policy.windowSeconds} s`,
  };
}

function classifyServer(snapshot: SweepSnapshot, apps: AppHealth[]): ServerHealth {
  const probe = snapshot.server;
  if (probe.state === "timeout") {
    return { verdict: "hung", reason: `the SPIRE server did not answer in time: ${probe.detail}` };
  }
  if (probe.state === "unreachable") {
    return { verdict: "unreachable", reason: `the SPIRE server cannot be reached: ${probe.detail}` };
  }
  const vault = snapshot.vaultFingerprints;
  if (vault && vault.length > 0) {
    const server = new Set(probe.bundleFingerprints);
    if (!vault.some((f) => server.has(f))) {
      return {
        verdict: "ca-reset",
        reason: `none of Key Vault's ${vault.length} roots is in the server's bundle: the server has a new CA`,
      };
    }
  }
  // Answering, yet signing nothing while many were due: a server stuck behind its API (#23).
  const logs = snapshot.logs;
  if (logs?.complete) {
    const attested = apps.filter((a) => a.agentExpiresAt !== undefined).length;
    const stalled = apps.filter((a) => a.verdict === "renewal-stalled" && a.dueAt);
    if (stalled.length >= HUNG_MIN_OVERDUE && stalled.length >= attested * HUNG_OVERDUE_FRACTION) {
      const earliestDue = Math.min(...stalled.map((a) => a.dueAt!.getTime()));
      let newestSigning = 0;
      for (const s of logs.signings.values()) newestSigning = Math.max(newestSigning, s.lastAt.getTime());
      if (newestSigning < earliestDue) {
        return {
          verdict: "hung",
          reason: `${stalled.length} of ${attested} attested workloads were due and none was signed since ${new Date(earliestDue).toISOString()}`,
        };
      }
    }
  }
  return { verdict: "healthy", reason: "the API answers and the bundle holds Key Vault's roots" };
}

export function classifyFleet(snapshot: SweepSnapshot, now: Date, policy: SweepPolicy): FleetHealth {
  const nowMs = now.getTime();
  const idx = index(snapshot);
  const apps: AppHealth[] = [];
  for (const app of snapshot.apps ?? []) {
    apps.push(
      app.managed
        ? classifyManaged(app, snapshot, idx, nowMs, policy)
        : { app: app.name, verdict: "unmanageable", reason: app.reason },
    );
  }
  const counts = Object.fromEntries(APP_VERDICTS.map((v) => [v, 0])) as Record<AppVerdictKind, number>;
  for (const a of apps) counts[a.verdict]++;
  return { server: classifyServer(snapshot, apps), apps, counts, appsListed: snapshot.apps !== undefined };
}
