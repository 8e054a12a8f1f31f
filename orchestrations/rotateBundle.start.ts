import type { DurableClient } from "durable-functions";
import { readInstance, unavailable } from "../shared/durable.js";

/*
 * Starting a trust-material rotation: the one way in for the timer, the Key Vault event trigger,
 * the operator's HTTP call and (later) deploy and the sweep. A singleton: every nudge while one
 * runs joins that run, since a rotation reads the current state when it starts.
 */

export const ROTATE_BUNDLE_ORCHESTRATION = "rotateBundle";
export const ROTATE_BUNDLE_INSTANCE_ID = "rotate-bundle";

export type RotationTrigger = "timer" | "event" | "http" | "deploy" | "sweep";

export interface RotateBundleInput {
  trigger: RotationTrigger;
  /** Why it runs, for the output and the fleet table (an event type, "schedule", an operator's reason). */
  reason: string;
}

export type RotationStartOutcome = { kind: "started" | "running"; instanceId: string };

const RUNNING = new Set(["Running", "Pending", "Suspended", "ContinuedAsNew"]);

/** Starts the rotation unless one runs; throws TaskHubUnavailable when the task hub cannot say. */
export async function startRotateBundle(
  client: DurableClient,
  input: RotateBundleInput,
): Promise<RotationStartOutcome> {
  const instanceId = ROTATE_BUNDLE_INSTANCE_ID;
  const existing = await readInstance(client, instanceId);
  if (existing && RUNNING.has(String(existing.runtimeStatus))) return { kind: "running", instanceId };
  try {
    await client.startNew(ROTATE_BUNDLE_ORCHESTRATION, { instanceId, input });
  } catch (err) {
    // Another nudge won the race to start it. That run may already have finished (a rotation with
    // nothing to do takes a second), so a run created since we looked counts as joined too.
    const again = await readInstance(client, instanceId);
    const createdSince = again !== undefined && String(again.createdTime) !== String(existing?.createdTime);
    if (again && (RUNNING.has(String(again.runtimeStatus)) || createdSince)) {
      return { kind: "running", instanceId };
    }
    throw unavailable(`starting ${instanceId}`, err);
  }
  return { kind: "started", instanceId };
}
