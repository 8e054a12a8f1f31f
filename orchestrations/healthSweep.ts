import type * as df from "durable-functions";
import type { OrchestrationContext, OrchestrationHandler } from "durable-functions";
import {
  type SweepAction,
  SweepActivities,
  type SweepModeName,
  type SweepObserveOutput,
  type SweepProbeOutput,
  type SweepRecordInput,
  type SweepRestartOutput,
} from "../activities/contracts.js";
import { call, RunFailed, stepTracker } from "./activity-call.js";
import { DEPLOY_INSTANCE_ID, DEPLOY_ORCHESTRATION, type DeployInput, type DeployOutput } from "./deploy.js";
import {
  REATTEST_ORCHESTRATION,
  type ReattestInput,
  type ReattestOutput,
  reattestInstanceId,
} from "./reattest.js";

/*
 * One health sweep: observe (snapshot → verdicts → fleet table, in one activity) → act on the
 * plan with the safety rails → record. A singleton (healthSweep.start.ts): a sweep that is still
 * repairing when the next tick comes is joined, not doubled. Deterministic: time only from
 * currentUtcDateTime, waits only through durable timers.
 */

export const HEALTH_SWEEP_ORCHESTRATION = "healthSweep";
export const HEALTH_SWEEP_INSTANCE_ID = "health-sweep";

export interface HealthSweepInput {
  trigger: "timer" | "http";
  mode: SweepModeName;
  /** Passed by the starter from settings (orchestrations never read them). */
  reattestTiming: NonNullable<ReattestInput["timing"]>;
  /**
   * Seconds between starting two re-attestations: SPIRE's node attestation rate limit is 1 per
   * second per source IP, and every re-attested agent attests from the same environment.
   */
  paceSeconds: number;
  /**
   * The deploy a CA reset runs (apps, images and reason left out: every managed app, no image
   * change, the sweep's reason), built by the starter as functions/deploy.ts builds an HTTP one.
   */
  deploy: Omit<DeployInput, "apps" | "images" | "reason">;
  /** How long a restarted server has to come back healthy, and how often to look. */
  restartWaitSeconds: number;
  restartPollSeconds: number;
}

export type HealthSweepStep =
  | "observe"
  | "restart-server"
  | "deploy"
  | "verify"
  | "reattest"
  | "record"
  | "done";

export interface HealthSweepStatus {
  step: HealthSweepStep;
  mode: SweepModeName;
  startedAt: string;
  stepSeconds: Record<string, number>;
  server?: string;
  reattestsStarted?: number;
  reattestsDone?: number;
}

export interface HealthSweepOutput {
  sweepId: string;
  mode: SweepModeName;
  server: SweepObserveOutput["server"];
  counts: Record<string, number>;
  calls: Record<string, number>;
  problems: string[];
  serverAction: SweepObserveOutput["plan"]["serverAction"];
  serverActionOutcome?: string;
  /** For a restart: whether the server's roots after it are the ones before it. */
  caUnchanged?: boolean;
  serverRestarts: number;
  /** Workload entries created again after a CA reset (by the deploy's entry reconciliation). */
  entriesRestored?: number;
  /**
   * After a CA reset: the server still holds the CA it held when the sweep saw the reset, and
   * every app's re-attestation saw its workload SVID signed after that, so every SVID chains to it.
   */
  chainsToNewCa?: boolean;
  reattestsStarted: number;
  actions: SweepAction[];
  deferred: Record<string, number>;
  stepSeconds: Record<string, number>;
  failure?: string;
}

const sameSet = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && [...a].sort().join() === [...b].sort().join();

