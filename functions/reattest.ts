import type { HttpRequest, HttpResponseInit, InvocationContext } from "@azure/functions";
import type { DurableClient } from "durable-functions";
import { z } from "zod";
import {
  REATTEST_ORCHESTRATION,
  type ReattestInput,
  type ReattestOutput,
  reattestInstanceId,
} from "../orchestrations/reattest.js";
import type { AppConfig } from "../shared/config.js";
import { type AppLookup, refusal } from "../shared/containerapp/lookup.js";
import { createLogger } from "../shared/logging.js";
import { parseAppName } from "../shared/spiffe/index.js";
import { json, problem, readJsonBody } from "./http.js";

export interface ReattestDeps {
  config: Pick<AppConfig, "apps" | "alerts">;
  lookupApp(name: string): Promise<AppLookup>;
}

const bodySchema = z
  .object({
    reason: z.string().max(500, "reason is at most 500 characters").optional(),
    force: z.boolean().optional(),
  })
  .strict();

const RUNNING = new Set(["Running", "Pending", "Suspended"]);

/** 202 pointing at an instance, with the durable status URLs (Location = status query). */
function accepted(
  client: DurableClient,
  request: HttpRequest,
  instanceId: string,
  extra: Record<string, unknown>,
) {
  const check = client.createCheckStatusResponse(request, instanceId);
  const links = client.createHttpManagementPayload(instanceId);
  return json(202, { ...links, ...extra }, Object.fromEntries(check.headers.entries()));
}

export type StartOutcome =
  | { kind: "started"; instanceId: string }
  | { kind: "running"; instanceId: string }
  | { kind: "coolingDown"; instanceId: string; lastRun: string; outcome: string };

/**
 * Start the app's re-attestation unless one is running (one instance per app) or, without force, one
 * finished within the cooldown. Shared by the HTTP trigger and the alert webhook.
 */
export async function startReattest(
  client: DurableClient,
  input: ReattestInput,
  cooldownSeconds: number,
  force: boolean,
  now = Date.now(),
): Promise<StartOutcome> {
  const instanceId = reattestInstanceId(input.app);
  const existing = await client.getStatus(instanceId).catch(() => undefined);
  if (existing && RUNNING.has(String(existing.runtimeStatus))) return { kind: "running", instanceId };
  if (existing && !force) {
    const finished = new Date(existing.lastUpdatedTime).getTime();
    if (now - finished < cooldownSeconds * 1000) {
      const outcome = (existing.output as ReattestOutput | null)?.outcome ?? String(existing.runtimeStatus);
      return { kind: "coolingDown", instanceId, lastRun: new Date(finished).toISOString(), outcome };
    }
  }
  try {
    await client.startNew(REATTEST_ORCHESTRATION, { instanceId, input });
  } catch (err) {
    // Another request won the race to start it: that one is the run.
    const again = await client.getStatus(instanceId).catch(() => undefined);
    if (again && RUNNING.has(String(again.runtimeStatus))) return { kind: "running", instanceId };
    throw err;
  }
  return { kind: "started", instanceId };
}

export function reattestHttpHandler(deps: ReattestDeps) {
  return async (
    request: HttpRequest,
    client: DurableClient,
    context: InvocationContext,
  ): Promise<HttpResponseInit> => {
    const log = createLogger(context);
    let app: string;
    try {
      app = parseAppName(request.params.app ?? "");
    } catch (err) {
      return problem(400, (err as Error).message);
    }
    const body = await readJsonBody(request, true);
    if (!body.ok) return body.response;
    const parsed = bodySchema.safeParse(body.value ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return problem(
        400,
        `Invalid body: ${issue?.path.join(".") || "body"}: ${issue?.message} (expected {"reason"?: string, "force"?: boolean}).`,
      );
    }
    const refused = refusal(await deps.lookupApp(app), deps.config);
    if (refused) return problem(refused.status, refused.error);

    const input: ReattestInput = { app, trigger: "http", reason: parsed.data.reason };
    const outcome = await startReattest(
      client,
      input,
      deps.config.alerts.cooldownSeconds,
      parsed.data.force === true,
    );
    log.info("re-attestation requested", { app, outcome: outcome.kind, instanceId: outcome.instanceId });
    if (outcome.kind === "coolingDown") {
      return problem(
        409,
        `The last re-attestation of ${app} finished at ${outcome.lastRun} (${outcome.outcome}), within the ${deps.config.alerts.cooldownSeconds} s cooldown; send {"force": true} to run again now.`,
      );
    }
    return accepted(client, request, outcome.instanceId, { app, alreadyRunning: outcome.kind === "running" });
  };
}
