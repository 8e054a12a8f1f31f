import type { DurableClient } from "durable-functions";
import { readInstance, unavailable } from "../shared/durable.js";
import { DEPLOY_INSTANCE_ID, DEPLOY_ORCHESTRATION, type DeployInput } from "./deploy.js";

/*
 * Starting a deploy: one at a time (the singleton id "deploy"); a second request while one runs is
 * told which. The HTTP trigger checks the request before this, so nothing starts for a bad one.
 */

export type DeployStartOutcome = { kind: "started" | "running"; instanceId: string };

const RUNNING = new Set(["Running", "Pending", "Suspended", "ContinuedAsNew"]);

export const DEFAULT_SERVER_WAIT_SECONDS = 180;

/**
 * A deploy's children poll their new revision and agent on a tighter schedule (2 s doubling to
 * 10 s) than a lone re-attestation (5 s to 30 s): a deploy's apps come up together, and a poll
 * landing just after readiness saves up to the whole doubled wait per app, which was most of a
 * deploy's time. It costs a few more ARM GETs / ListAgents per app, far inside their quotas.
 */
export const DEPLOY_POLL_TIMING = { firstPollSeconds: 2, maxPollSeconds: 10 } as const;

export async function startDeploy(client: DurableClient, input: DeployInput): Promise<DeployStartOutcome> {
  const instanceId = DEPLOY_INSTANCE_ID;
  const existing = await readInstance(client, instanceId);
  if (existing && RUNNING.has(String(existing.runtimeStatus))) return { kind: "running", instanceId };
  try {
    await client.startNew(DEPLOY_ORCHESTRATION, { instanceId, input });
  } catch (err) {
    const again = await readInstance(client, instanceId);
    if (again && RUNNING.has(String(again.runtimeStatus))) return { kind: "running", instanceId };
    throw unavailable(`starting ${instanceId}`, err);
  }
  return { kind: "started", instanceId };
}
