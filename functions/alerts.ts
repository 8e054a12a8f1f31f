import type { HttpRequest, HttpResponseInit, InvocationContext } from "@azure/functions";
import type { DurableClient } from "durable-functions";
import { startReattest } from "../orchestrations/reattest.start.js";
import { parseCommonAlert } from "../shared/alerts.js";
import type { AppConfig } from "../shared/config.js";
import { type AppLookup, refusal } from "../shared/containerapp/lookup.js";
import { createLogger } from "../shared/logging.js";
import { mapLimited } from "../shared/spire/paging.js";
import type { WebhookAuthResult } from "../shared/webhookAuth.js";
import { json, problem, readJsonBody } from "./http.js";
import { unavailableResponse } from "./unavailable.js";

/** ARM GETs in flight for one alert: enough for a burst of apps, not a flood against ARM's limits. */
export const ALERT_LOOKUP_CONCURRENCY = 8;

export interface AlertDeps {
  config: Pick<AppConfig, "apps" | "alerts" | "reattest">;
  lookupApp(name: string): Promise<AppLookup>;
  /** Set when ALERT_AUTH=entra: the function is anonymous and the token is checked here. */
  authenticate?: (authorization: string | null) => Promise<WebhookAuthResult>;
}

/**
 * The action group's webhook: a Fired common alert re-attests the apps named in its dimensions
 * (one run per app; duplicates while it runs or within the cooldown start nothing), a Resolved one
 * is acknowledged. Any 4xx tells the action group not to retry, and nothing has started.
 */
export function alertsHttpHandler(deps: AlertDeps) {
  return async (
    request: HttpRequest,
    client: DurableClient,
    context: InvocationContext,
  ): Promise<HttpResponseInit> => {
    const log = createLogger(context);
    if (deps.authenticate) {
      const auth = await deps.authenticate(request.headers.get("authorization"));
      // 503 lets the action group retry an alert the authority's outage kept us from checking.
      if (!auth.ok) return problem(auth.unavailable ? 503 : 401, auth.problem);
    }
    const body = await readJsonBody(request, false);
    if (!body.ok) return body.response;
    const parsed = parseCommonAlert(body.value);
    if (!parsed.ok) return problem(400, parsed.problem);
    const alert = parsed.alert;
    if (alert.condition === "Resolved") {
      log.info("alert resolved", { alertId: alert.alertId, rule: alert.rule, apps: alert.apps });
      return json(200, { acknowledged: true, condition: "Resolved", started: [] });
    }
    if (alert.apps.length === 0) {
      return problem(
        400,
        `Alert ${alert.rule} names no app: split the rule by the ContainerAppName dimension so each firing names one app.`,
      );
    }
    const lookups = await mapLimited(alert.apps, ALERT_LOOKUP_CONCURRENCY, (app) => deps.lookupApp(app));
    const refused = lookups.map((l) => refusal(l, deps.config)).filter((r) => r !== undefined);
    if (refused.length > 0) {
      const status = refused.some((r) => r.status === 422) ? 422 : 404;
      return problem(status, `Nothing started: ${refused.map((r) => r.error).join(" ")}`);
    }
    const started: string[] = [];
    const alreadyRunning: string[] = [];
    const coolingDown: string[] = [];
    for (const app of alert.apps) {
      let outcome: Awaited<ReturnType<typeof startReattest>>;
      try {
        outcome = await startReattest(
          client,
          { app, trigger: "alert", reason: `${alert.rule} (${alert.alertId})` },
          { cooldownSeconds: deps.config.alerts.cooldownSeconds, timing: deps.config.reattest },
        );
      } catch (err) {
        // The action group retries a 5xx; the apps already started stay started (one run per app).
        const outage = unavailableResponse(err);
        if (!outage) throw err;
        return outage;
      }
      (outcome.kind === "started" ? started : outcome.kind === "running" ? alreadyRunning : coolingDown).push(
        app,
      );
    }
    log.info("alert handled", {
      alertId: alert.alertId,
      rule: alert.rule,
      started,
      alreadyRunning,
      coolingDown,
    });
    return json(202, { acknowledged: true, condition: "Fired", started, alreadyRunning, coolingDown });
  };
}
