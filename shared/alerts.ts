import { z } from "zod";

/*
 * Azure Monitor's common alert schema, as a log search alert (V2) posts it to a webhook. Only the
 * fields we act on are required; everything else passes through unchecked. The app to repair comes
 * from the alert's dimensions (the crash-loop rule splits by container app name).
 */

const dimension = z.object({ name: z.string(), value: z.string() });

const essentials = z.object({
  alertId: z.string().min(1),
  alertRule: z.string().min(1),
  severity: z.string().regex(/^Sev[0-4]$/),
  signalType: z.string(),
  monitorCondition: z.enum(["Fired", "Resolved"]),
  monitoringService: z.string(),
  alertTargetIDs: z.array(z.string()).optional(),
  configurationItems: z.array(z.string()).optional(),
  firedDateTime: z.string().optional(),
  resolvedDateTime: z.string().optional(),
});

const condition = z.object({
  windowStartTime: z.string().optional(),
  windowEndTime: z.string().optional(),
  allOf: z
    .array(
      z.object({
        searchQuery: z.string().optional(),
        metricValue: z.number().optional(),
        dimensions: z.array(dimension).optional(),
      }),
    )
    .min(1),
});

export const commonAlertSchema = z.object({
  schemaId: z.literal("azureMonitorCommonAlertSchema"),
  data: z.object({
    essentials,
    alertContext: z
      .object({ conditionType: z.string().optional(), condition: condition.optional() })
      .passthrough(),
  }),
});

export type CommonAlert = z.infer<typeof commonAlertSchema>;

/** Dimension names that carry the Container App's name, in the console-log and system-log tables. */
export const APP_DIMENSIONS = ["ContainerAppName", "ContainerAppName_s", "app"] as const;

export interface AlertSummary {
  alertId: string;
  rule: string;
  condition: "Fired" | "Resolved";
  /** Apps named in the alert's dimensions (one per split), deduplicated. */
  apps: string[];
  firedAt?: string;
}

export type AlertParse = { ok: true; alert: AlertSummary } | { ok: false; problem: string };

/** Validate a webhook body; the problem text names what is wrong, for a 400 answer. */
export function parseCommonAlert(body: unknown): AlertParse {
  const parsed = commonAlertSchema.safeParse(body);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const where = first?.path.length ? first.path.join(".") : "body";
    return {
      ok: false,
      problem: `not a common alert schema payload: ${where}: ${first?.message ?? "invalid"} (expected schemaId "azureMonitorCommonAlertSchema" with data.essentials and data.alertContext)`,
    };
  }
  const { essentials: e, alertContext } = parsed.data.data;
  const apps = new Set<string>();
  for (const c of alertContext.condition?.allOf ?? []) {
    for (const d of c.dimensions ?? []) {
      if ((APP_DIMENSIONS as readonly string[]).includes(d.name) && d.value !== "") apps.add(d.value);
    }
  }
  return {
    ok: true,
    alert: {
      alertId: e.alertId,
      rule: e.alertRule,
      condition: e.monitorCondition,
      apps: [...apps].sort(),
      firedAt: e.firedDateTime,
    },
  };
}
