import type { DurableClient } from "durable-functions";
import type { AppConfig } from "../shared/config.js";
import { readInstance, unavailable } from "../shared/durable.js";
import { DEFAULT_MAX_PARALLEL } from "./deploy.js";
import { DEFAULT_SERVER_WAIT_SECONDS } from "./deploy.start.js";
import {
  HEALTH_SWEEP_INSTANCE_ID,
  HEALTH_SWEEP_ORCHESTRATION,
  type HealthSweepInput,
} from "./healthSweep.js";

/*
 * Starting a health sweep: the one way in for the timer and `POST /api/sweep`. A singleton: a
 * sweep still repairing when the next one is asked for is joined, never doubled, so two sweeps
 * can never re-attest the same fleet at once.
 */

export type SweepStartOutcome = { kind: "started" | "running"; instanceId: string };

const RUNNING = new Set(["Running", "Pending", "Suspended", "ContinuedAsNew"]);

/** SPIRE's node attestation rate limit: 1 per second per source IP (ratelimit.attestation). */
export const ATTESTATION_PACE_SECONDS = 1;
/** A restarted server opens its API in seconds; a minute rides out a slow VM and datastore. */
export const RESTART_WAIT_SECONDS = 120;
export const RESTART_POLL_SECONDS = 5;

/** The orchestration's input from settings: it never reads them itself. */
export function sweepInput(
  config: Pick<AppConfig, "reattest" | "deploy">,
  trigger: HealthSweepInput["trigger"],
  mode: HealthSweepInput["mode"],
): HealthSweepInput {
  return {
    trigger,
    mode,
    reattestTiming: {
      revisionTimeoutSeconds: config.reattest.revisionTimeoutSeconds,
      verifyTimeoutSeconds: config.reattest.verifyTimeoutSeconds,
    },
    paceSeconds: ATTESTATION_PACE_SECONDS,
    // A CA reset re-attests the fleet through the deploy workflow: its settings, built as
    // functions/deploy.ts builds them for an HTTP deploy (the sweep adds the reason).
    deploy: {
      maxParallel: DEFAULT_MAX_PARALLEL,
      reattestTiming: config.reattest,
      startSpacingSeconds: config.deploy.attestSpacingMs / 1000,
      serverWaitSeconds: DEFAULT_SERVER_WAIT_SECONDS,
    },
    restartWaitSeconds: RESTART_WAIT_SECONDS,
    restartPollSeconds: RESTART_POLL_SECONDS,
  };
}

/** Starts a sweep unless one runs; throws TaskHubUnavailable when the task hub cannot say. */
export async function startHealthSweep(
  client: DurableClient,
  input: HealthSweepInput,
): Promise<SweepStartOutcome> {
  const instanceId = HEALTH_SWEEP_INSTANCE_ID;
  const existing = await readInstance(client, instanceId);
  if (existing && RUNNING.has(String(existing.runtimeStatus))) return { kind: "running", instanceId };
  try {
    await client.startNew(HEALTH_SWEEP_ORCHESTRATION, { instanceId, input });
  } catch (err) {
    const again = await readInstance(client, instanceId);
    const createdSince = again !== undefined && String(again.createdTime) !== String(existing?.createdTime);
    if (again && (RUNNING.has(String(again.runtimeStatus)) || createdSince))
      return { kind: "running", instanceId };
    throw unavailable(`starting ${instanceId}`, err);
  }
  return { kind: "started", instanceId };
}
