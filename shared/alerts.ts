import { z } from "zod";
import { parseAppName } from "./spiffe/index.js";

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

/**
 * The most apps one alert may name. A split rule fires once per app, so a real alert names one; a
 * payload naming hundreds is not from our rule, and each name costs ARM lookups.
 */
export const MAX_ALERT_APPS = 50;

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
  if (apps.size > MAX_ALERT_APPS) {
    return {
      ok: false,
      problem: `the alert names ${apps.size} apps; at most ${MAX_ALERT_APPS} are accepted (split the rule by ContainerAppName so each firing names one app)`,
    };
  }
  // Names go into ARM URLs and instance ids: refuse any that is not a Container App name before
  // anything is looked up.
  const bad: string[] = [];
  for (const app of apps) {
    try {
      parseAppName(app);
    } catch (err) {
      bad.push((err as Error).message);
    }
  }
  if (bad.length > 0) {
    return {
      ok: false,
      problem: `the alert names what is not a Container App: ${bad.slice(0, 5).join("; ")}`,
    };
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
