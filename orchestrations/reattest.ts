import type * as df from "durable-functions";
import type { OrchestrationContext, OrchestrationHandler } from "durable-functions";
import {
  Activities,
  type ApplyTokenOutput,
  type EvictOutput,
  type LedgerRecordInput,
  type PrepareOutput,
  type ReattestTrigger,
  type RetireOutput,
  type RevisionStateOutput,
  type VerifyOutput,
} from "../activities/contracts.js";
import { call, RunFailed, stepTracker } from "./activity-call.js";

export { RETRY_TIMEOUT_MS, RETRY_WAITS_MS, retryPolicy } from "./activity-call.js";

/*
 * Brings one app's SPIRE agent back with a fresh join token: prepare → apply (token + full-spec PUT)
 * → wait for the revision → verify the new agent (and the workload SVID) → evict the old agents →
 * retire the replaced revisions (Multiple revision mode) → ledger. One instance per app (see
 * reattestInstanceId). Deterministic: time only from currentUtcDateTime, waits only through
 * durable timers.
 */

export const REATTEST_ORCHESTRATION = "reattest";

export interface ReattestInput {
  app: string;
  trigger: ReattestTrigger;
  reason?: string;
  /**
   * The starter passes the REATTEST_*_TIMEOUT_SECONDS settings here (orchestrations never read
   * settings); absent fields, as in runs started before they were settings, take DEFAULT_TIMING.
   */
  timing?: Partial<ReattestTiming>;
  /**
   * From a deploy: the token it created for this app (a Key Vault secret URL and the token's
   * SHA-256, never the token) and the images to change, both in the one PUT. Absent, the run
   * mints its own token as ever.
   */
  token?: { secretUrl: string; tokenSha256: string };
  images?: Record<string, string>;
  /** A deploy staggers its apps' attestations: wait this long (durable timer) before the PUT. */
  startDelaySeconds?: number;
  /**
   * Set by a deploy in run-command mode: "the deploy does SPIRE for me". The run then makes no
   * SPIRE call of its own (prepare lists no alias entries, verify and evict are left out): the
   * deploy checks every app's new agent and evicts the old ones in one run-command for all apps,
   * instead of a few run-commands per app. Its success means "the new revision runs".
   */
  spireByDeploy?: boolean;
}

export interface ReattestTiming {
  /** First wait between polls; doubles up to maxPollSeconds. */
  firstPollSeconds: number;
  maxPollSeconds: number;
  revisionTimeoutSeconds: number;
  verifyTimeoutSeconds: number;
}

export const DEFAULT_TIMING: ReattestTiming = {
  firstPollSeconds: 5,
  maxPollSeconds: 30,
  revisionTimeoutSeconds: 600,
  verifyTimeoutSeconds: 300,
};

export type ReattestStep =
  | "prepare"
  | "apply"
  | "revision"
  | "verify"
  | "evict"
  | "retire"
  | "record"
  | "done";

export interface ReattestStatus {
  app: string;
  step: ReattestStep;
  trigger: ReattestTrigger;
  startedAt: string;
  stepSeconds: Record<string, number>;
  revisionName?: string;
  /** The new revision as last polled: what Azure reports, an unrecognised state named. */
  revision?: RevisionStateOutput;
  checks?: VerifyOutput;
}

export interface ReattestOutput {
  app: string;
  outcome: "succeeded" | "failed";
  /** For a failed run: what went wrong and what a person can do about it. */
  failure?: string;
  checks?: VerifyOutput;
  revisionName?: string;
  previousAgents: number;
  evicted?: number;
  /** Replaced revisions deactivated (Multiple revision mode; 0 in Single mode). */
  retired?: number;
  /** For a succeeded run: what still needs a person (the identity itself is repaired). */
  warning?: string;
  stepSeconds: Record<string, number>;
}

/** One instance per app at a time: a second request finds the running one by this id. */
export function reattestInstanceId(app: string): string {
  return `reattest-${app}`;
}

