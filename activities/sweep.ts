import type { InvocationContext } from "@azure/functions";
import * as df from "durable-functions";
import { z } from "zod";
import { classifyFleet } from "../shared/health/classify.js";
import {
  FLEET_STATE_PARTITION,
  readFleetState,
  readLastSweep,
  recentlyReattested,
  SWEEP_LATEST_ROW,
  SWEEP_PARTITION,
  upsertRows,
  verdictRows,
} from "../shared/health/fleet-state.js";
import { gatherSnapshot, probeServer, probeTimeoutSeconds } from "../shared/health/gather.js";
import { repairBudget, sweepPolicy } from "../shared/health/policy.js";
import { planRepairs } from "../shared/health/repairs.js";
import { restartServerContainer } from "../shared/health/server-restart.js";
import type { LogSink } from "../shared/logging.js";
import type { Services } from "../shared/services.js";
import { getFleetMetrics } from "../shared/telemetry/fleetMetrics.js";
import {
  type ActivityResult,
  SweepActivities,
  type SweepObserveInput,
  type SweepObserveOutput,
  type SweepProbeOutput,
  type SweepRecordInput,
  type SweepRestartInput,
  type SweepRestartOutput,
} from "./contracts.js";
import { runActivity, sha256Hex } from "./run.js";

/*
 * The health sweep's side effects. sweepObserve gathers the snapshot, classifies it (pure, in
 * shared/health) and records every app's verdict in the fleet table; only counts and the plan
 * leave it, so durable history stays small however large the fleet. The other activities are the
 * server's repair (probe, restart) and the sweep's summary.
 */

const sweepId = z.string().min(1).max(200);
const isoTime = z.string().refine((s) => !Number.isNaN(Date.parse(s)), { message: "not an ISO time" });
const serverVerdict = z.enum(["healthy", "unreachable", "hung", "ca-reset"]);
const counts = z.record(z.string(), z.number().int().min(0));

const ObserveSchema = z.object({ sweepId, mode: z.enum(["repair", "observe"]) });

export function policyOf(config: Services["config"]) {
  return sweepPolicy({
    workloadX509TtlSeconds: config.apps.workloadX509TtlSeconds,
    agentSvidTtlSeconds: config.sweep.agentSvidTtlSeconds,
    logIngestionDelaySeconds: config.sweep.logIngestionDelaySeconds,
    healthSweepSchedule: config.schedules.healthSweep,
    ...(config.sweep.maxRepairs !== undefined ? { maxRepairs: config.sweep.maxRepairs } : {}),
    cooldownSeconds: config.alerts.cooldownSeconds,
  });
}

export function sweepObserve(
  input: SweepObserveInput,
  services?: Services,
  sink?: LogSink,
): Promise<ActivityResult<SweepObserveOutput>> {
  return runActivity(
    SweepActivities.sweepObserve,
    ObserveSchema,
    input,
    services,
    sink,
    async (i, s, log) => {
      const policy = policyOf(s.config);
      const gathered = await gatherSnapshot(s, policy);
      const now = new Date();
      const health = classifyFleet(gathered.snapshot, now, policy);

      const table = await s.fleetTable();
      const [previous, reattested, last] = await Promise.all([
        readFleetState(table),
        recentlyReattested(table, new Date(now.getTime() - policy.cooldownSeconds * 1000)),
        readLastSweep(table),
      ]);
      const cooldownStart = now.getTime() - policy.cooldownSeconds * 1000;
      const cooling = new Set(reattested);
      for (const [app, p] of previous) {
        if (p.lastActionAt && Date.parse(p.lastActionAt) >= cooldownStart) cooling.add(app);
      }
      const managedApps = (gathered.snapshot.apps ?? []).filter((a) => a.managed).length;
      const plan = planRepairs(health, {
        mode: i.mode,
        budget: repairBudget(policy, managedApps),
        cooling,
      });

      // Gauges for Azure Monitor: a workload SVID lives its entry's TTL from its last signing.
      getFleetMetrics().recordSweep(
        health.apps.map((a) => ({
          app: a.app,
          verdict: a.verdict,
          agentExpiresAt: a.agentExpiresAt,
          workloadExpiresAt: a.lastSignedAt
            ? new Date(a.lastSignedAt.getTime() + policy.workloadTtlSeconds * 1000)
            : undefined,
        })),
        [],
      );
      const rows = verdictRows(health.apps, previous, now, i.sweepId);
      await upsertRows(table, [...rows.states, ...rows.events]);
      for (const e of rows.events) {
        log.info("verdict changed", {
          app: e.app,
          from: e.from ?? "(first sweep)",
          to: e.to,
          reason: e.reason,
        });
      }
      const deferred: Record<string, number> = {};
      for (const d of plan.deferred) deferred[d.why] = (deferred[d.why] ?? 0) + 1;
      const verdictOf = new Map(health.apps.map((a) => [a.app, a.verdict]));
      const probe = gathered.snapshot.server;
      const out: SweepObserveOutput = {
        takenAt: now.toISOString(),
        server: health.server,
        knownFingerprints:
          probe.state === "healthy"
            ? probe.bundleFingerprints
            : (last?.fingerprints ?? gathered.snapshot.vaultFingerprints ?? []),
        appsListed: health.appsListed,
        managedApps,
        counts: health.counts,
        calls: { ...gathered.calls, fleetTableReads: 3, fleetTableWrites: 1 },
        problems: gathered.problems,
        plan: {
          serverAction: plan.serverAction,
          reattest: plan.reattest.map((app) => ({ app, verdict: verdictOf.get(app) ?? "unknown" })),
          deferred,
        },
        changes: rows.events.length,
      };
      log.info("sweep observed", {
        server: health.server.verdict,
        counts: health.counts,
        serverAction: plan.serverAction,
        reattest: plan.reattest.length,
        calls: out.calls,
      });
      return out;
    },
  );
}

