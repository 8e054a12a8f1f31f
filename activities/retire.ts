import type { Revision } from "@azure/arm-appcontainers";
import { z } from "zod";
import { planRetirement, revisionsMode } from "../shared/containerapp/retire-plan.js";
import { PermanentError } from "../shared/errors.js";
import type { LogSink } from "../shared/logging.js";
import type { Services } from "../shared/services.js";
import { Activities, type ActivityResult, type RetireInput, type RetireOutput } from "./contracts.js";
import { appName, getApp, requireManaged, runActivity } from "./run.js";

/*
 * reattestRetireRevisions: after the new agent is verified, deactivates the app's replaced
 * revisions in Multiple revision mode (see shared/containerapp/retire-plan.ts for why and which). Deactivation is the
 * revision's own ARM action (POST .../revisions/{name}/deactivate), never a change of the app's
 * template. Idempotent: a retry finds the revisions inactive and deactivates nothing.
 */

const RetireSchema = z
  .object({ app: appName, keepRevision: z.string().min(1).max(80) })
  .refine((i) => i.keepRevision.toLowerCase().startsWith(`${i.app}--`), {
    message: "keepRevision is not a revision of the app (<app>--<suffix>)",
    path: ["keepRevision"],
  });

/** Revisions listed at most; Azure keeps at most 100 inactive ones (maxInactiveRevisions). */
const MAX_REVISIONS = 500;

function describe(out: Omit<RetireOutput, "detail">, keep: string): string {
  if (out.mode === "Single") {
    return "Single revision mode: Azure deactivates the replaced revision itself once the new one runs; nothing to do.";
  }
  const parts = [
    out.retired.length > 0
      ? `deactivated ${out.retired.join(", ")} (no traffic; their agents' join token is spent)`
      : `no active revision besides ${keep} was left to deactivate`,
  ];
  if (out.keptWithTraffic.length > 0) {
    parts.push(
      `left ${out.keptWithTraffic.join(", ")} active because traffic or a label still points at them: their replicas read a spent join token and crash-loop on restart; move their traffic to ${keep}, then deactivate them`,
    );
  }
  if (out.keptNewer.length > 0) {
    parts.push(`left ${out.keptNewer.join(", ")} alone: created after ${keep}, by someone else`);
  }
  return `Multiple revision mode: ${parts.join("; ")}.`;
}

export function reattestRetireRevisions(
  input: RetireInput,
  services?: Services,
  sink?: LogSink,
): Promise<ActivityResult<RetireOutput>> {
  return runActivity(
    Activities.reattestRetireRevisions,
    RetireSchema,
    input,
    services,
    sink,
    async (i, s, log) => {
      const rg = s.config.apps.resourceGroup;
      const app = await getApp(s, i.app);
      // Only an app spire-autopilot manages is ever touched.
      requireManaged(app, s);
      const revisions: Revision[] = [];
      if (revisionsMode(app) === "Multiple") {
        for await (const r of s.containerApps.containerAppsRevisions.listRevisions(rg, i.app)) {
          revisions.push(r);
          if (revisions.length >= MAX_REVISIONS) break;
        }
      }
      const plan = planRetirement(app, revisions, i.keepRevision);
      if (plan.refused) throw new PermanentError("KeepRevisionNotActive", plan.refused);
      const retired: string[] = [];
      for (const name of plan.retire) {
        try {
          await s.containerApps.containerAppsRevisions.deactivateRevision(rg, i.app, name);
          retired.push(name);
        } catch (err) {
          // Pruned since the list (maxInactiveRevisions): nothing left to deactivate.
          if ((err as { statusCode?: unknown }).statusCode !== 404) throw err;
        }
      }
      const out = {
        mode: plan.mode,
        retired,
        keptWithTraffic: plan.keptWithTraffic,
        keptNewer: plan.keptNewer,
      };
      const detail = describe(out, i.keepRevision);
      log.info("retired the replaced revisions", { ...out, keepRevision: i.keepRevision });
      return { ...out, detail };
    },
  );
}
