import type { DurableClient } from "durable-functions";
import { readInstance, unavailable } from "../shared/durable.js";
import {
  REATTEST_ORCHESTRATION,
  type ReattestInput,
  type ReattestOutput,
  type ReattestTiming,
  reattestInstanceId,
} from "./reattest.js";

/*
 * Starting a re-attestation: the one way in for the HTTP trigger and the alert webhook. It talks to
 * the task hub only through the durable client it is given, so it sits beside the orchestration
 * rather than in either trigger.
 */

export type StartOutcome =
  | { kind: "started"; instanceId: string }
  | { kind: "running"; instanceId: string }
  | { kind: "coolingDown"; instanceId: string; lastRun: string; outcome: string };

export interface StartPolicy {
  cooldownSeconds: number;
  /** From settings; the orchestration never reads them itself. */
  timing: Pick<ReattestTiming, "revisionTimeoutSeconds" | "verifyTimeoutSeconds">;
  /** Start even within the cooldown (never while one runs). */
  force?: boolean;
  now?: number;
}

const RUNNING = new Set(["Running", "Pending", "Suspended", "ContinuedAsNew"]);

/** The decision, given what the task hub says about the app's instance (undefined: none). */
export function startDecision(
  existing: { runtimeStatus: unknown; lastUpdatedTime: Date | string; output?: unknown } | undefined,
  policy: Pick<StartPolicy, "cooldownSeconds" | "force">,
  now: number,
):
  | { start: true }
  | {
      start: false;
      outcome: Exclude<StartOutcome, { kind: "started" }>["kind"];
      detail?: { lastRun: string; outcome: string };
    } {
  if (existing === undefined) return { start: true };
  if (RUNNING.has(String(existing.runtimeStatus))) return { start: false, outcome: "running" };
  if (policy.force) return { start: true };
  const finished = new Date(existing.lastUpdatedTime).getTime();
  if (now - finished < policy.cooldownSeconds * 1000) {
    const outcome = (existing.output as ReattestOutput | null)?.outcome ?? String(existing.runtimeStatus);
    return {
      start: false,
      outcome: "coolingDown",
      detail: { lastRun: new Date(finished).toISOString(), outcome },
    };
  }
  return { start: true };
}

/**
 * Start the app's re-attestation unless one is running (one instance per app; host.json's
 * NonRunningStates makes the task hub refuse a second) or, without force, one finished within the
 * cooldown. Throws TaskHubUnavailable when the task hub cannot say which: an outage must not read
 * as "no previous run" and bypass the cooldown.
 */
export async function startReattest(
  client: DurableClient,
  input: Omit<ReattestInput, "timing">,
  policy: StartPolicy,
): Promise<StartOutcome> {
  const instanceId = reattestInstanceId(input.app);
  const decision = startDecision(await readInstance(client, instanceId), policy, policy.now ?? Date.now());
  if (!decision.start) {
    return decision.outcome === "coolingDown" && decision.detail
      ? { kind: "coolingDown", instanceId, ...decision.detail }
      : { kind: "running", instanceId };
  }
  const full: ReattestInput = { ...input, timing: { ...policy.timing } };
  try {
    await client.startNew(REATTEST_ORCHESTRATION, { instanceId, input: full });
  } catch (err) {
    // Another request won the race to start it (the task hub refuses a running id): that one is
    // the run. Anything else is the task hub failing.
    const again = await readInstance(client, instanceId);
    if (again && RUNNING.has(String(again.runtimeStatus))) return { kind: "running", instanceId };
    throw unavailable(`starting ${instanceId}`, err);
  }
  return { kind: "started", instanceId };
}
