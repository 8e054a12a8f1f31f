import type * as df from "durable-functions";
import type { OrchestrationContext, OrchestrationHandler } from "durable-functions";
import type { VerifyOutput } from "../activities/contracts.js";
import { Activities, type BundleRecordInput } from "../activities/contracts.js";
import {
  DeployActivities,
  type DeployRecordInput,
  type DeployTarget,
  type DeployTotals,
  type DiscoverOutput,
  type EntriesAndTokensOutput,
  type ProbeOutput,
  type RolloverOutput,
  type ServerHealthOutput,
  type StartServerOutput,
  type SvidCheckOutput,
} from "../activities/deploy.contracts.js";
import { call, RunFailed, stepTracker } from "./activity-call.js";
import {
  REATTEST_ORCHESTRATION,
  type ReattestInput,
  type ReattestOutput,
  type ReattestTiming,
  reattestInstanceId,
} from "./reattest.js";
import type { RotateBundleOutput } from "./rotateBundle.js";
import { ROTATE_BUNDLE_ORCHESTRATION } from "./rotateBundle.start.js";

/*
 * The deploy workflow's public contract (issue 11): the HTTP body, the dry-run plan, customStatus
 * and output, then the orchestration itself. The types come first so the trigger, the CLI and the
 * sandbox's clients all agree on one shape.
 *
 *   POST /api/deploy (function key), body (all optional) DeployRequest
 *     → 202 DeployAccepted (the reattest starter's shape: durable status URLs + id)
 *     → 409 {error} naming the running deploy id; 400/404/422 {error} naming the problem; nothing started
 *     → dryRun: 200 {plan: DeployPlan}
 *   GET /api/operations/deploy → {status: DeployStatus (customStatus), output: DeployOutput}
 */

/** The deploy's one instance id: a second request while it runs gets 409 naming it. */
export const DEPLOY_INSTANCE_ID = "deploy";
export const DEPLOY_ORCHESTRATION = "deploy";

export const DEFAULT_MAX_PARALLEL = 5;
/** The rollover run-command's wait for the new agents, on the VM (inside its run-command timeout). */
export const MAX_ROLLOVER_WAIT_SECONDS = 120;
export const MAX_PARALLEL_LIMIT = 20;

export interface DeployRequest {
  /** App names; default every managed app found by tag. */
  apps?: string[];
  /** {"<app>": {"<container>": "<image ref>"}}: images to change in the same PUT as the token. */
  images?: Record<string, Record<string, string>>;
  /** 1..20, default 5: re-attestations running at once. */
  maxParallel?: number;
  dryRun?: boolean;
  reason?: string;
}

/** 202: what the reattest starter answers (createHttpManagementPayload fields) plus the deploy's own. */
export interface DeployAccepted {
  id: string;
  statusQueryGetUri: string;
  sendEventPostUri: string;
  terminatePostUri: string;
  purgeHistoryDeleteUri: string;
  /** Apps the deploy will act on (after the request's filter), in order. */
  apps: string[];
}

export interface PlanApp {
  app: string;
  included: boolean;
  /** Why it is in ("managed") or out (unmanaged, the app model's reason, not requested). */
  reason: string;
}

export interface PlanImage {
  app: string;
  container: string;
  from: string;
  to: string;
}

/** What one deploy will do and cost, computed without changing anything. */
export interface DeployPlan {
  apps: PlanApp[];
  /** Workload entries to create / update / delete (counts). */
  entries: { create: number; update: number; delete: number };
  images: PlanImage[];
  /** Join tokens to create (one per included app). */
  tokens: number;
  /** Calls the real deploy makes: ARM requests, SPIRE API calls, run-commands. */
  calls: { arm: number; spireApi: number; runCommands: number };
}

export type DeployStep =
  | "discover"
  | "server"
  | "trust"
  | "entries"
  | "reattest"
  | "verify"
  | "record"
  | "done";

/** One app's state as the deploy sees it (customStatus.apps[app]). */
export type DeployAppState = "pending" | "queued" | "reattesting" | "succeeded" | "failed" | "skipped";