export const reattestOrchestrator: OrchestrationHandler = function* (context: OrchestrationContext) {
  const input = context.df.getInput() as ReattestInput;
  const timing: ReattestTiming = { ...DEFAULT_TIMING, ...input.timing };
  const startedAt = context.df.currentUtcDateTime;
  const runId = `${context.df.instanceId}@${startedAt.toISOString()}`;
  const status: ReattestStatus = {
    app: input.app,
    step: "prepare",
    trigger: input.trigger,
    startedAt: startedAt.toISOString(),
    stepSeconds: {},
  };
  const enter = stepTracker<ReattestStep>(context, status);

  /** Poll `check` with growing durable-timer waits until it says done, or the deadline passes. */
  function* pollUntil<T>(
    check: () => Generator<df.Task, T, unknown>,
    done: (v: T) => boolean,
    timeoutSeconds: number,
  ): Generator<df.Task, { value: T; timedOut: boolean }, unknown> {
    const deadline = context.df.currentUtcDateTime.getTime() + timeoutSeconds * 1000;
    let wait = timing.firstPollSeconds;
    for (;;) {
      const value = yield* check();
      if (done(value)) return { value, timedOut: false };
      const now = context.df.currentUtcDateTime.getTime();
      if (now >= deadline) return { value, timedOut: true };
      const next = Math.min(now + wait * 1000, deadline);
      yield context.df.createTimer(new Date(next));
      wait = Math.min(wait * 2, timing.maxPollSeconds);
    }
  }

  let prepared: PrepareOutput | undefined;
  let applied: ApplyTokenOutput | undefined;
  let output: ReattestOutput;
  try {
    prepared = yield* call<PrepareOutput>(context, Activities.reattestPrepare, {
      app: input.app,
      ...(input.spireByDeploy && { skipSpire: true }),
    });

    enter("apply");
    if (input.startDelaySeconds && input.startDelaySeconds > 0) {
      yield context.df.createTimer(
        new Date(context.df.currentUtcDateTime.getTime() + input.startDelaySeconds * 1000),
      );
    }
    applied = yield* call<ApplyTokenOutput>(context, Activities.reattestApplyToken, {
      app: input.app,
      runId,
      ...(input.token && { token: input.token }),
      ...(input.images && Object.keys(input.images).length > 0 && { images: input.images }),
    });
    status.revisionName = applied.revisionName;

    enter("revision");
    const revision = yield* pollUntil<RevisionStateOutput>(
      function* () {
        const r = yield* call<RevisionStateOutput>(context, Activities.reattestRevisionState, {
          app: input.app,
          revisionName: applied!.revisionName,
        });
        // A state the product does not know is waited on; customStatus shows which one it is.
        status.revision = r;
        context.df.setCustomStatus(status);
        return r;
      },
      (r) => r.state !== "Pending",
      timing.revisionTimeoutSeconds,
    );
    if (revision.value.state === "Failed") {
      throw new RunFailed(
        `revision ${applied.revisionName} failed to start: ${revision.value.detail}. Check the app's system logs (ContainerAppSystemLogs) and console logs; the app needs attention: its agent has no valid token.`,
      );
    }
    if (revision.timedOut) {
      throw new RunFailed(
        `revision ${applied.revisionName} was not running after ${timing.revisionTimeoutSeconds} s (${revision.value.detail}).`,
      );
    }

    if (input.spireByDeploy) {
      // The deploy verifies and evicts for every app in one run-command (see spireByDeploy).
      enter("retire");
      const retired = yield* retireRevisions(applied.revisionName);
      enter("record");
      output = {
        app: input.app,
        outcome: "succeeded",
        revisionName: applied.revisionName,
        previousAgents: 0,
        retired: retired.retired?.retired.length,
        warning: retired.warning,
        stepSeconds: status.stepSeconds,
      };
      return yield* finishRun(output);
    }

    enter("verify");
    const verifyInput = {
      app: input.app,
      alias: prepared.alias,
      workloadId: prepared.workloadId,
      tokenSha256: applied.tokenSha256,
      since: startedAt.toISOString(),
    };
    // svidSigned "unknown" (the server's log level hides signings) ends the wait at attestation.
    const verified = yield* pollUntil<VerifyOutput>(
      () => call(context, Activities.reattestVerify, verifyInput),
      (v) => v.agentAttested && v.svidSigned !== false,
      timing.verifyTimeoutSeconds,
    );
    status.checks = verified.value;
    if (!verified.value.agentAttested) {
      throw new RunFailed(
        `the new agent did not attest within ${timing.verifyTimeoutSeconds} s; check the sidecar's console logs for join token errors and that the SPIRE server is reachable.`,
      );
    }
    if (verified.value.svidSigned === false) {
      throw new RunFailed(
        `the agent attested but no SVID was signed for ${prepared.workloadId} within ${timing.verifyTimeoutSeconds} s; check the workload entry exists and its selectors match, and that the SPIRE server logs at log_level = "DEBUG" into the workspace's Syslog (the signing is a DEBUG line).`,
      );
    }

    enter("evict");
    const evicted = yield* call<EvictOutput>(context, Activities.reattestEvictOld, {
      app: input.app,
      alias: prepared.alias,
      keepTokenSha256: applied.tokenSha256,
    });

    // The agent is verified, so the run has succeeded whatever happens here; a revision left
    // active is a warning for a person, not a failure.
    enter("retire");
    const { retired, warning } = yield* retireRevisions(applied.revisionName);
    enter("record");
    output = {
      app: input.app,
      outcome: "succeeded",
      checks: verified.value,
      revisionName: applied.revisionName,
      previousAgents: prepared.previousAgents.length,
      evicted: evicted.evicted,
      retired: retired?.retired.length,
      warning,
      stepSeconds: status.stepSeconds,
    };
  } catch (err) {
    if (!(err instanceof RunFailed)) throw err;
    enter("record");
    output = {
      app: input.app,
      outcome: "failed",
      failure: `${err.message}`,
      checks: status.checks,
      revisionName: applied?.revisionName,
      previousAgents: prepared?.previousAgents.length ?? 0,
      stepSeconds: status.stepSeconds,
    };
  }

  return yield* finishRun(output);

  function* retireRevisions(
    keepRevision: string,
  ): Generator<df.Task, { retired?: RetireOutput; warning?: string }, unknown> {
    try {
      const retired = yield* call<RetireOutput>(context, Activities.reattestRetireRevisions, {
        app: input.app,
        keepRevision,
      });
      return { retired, ...(retired.keptWithTraffic.length > 0 && { warning: retired.detail }) };
    } catch (err) {
      if (!(err instanceof RunFailed)) throw err;
      return {
        warning: `replaced revisions not retired: ${err.message}; deactivate them, or their spent join token makes them crash-loop`,
      };
    }
  }

  function* finishRun(output: ReattestOutput): Generator<df.Task, ReattestOutput, unknown> {
    const record: LedgerRecordInput = {
      app: input.app,
      runId,
      trigger: input.trigger,
      reason: input.reason,
      startedAt: startedAt.toISOString(),
      finishedAt: context.df.currentUtcDateTime.toISOString(),
      outcome: output.outcome,
      failure: output.failure,
      warning: output.warning,
      stepSeconds: output.stepSeconds,
      previousAgents: output.previousAgents,
      newAgentSha256: output.outcome === "succeeded" ? applied?.tokenSha256 : undefined,
    };
    try {
      yield* call(context, Activities.ledgerRecord, record);
    } catch (err) {
      // The run's outcome stands even if the ledger is unavailable; say so in the output.
      output.failure = [output.failure, `ledger not updated: ${(err as Error).message}`]
        .filter(Boolean)
        .join("; ");
    }
    enter("done");
    return output;
  }
};
