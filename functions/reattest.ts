import type { HttpRequest, HttpResponseInit, InvocationContext } from "@azure/functions";
import type { DurableClient } from "durable-functions";
import { z } from "zod";
import { startReattest } from "../orchestrations/reattest.start.js";
import type { AppConfig } from "../shared/config.js";
import { type AppLookup, refusal } from "../shared/containerapp/lookup.js";
import { createLogger } from "../shared/logging.js";
import { parseAppName } from "../shared/spiffe/index.js";
import { json, problem, readValidBody } from "./http.js";
import { unavailableResponse } from "./unavailable.js";

export interface ReattestDeps {
  config: Pick<AppConfig, "apps" | "alerts" | "reattest">;
  lookupApp(name: string): Promise<AppLookup>;
}

const bodySchema = z
  .object({
    reason: z.string().max(500, "reason is at most 500 characters").optional(),
    force: z.boolean().optional(),
  })
  .strict();

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
    const parsed = await readValidBody(request, bodySchema, '{"reason"?: string, "force"?: boolean}');
    if (!parsed.ok) return parsed.response;
    const refused = refusal(await deps.lookupApp(app), deps.config);
    if (refused) return problem(refused.status, refused.error);

    let outcome: Awaited<ReturnType<typeof startReattest>>;
    try {
      outcome = await startReattest(
        client,
        { app, trigger: "http", reason: parsed.value.reason },
        {
          cooldownSeconds: deps.config.alerts.cooldownSeconds,
          timing: deps.config.reattest,
          force: parsed.value.force === true,
        },
      );
    } catch (err) {
      const outage = unavailableResponse(err);
      if (!outage) throw err;
      log.warn("re-attestation not started: task hub unavailable", { app });
      return outage;
    }
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