export interface DeployStatus {
  step: DeployStep;
  appsDone: number;
  appsTotal: number;
  apps: Record<string, DeployAppState>;
  startedAt: string;
  stepSeconds: Record<string, number>;
  /** Set when the deploy found the server's container stopped and started it (run-command mode). */
  serverStarted?: boolean;
}

export interface DeployAppOutcome {
  app: string;
  outcome: "succeeded" | "failed" | "skipped";
  reason: string;
  revisionName?: string;
}

export interface DeployOutput {
  outcome: "succeeded" | "partial" | "failed";
  apps: DeployAppOutcome[];
  totals: DeployTotals;
  stepSeconds: Record<string, number>;
  /** Why the deploy as a whole failed (server not ready, trust material), when it did. */
  failure?: string;
}

// ---------------------------------------------------------------------------------------------
// The orchestration

export interface DeployInput {
  apps?: string[];
  images?: Record<string, Record<string, string>>;
  maxParallel: number;
  reason?: string;
  /** Passed on to each app's re-attestation (the starter reads the settings). */
  reattestTiming: Partial<ReattestTiming>;
  /**
   * Seconds between starting two apps' re-attestations: SPIRE admits one node attestation per
   * second per source IP by default, and a Container Apps environment's egress shares addresses.
   */
  startSpacingSeconds: number;
  /** How long the server may take to answer before the deploy gives up (bounded wait). */
  serverWaitSeconds: number;
  /**
   * How the product reaches SPIRE (SPIRE_API; the starter reads it). run-command: the deploy makes
   * at most 3 run-commands however many apps (deployProbe, the entries+tokens batch,
   * deployRollover), and its re-attestation children make none (spireByDeploy). Absent: grpc.
   */
  spireAccess?: "grpc" | "run-command";
}