export function sweepProbeServer(
  input: unknown,
  services?: Services,
  sink?: LogSink,
): Promise<ActivityResult<SweepProbeOutput>> {
  return runActivity(SweepActivities.sweepProbeServer, z.unknown(), input, services, sink, async (_i, s) => {
    const calls = { serverHealth: 0, getBundle: 0 };
    const probe = await probeServer(() => s.spire(), probeTimeoutSeconds(s.config), calls);
    return probe.state === "healthy"
      ? { state: "healthy", detail: "healthy", fingerprints: probe.bundleFingerprints }
      : { state: probe.state, detail: probe.detail, fingerprints: [] };
  });
}

export function sweepRestartServer(
  input: SweepRestartInput,
  services?: Services,
  sink?: LogSink,
): Promise<ActivityResult<SweepRestartOutput>> {
  return runActivity(
    SweepActivities.sweepRestartServer,
    z.object({ sweepId }),
    input,
    services,
    sink,
    async (_i, s, log) => {
      const result = await restartServerContainer(s, log);
      log.warn("restarted the SPIRE server's container", { ...result });
      return result;
    },
  );
}

const RecordSchema = z.object({
  sweepId,
  trigger: z.string().min(1).max(40),
  mode: z.enum(["repair", "observe"]),
  startedAt: isoTime,
  finishedAt: isoTime,
  server: z.object({ verdict: serverVerdict, reason: z.string().transform((r) => r.slice(0, 2000)) }),
  serverAction: z.enum(["none", "restart-server", "rotate-and-reattest-all"]),
  serverActionOutcome: z
    .string()
    .transform((r) => r.slice(0, 2000))
    .optional(),
  serverFingerprints: z
    .array(z.string().regex(/^[0-9a-f]{64}$/))
    .max(1000)
    .optional(),
  counts,
  calls: counts,
  actions: z
    .array(
      z.object({
        app: z.string().min(1).max(64),
        action: z.literal("reattest"),
        verdict: z.string().max(40),
        outcome: z.string().max(40),
        svidSigned: z.union([z.boolean(), z.literal("unknown")]).optional(),
        failure: z
          .string()
          .transform((f) => f.slice(0, 2000))
          .optional(),
      }),
    )
    .max(10_000),
});

export function sweepRecord(
  input: SweepRecordInput,
  services?: Services,
  sink?: LogSink,
): Promise<ActivityResult<{ rows: number }>> {
  return runActivity(SweepActivities.sweepRecord, RecordSchema, input, services, sink, async (i, s, log) => {
    const table = await s.fleetTable();
    const summary = {
      sweepId: i.sweepId,
      trigger: i.trigger,
      mode: i.mode,
      startedAt: i.startedAt,
      finishedAt: i.finishedAt,
      server: i.server.verdict,
      serverReason: i.server.reason,
      serverAction: i.serverAction,
      serverActionOutcome: i.serverActionOutcome ?? "",
      counts: JSON.stringify(i.counts),
      calls: JSON.stringify(i.calls),
      repairs: i.actions.length,
      actions: JSON.stringify(i.actions).slice(0, 30_000),
      ...(i.serverFingerprints && i.server.verdict !== "hung" && i.server.verdict !== "unreachable"
        ? { serverFingerprints: JSON.stringify(i.serverFingerprints) }
        : {}),
    };
    const rows = [
      { partitionKey: SWEEP_PARTITION, rowKey: SWEEP_LATEST_ROW, ...summary },
      {
        partitionKey: SWEEP_PARTITION,
        rowKey: `run_${new Date(i.finishedAt).toISOString()}_${sha256Hex(i.sweepId).slice(0, 16)}`,
        ...summary,
      },
      ...i.actions.map((a) => ({
        partitionKey: FLEET_STATE_PARTITION,
        rowKey: a.app,
        lastAction: a.action,
        lastActionAt: i.finishedAt,
        lastActionVerdict: a.verdict,
        lastActionOutcome: a.outcome,
        lastActionFailure: a.failure ?? "",
      })),
    ];
    await upsertRows(table, rows);
    getFleetMetrics().recordRepairs(
      i.actions.filter((a) => a.outcome !== "not-started").map((a) => ({ app: a.app, action: a.action })),
    );
    if (i.serverAction !== "none")
      getFleetMetrics().recordRepairs([{ app: "(server)", action: i.serverAction }]);
    log.info("sweep recorded", { sweepId: i.sweepId, server: i.server.verdict, repairs: i.actions.length });
    return { rows: rows.length };
  });
}

type Handler<I, O> = (input: I, services?: Services, sink?: LogSink) => Promise<ActivityResult<O>>;

function register<I, O>(name: string, handler: Handler<I, O>): void {
  df.app.activity(name, {
    handler: (input: unknown, context: InvocationContext) => handler(input as I, undefined, context),
  });
}

/** Registers every activity of the healthSweep orchestration with the Functions host. */
export function registerSweepActivities(): void {
  register(SweepActivities.sweepObserve, sweepObserve);
  register(SweepActivities.sweepProbeServer, sweepProbeServer);
  register(SweepActivities.sweepRestartServer, sweepRestartServer);
  register(SweepActivities.sweepRecord, sweepRecord);
}
