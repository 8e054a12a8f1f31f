import type { HttpRequest, HttpResponseInit, InvocationContext, Timer } from "@azure/functions";
import type { DurableClient } from "durable-functions";
import { z } from "zod";
import { startHealthSweep, sweepInput } from "../orchestrations/healthSweep.start.js";
import type { AppConfig } from "../shared/config.js";
import { createLogger } from "../shared/logging.js";
import { json, readValidBody } from "./http.js";
import { unavailableResponse } from "./unavailable.js";

/* The health sweep's triggers: the schedule (HEALTH_SWEEP_SCHEDULE) and "sweep now". */

export function sweepTimerHandler(config: Pick<AppConfig, "reattest" | "deploy" | "sweep">) {
  return async (_timer: Timer, client: DurableClient, context: InvocationContext): Promise<void> => {
    const log = createLogger(context);
    try {
      const outcome = await startHealthSweep(client, sweepInput(config, "timer", config.sweep.mode));
      log.info("health sweep", { outcome: outcome.kind, instanceId: outcome.instanceId });
    } catch (err) {
      // The next tick sweeps again; a failed start changes nothing.
      if (!unavailableResponse(err)) throw err;
      log.warn("health sweep not started: task hub unavailable", { error: (err as Error).message });
    }
  };
}

const sweepBody = z.object({ mode: z.enum(["repair", "observe"]).optional() }).strict();

export function sweepHttpHandler(config: Pick<AppConfig, "reattest" | "deploy" | "sweep">) {
  return async (
    request: HttpRequest,
    client: DurableClient,
    context: InvocationContext,
  ): Promise<HttpResponseInit> => {
    const log = createLogger(context);
    const parsed = await readValidBody(request, sweepBody, '{"mode"?: "repair" | "observe"}');
    if (!parsed.ok) return parsed.response;
    const mode = parsed.value.mode ?? config.sweep.mode;
    let outcome: Awaited<ReturnType<typeof startHealthSweep>>;
    try {
      outcome = await startHealthSweep(client, sweepInput(config, "http", mode));
    } catch (err) {
      const outage = unavailableResponse(err);
      if (!outage) throw err;
      log.warn("health sweep not started: task hub unavailable");
      return outage;
    }
    log.info("health sweep requested", { outcome: outcome.kind, mode, instanceId: outcome.instanceId });
    const check = client.createCheckStatusResponse(request, outcome.instanceId);
    const links = client.createHttpManagementPayload(outcome.instanceId);
    return json(
      202,
      { ...links, mode, alreadyRunning: outcome.kind === "running" },
      Object.fromEntries(check.headers.entries()),
    );
  };
}