export const deployOrchestrator: OrchestrationHandler = function* (context: OrchestrationContext) {
  const input = context.df.getInput() as DeployInput;
  const startedAt = context.df.currentUtcDateTime;
  const runId = `${context.df.instanceId}@${startedAt.toISOString()}`;
  const status: DeployStatus = {
    step: "discover",
    appsDone: 0,
    appsTotal: 0,
    apps: {},
    startedAt: startedAt.toISOString(),
    stepSeconds: {},
  };
  const enter = stepTracker<DeployStep>(context, status);
  const outcomes = new Map<string, DeployAppOutcome>();
  const totals: DeployOutput["totals"] = {
    apps: 0,
    succeeded: 0,
    failed: 0,
    skipped: 0,
    entriesCreated: 0,
    entriesUpdated: 0,
    entriesDeleted: 0,
    tokenCount: 0,
    imagesChanged: 0,
  };
  /** The output, after the deploy's own ledger row (a ledger outage does not change the outcome). */
  function* finish(failure?: string): Generator<df.Task, DeployOutput, unknown> {
    const apps = [...outcomes.values()].sort((a, b) => a.app.localeCompare(b.app));
    totals.apps = apps.length;
    totals.succeeded = apps.filter((a) => a.outcome === "succeeded").length;
    totals.failed = apps.filter((a) => a.outcome === "failed").length;
    totals.skipped = apps.filter((a) => a.outcome === "skipped").length;
    const outcome =
      failure !== undefined || (totals.succeeded === 0 && totals.failed > 0)
        ? "failed"
        : totals.failed > 0
          ? "partial"
          : "succeeded";
    if (status.step !== "record") enter("record");
    const record: DeployRecordInput = {
      runId,
      ...(input.reason && { reason: input.reason }),
      startedAt: startedAt.toISOString(),
      finishedAt: context.df.currentUtcDateTime.toISOString(),
      outcome,
      ...(failure && { failure }),
      spireAccess: input.spireAccess ?? "grpc",
      totals,
      stepSeconds: status.stepSeconds,
      apps: apps.map(({ app, outcome, reason }) => ({ app, outcome, reason })),
    };
    let ledgerNote: string | undefined;
    try {
      yield* call(context, DeployActivities.deployRecord, record);
    } catch (err) {
      if (!(err instanceof RunFailed)) throw err;
      ledgerNote = `ledger not updated: ${err.message}`;
    }
    enter("done");
    return {
      outcome,
      apps,
      totals,
      stepSeconds: status.stepSeconds,
      ...((failure || ledgerNote) && { failure: [failure, ledgerNote].filter(Boolean).join("; ") }),
    };
  }

  let found: DiscoverOutput;
  try {
    found = yield* call<DiscoverOutput>(context, DeployActivities.deployDiscover, {
      ...(input.apps && { apps: input.apps }),
      ...(input.images && { images: input.images }),
    });
  } catch (err) {
    if (!(err instanceof RunFailed)) throw err;
    return yield* finish(err.message);
  }
  for (const a of found.apps) {
    if (a.included) status.apps[a.app] = "pending";
    else {
      status.apps[a.app] = "skipped";
      outcomes.set(a.app, { app: a.app, outcome: "skipped", reason: a.reason });
    }
  }
  status.appsTotal = found.targets.length;

  // The server must answer before anything is written; waits are durable timers, bounded.
  enter("server");
  const byRunCommand = input.spireAccess === "run-command";
  const desired = { targets: found.targets.map(({ images: _images, ...t }) => t), keep: found.keep };
  let probe: ProbeOutput | undefined;
  let containerStarted = false;
  const deadline = startedAt.getTime() + input.serverWaitSeconds * 1000;
  for (let wait = 2; ; wait = Math.min(wait * 2, 15)) {
    let health: ServerHealthOutput & { container?: ProbeOutput["container"] };
    if (byRunCommand) {
      // Run-command #1: health, bundle and entries in one script (a healthy answer is the bundle read).
      try {
        probe = yield* call<ProbeOutput>(context, DeployActivities.deployProbe, desired);
      } catch (err) {
        if (!(err instanceof RunFailed)) throw err;
        for (const t of found.targets) markFailed(t.name, "the SPIRE server's state was not read");
        return yield* finish(err.message);
      }
      health = probe;
    } else {
      health = yield* call<ServerHealthOutput>(context, DeployActivities.deployServerHealth, {});
    }
    if (health.healthy) break;
    // The VM's server container stopped: start it (docker start, never rm), once, then wait. By
    // run-command the probe said so; over the API one run-command looks, and starts it only if
    // it is stopped: it costs a run-command only when the server does not answer.
    if (!containerStarted && (byRunCommand ? health.container === "stopped" : true)) {
      containerStarted = true;
      try {
        const started = yield* call<StartServerOutput>(context, DeployActivities.deployStartServer, {});
        status.serverStarted = started.started;
        context.df.setCustomStatus(status);
      } catch (err) {
        if (!(err instanceof RunFailed)) throw err;
      }
    }
    const now = context.df.currentUtcDateTime.getTime();
    if (now >= deadline) {
      for (const t of found.targets) markFailed(t.name, "the SPIRE server was not ready");
      return yield* finish(
        `the SPIRE server did not answer within ${input.serverWaitSeconds} s (${health.detail}); check its container on the VM (docker ps -a), start it (docker start, never rm), then deploy again.`,
      );
    }
    yield context.df.createTimer(new Date(Math.min(now + wait * 1000, deadline)));
  }

  // Key Vault must hold the server's current bundle before any app pins a version of it.
  enter("trust");
  if (probe?.trust) {
    // Run-command mode: deployProbe synced the bundle it read; the run is recorded as a rotation's.
    const t = probe.trust;
    const record: BundleRecordInput = {
      runId,
      trigger: "deploy",
      reason: input.reason ?? "deploy",
      startedAt: startedAt.toISOString(),
      finishedAt: context.df.currentUtcDateTime.toISOString(),
      action: t.action,
      ...(t.version && { version: t.version }),
      ...(t.previousVersion && { previousVersion: t.previousVersion }),
      written: t.written,
      serverFingerprints: t.server.fingerprints,
      vaultFingerprints: t.vaultFingerprints,
    };
    try {
      yield* call(context, Activities.bundleRecord, record);
    } catch (err) {
      // The bundle is in Key Vault either way; only the fleet table's row is missing.
      if (!(err instanceof RunFailed)) throw err;
    }
  } else {
    const rotation = (yield context.df.callSubOrchestrator(ROTATE_BUNDLE_ORCHESTRATION, {
      trigger: "deploy",
      reason: input.reason ?? "deploy",
    })) as RotateBundleOutput;
    if (rotation.outcome !== "succeeded") {
      for (const t of found.targets) markFailed(t.name, "trust material not in Key Vault");
      return yield* finish(`the trust bundle rotation failed: ${rotation.failure ?? "unknown reason"}`);
    }
  }

  enter("entries");
  let batch: EntriesAndTokensOutput;
  try {
    batch = yield* call<EntriesAndTokensOutput>(context, DeployActivities.deployEntriesAndTokens, {
      runId,
      ...desired,
      ...(probe?.diff && { diff: probe.diff }),
    });
  } catch (err) {
    if (!(err instanceof RunFailed)) throw err;
    for (const t of found.targets) markFailed(t.name, "entries and tokens not created");
    return yield* finish(err.message);
  }
  totals.entriesCreated = batch.entries.created;
  totals.entriesUpdated = batch.entries.updated;
  totals.entriesDeleted = batch.entries.deleted;
  totals.tokenCount = batch.tokens.filter((t) => !t.reused).length;
  const tokens = new Map(batch.tokens.map((t) => [t.app, t]));

  // Fan out: at most maxParallel re-attestations at once, started startSpacingSeconds apart. The
  // child id is the app's re-attestation id, so a deploy and a re-attestation never act on one app
  // together: a running one makes the child fail to start, and the app is reported, not retried.
  enter("reattest");
  /** Run-command mode: children whose revision runs, waiting for the deploy's rollover. */
  const running: Array<{ t: DeployTarget; out: ReattestOutput; token: string }> = [];
  const queue = found.targets.filter((t) => tokens.has(t.name));
  for (const t of found.targets) if (!tokens.has(t.name)) markFailed(t.name, "no join token was created");
  for (const t of queue) status.apps[t.name] = "queued";
  context.df.setCustomStatus(status);
  // Waves of at most maxParallel, each child told to wait its place in the wave's stagger before
  // its PUT (a durable timer of its own), so the wave starts in one step and attestations arrive
  // startSpacingSeconds apart.
  while (queue.length > 0) {
    const wave = queue.splice(0, input.maxParallel);
    const tasks = wave.map((t, place) => {
      const token = tokens.get(t.name)!;
      const child: ReattestInput = {
        app: t.name,
        trigger: "deploy",
        ...(input.reason && { reason: input.reason }),
        timing: input.reattestTiming,
        token: { secretUrl: token.secretUrl, tokenSha256: token.tokenSha256 },
        ...(Object.keys(t.images).length > 0 && { images: t.images }),
        ...(place > 0 &&
          input.startSpacingSeconds > 0 && { startDelaySeconds: place * input.startSpacingSeconds }),
        ...(byRunCommand && { spireByDeploy: true }),
      };
      status.apps[t.name] = "reattesting";
      return context.df.callSubOrchestrator(REATTEST_ORCHESTRATION, child, reattestInstanceId(t.name));
    });
    context.df.setCustomStatus(status);
    try {
      yield context.df.Task.all(tasks);
    } catch {
      // A child that could not start (its app's re-attestation is running) fails the whole wait
      // at once; the others still run, so each is waited for on its own below.
    }
    for (const [n, task] of tasks.entries()) {
      const t = wave[n]!;
      let out: ReattestOutput | undefined;
      let error: unknown;
      try {
        out = (yield task) as ReattestOutput;
      } catch (err) {
        error = err;
      }
      settle(t, out, error);
    }
  }

  // Over the API, verification ran in each child (aggregated per app above). By run-command it is
  // run-command #3, for every app whose new revision runs at once: wait for the new agents,
  // evict the old ones.
  enter("verify");
  if (byRunCommand && running.length > 0) {
    let rolled: RolloverOutput | undefined;
    let failure = "";
    try {
      rolled = yield* call<RolloverOutput>(context, DeployActivities.deployRollover, {
        apps: running.map(({ t, token }) => ({
          app: t.name,
          alias: t.alias,
          workloadId: t.workloadId,
          tokenSha256: token,
        })),
        waitSeconds: Math.min(input.reattestTiming.verifyTimeoutSeconds ?? 120, MAX_ROLLOVER_WAIT_SECONDS),
        since: startedAt.toISOString(),
      });
    } catch (err) {
      if (!(err instanceof RunFailed)) throw err;
      failure = err.message;
    }
    const byApp = new Map((rolled?.apps ?? []).map((r) => [r.app, r]));
    // A signing lands seconds after attestation and reaches the logs later: the apps whose agent
    // attested but whose SVID is not signed yet are checked again (logs only, no run-command),
    // with growing durable-timer waits, bounded by the verify timeout.
    const verifyDeadline =
      context.df.currentUtcDateTime.getTime() + (input.reattestTiming.verifyTimeoutSeconds ?? 300) * 1000;
    for (let wait = input.reattestTiming.firstPollSeconds ?? 2; ; wait = Math.min(wait * 2, 30)) {
      const unsigned = running.filter(({ t }) => {
        const r = byApp.get(t.name);
        return r?.agentAttested === true && r.svidSigned === false;
      });
      const now = context.df.currentUtcDateTime.getTime();
      if (unsigned.length === 0 || now >= verifyDeadline) break;
      yield context.df.createTimer(new Date(Math.min(now + wait * 1000, verifyDeadline)));
      try {
        const checked = yield* call<SvidCheckOutput>(context, DeployActivities.deploySvidCheck, {
          apps: unsigned.map(({ t }) => ({ app: t.name, workloadId: t.workloadId })),
          since: startedAt.toISOString(),
        });
        for (const c of checked.apps) {
          const r = byApp.get(c.app);
          if (r)
            byApp.set(c.app, { ...r, svidSigned: c.svidSigned, ...(c.svidNote && { svidNote: c.svidNote }) });
        }
      } catch (err) {
        if (!(err instanceof RunFailed)) throw err;
        break;
      }
    }
    for (const { t, out } of running) {
      const r = byApp.get(t.name);
      succeed(
        t,
        out,
        r
          ? {
              agentAttested: r.agentAttested,
              ...(r.svidSigned !== undefined && { svidSigned: r.svidSigned }),
              ...(r.svidNote && { svidNote: r.svidNote }),
            }
          : { agentAttested: false },
        r?.detail ?? (failure || undefined),
      );
    }
    context.df.setCustomStatus(status);
  }
  enter("record");
  return yield* finish();

  function settle(t: DeployTarget, out: ReattestOutput | undefined, error: unknown) {
    if (!out) {
      markFailed(
        t.name,
        `its re-attestation did not run: ${firstLine(error)} (a re-attestation of it may be running)`,
      );
    } else if (byRunCommand && out.outcome === "succeeded") {
      // Its revision runs; the agent is checked by the deploy's one rollover run-command.
      running.push({ t, out, token: tokens.get(t.name)!.tokenSha256 });
      return;
    } else if (out.outcome === "succeeded") {
      succeed(t, out, out.checks ?? { agentAttested: false });
      return;
    } else {
      markFailed(t.name, out.failure ?? "not verified", out.revisionName);
    }
    status.appsDone++;
    context.df.setCustomStatus(status);
  }

  function succeed(t: DeployTarget, out: ReattestOutput, checks: VerifyOutput, detail?: string) {
    if (checks.agentAttested && checks.svidSigned !== false) {
      // Verify: the new agent attested and the workload SVID was signed after the child (or
      // this deploy) started, which is after this deploy started.
      outcomes.set(t.name, {
        app: t.name,
        outcome: "succeeded",
        reason:
          checks.svidSigned === true
            ? "attested; workload SVID signed"
            : `attested; ${checks.svidNote ?? "SVID signing not checked"}`,
        ...(out.revisionName && { revisionName: out.revisionName }),
      });
      status.apps[t.name] = "succeeded";
      totals.imagesChanged += Object.keys(t.images).length;
    } else if (!checks.agentAttested) {
      markFailed(
        t.name,
        out.failure ?? (detail ? `the new agent did not attest: ${detail}` : "not verified"),
        out.revisionName,
      );
    } else {
      markFailed(
        t.name,
        out.failure ?? "the agent attested but no workload SVID was signed",
        out.revisionName,
      );
    }
    status.appsDone++;
  }

  function markFailed(app: string, reason: string, revisionName?: string) {
    outcomes.set(app, { app, outcome: "failed", reason, ...(revisionName && { revisionName }) });
    status.apps[app] = "failed";
  }
};

function firstLine(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  return m.split("\n")[0] ?? m;
}