export const healthSweepOrchestrator: OrchestrationHandler = function* (context: OrchestrationContext) {
  const input = context.df.getInput() as HealthSweepInput;
  const startedAt = context.df.currentUtcDateTime;
  const sweepId = `${context.df.instanceId}@${startedAt.toISOString()}`;
  const status: HealthSweepStatus = {
    step: "observe",
    mode: input.mode,
    startedAt: startedAt.toISOString(),
    stepSeconds: {},
  };
  const enter = stepTracker<HealthSweepStep>(context, status);
  const actions: SweepAction[] = [];
  let serverActionOutcome: string | undefined;
  let caUnchanged: boolean | undefined;
  let serverRestarts = 0;
  let failure: string | undefined;
  let fingerprintsAfter: string[] | undefined;
  let entriesRestored: number | undefined;
  let chainsToNewCa: boolean | undefined;

  /** Per-app repairs: starts the re-attestations paced `paceSeconds` apart, then waits for every one. */
  function* reattestAll(apps: SweepObserveOutput["plan"]["reattest"]) {
    const pending: Array<{ app: string; verdict: string; task: df.Task }> = [];
    for (const [i, { app, verdict }] of apps.entries()) {
      const reattest: ReattestInput = {
        app,
        trigger: "sweep",
        reason: `health sweep: ${verdict}`,
        timing: input.reattestTiming,
      };
      const task = context.df.callSubOrchestrator(REATTEST_ORCHESTRATION, reattest, reattestInstanceId(app));
      pending.push({ app, verdict, task });
      if (i < apps.length - 1) {
        // Yielding both schedules the child now and resumes after the pace, whichever is first.
        const pace = context.df.createTimer(
          new Date(context.df.currentUtcDateTime.getTime() + input.paceSeconds * 1000),
        );
        yield context.df.Task.any([task, pace]);
      }
      status.reattestsStarted = pending.length;
    }
    status.reattestsDone = 0;
    context.df.setCustomStatus(status);
    // One at a time, in start order: each was scheduled above, so this only collects results
    // (re-yielding tasks through a second Task.any lost completions on the local host).
    for (const p of pending) {
      try {
        yield p.task;
      } catch {
        // Faulted: read below.
      }
      status.reattestsDone++;
      context.df.setCustomStatus(status);
    }
    for (const p of pending) {
      if (p.task.isFaulted) {
        // Its instance was busy (an alert's re-attestation is running): that run is the repair.
        actions.push({
          app: p.app,
          action: "reattest",
          verdict: p.verdict,
          outcome: "not-started",
          failure: String(
            (p.task.result as Error | undefined)?.message ?? "the sub-orchestration failed",
          ).slice(0, 500),
        });
        continue;
      }
      const out = p.task.result as ReattestOutput;
      actions.push({
        app: p.app,
        action: "reattest",
        verdict: p.verdict,
        outcome: out.outcome,
        ...(out.checks?.svidSigned !== undefined ? { svidSigned: out.checks.svidSigned } : {}),
        ...(out.failure ? { failure: out.failure.slice(0, 500) } : {}),
      });
    }
  }

  let observed: SweepObserveOutput | undefined;
  try {
    observed = yield* call<SweepObserveOutput>(context, SweepActivities.sweepObserve, {
      sweepId,
      mode: input.mode,
    });
    status.server = observed.server.verdict;
    const plan = observed.plan;

    if (plan.serverAction === "restart-server") {
      enter("restart-server");
      const restart = yield* call<SweepRestartOutput>(context, SweepActivities.sweepRestartServer, {
        sweepId,
      });
      serverRestarts = restart.restarted ? 1 : 0;
      const deadline = context.df.currentUtcDateTime.getTime() + input.restartWaitSeconds * 1000;
      let probe: SweepProbeOutput | undefined;
      while (restart.restarted) {
        probe = yield* call<SweepProbeOutput>(context, SweepActivities.sweepProbeServer, {});
        if (probe.state === "healthy" || context.df.currentUtcDateTime.getTime() >= deadline) break;
        yield context.df.createTimer(
          new Date(context.df.currentUtcDateTime.getTime() + input.restartPollSeconds * 1000),
        );
      }
      if (probe?.state === "healthy") {
        fingerprintsAfter = probe.fingerprints;
        // A restart keeps the data dir, so the CA must be the one from before: anything else is a
        // reset the next sweep will see (and repair) as one, never something a restart explains.
        caUnchanged =
          observed.knownFingerprints.length === 0
            ? undefined
            : sameSet(observed.knownFingerprints, probe.fingerprints);
        serverActionOutcome = `restarted; healthy again; CA ${caUnchanged === false ? "CHANGED" : "unchanged"}`;
      } else {
        serverActionOutcome = restart.restarted
          ? `restarted but not healthy within ${input.restartWaitSeconds} s: ${probe?.detail ?? "no answer"}`
          : `restart failed: ${restart.detail}`;
      }
    } else if (plan.serverAction === "rotate-and-reattest-all") {
      // The deploy workflow is the one fan-out for the whole fleet: it rotates the bundle, puts the
      // workload entries back (a server that lost its data dir lost them with its CA), mints the
      // tokens and re-attests every managed app paced to SPIRE's attestation rate limit. Its
      // singleton id means a deploy already running is this repair; a second is never started.
      enter("deploy");
      const deploy: DeployInput = { ...input.deploy, reason: "sweep: ca-reset" };
      let deployed: DeployOutput;
      try {
        deployed = (yield context.df.callSubOrchestrator(
          DEPLOY_ORCHESTRATION,
          deploy,
          DEPLOY_INSTANCE_ID,
        )) as DeployOutput;
      } catch (err) {
        serverActionOutcome = `deploy not started by the sweep (instance "${DEPLOY_INSTANCE_ID}" busy or failed: ${firstLine(err)}); a running deploy re-attests the fleet, the next sweep checks the result`;
        throw new RunFailed(serverActionOutcome);
      }
      const verdictOf = new Map(plan.reattest.map((a) => [a.app, a.verdict]));
      for (const a of deployed.apps) {
        if (a.outcome === "skipped") continue;
        actions.push({
          app: a.app,
          action: "reattest",
          verdict: verdictOf.get(a.app) ?? "ca-reset",
          outcome: a.outcome,
          ...(a.outcome === "failed" ? { failure: a.reason.slice(0, 500) } : {}),
        });
      }
      entriesRestored = deployed.totals.entriesCreated;
      const signed = deployed.totals.succeeded;
      const total = deployed.totals.succeeded + deployed.totals.failed;
      if (deployed.outcome === "failed" && deployed.failure) {
        serverActionOutcome = `deploy failed: ${deployed.failure}`;
        throw new RunFailed(`the deploy after the CA reset failed: ${deployed.failure}`);
      }

      // Verify: the CA the apps were re-attested onto is the one the sweep found, and still the
      // server's; each re-attestation checked its workload SVID was signed after it started.
      enter("verify");
      const probe = yield* call<SweepProbeOutput>(context, SweepActivities.sweepProbeServer, {});
      if (probe.state === "healthy") fingerprintsAfter = probe.fingerprints;
      const sameCa =
        probe.state === "healthy" &&
        observed.knownFingerprints.length > 0 &&
        sameSet(observed.knownFingerprints, probe.fingerprints);
      chainsToNewCa = sameCa && total > 0 && signed === total;
      serverActionOutcome = `deploy ${deployed.outcome}; ${signed} of ${total} apps re-attested; ${
        sameCa ? "CA unchanged since the reset" : `CA not confirmed (${probe.state}: ${probe.detail})`
      }`;
    } else if (plan.reattest.length > 0) {
      enter("reattest");
      yield* reattestAll(plan.reattest);
    }
  } catch (err) {
    if (!(err instanceof RunFailed)) throw err;
    failure = err.message;
  }

  enter("record");
  const finishedAt = context.df.currentUtcDateTime.toISOString();
  const server = observed?.server ?? { verdict: "unreachable" as const, reason: failure ?? "not observed" };
  const record: SweepRecordInput = {
    sweepId,
    trigger: input.trigger,
    mode: input.mode,
    startedAt: startedAt.toISOString(),
    finishedAt,
    server,
    serverAction: observed?.plan.serverAction ?? "none",
    ...(serverActionOutcome ? { serverActionOutcome } : {}),
    ...(fingerprintsAfter || observed?.knownFingerprints
      ? { serverFingerprints: fingerprintsAfter ?? observed?.knownFingerprints }
      : {}),
    counts: observed?.counts ?? {},
    calls: observed?.calls ?? {},
    actions,
  };
  try {
    yield* call(context, SweepActivities.sweepRecord, record);
  } catch (err) {
    failure = [failure, `fleet table not updated: ${(err as Error).message}`].filter(Boolean).join("; ");
  }
  enter("done");
  const output: HealthSweepOutput = {
    sweepId,
    mode: input.mode,
    server,
    counts: observed?.counts ?? {},
    calls: observed?.calls ?? {},
    problems: observed?.problems ?? [],
    serverAction: observed?.plan.serverAction ?? "none",
    ...(serverActionOutcome ? { serverActionOutcome } : {}),
    ...(caUnchanged !== undefined ? { caUnchanged } : {}),
    serverRestarts,
    ...(entriesRestored !== undefined ? { entriesRestored } : {}),
    ...(chainsToNewCa !== undefined ? { chainsToNewCa } : {}),
    reattestsStarted: actions.filter((a) => a.outcome !== "not-started").length,
    actions,
    deferred: observed?.plan.deferred ?? {},
    stepSeconds: status.stepSeconds,
    ...(failure ? { failure } : {}),
  };
  return output;
};

function firstLine(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  return (m.split("\n")[0] ?? m).slice(0, 300);
}
