/**
 * Scheduled query rules (log search alerts) as data: the shape of
 * Microsoft.Insights/scheduledQueryRules properties, so infra can deploy the same definitions
 * (Bicep's loadJsonContent/loadTextContent), with the query given inline or as one of the
 * product's `.kql` files.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { KQL_QUERIES, type KqlQueryName, loadKql } from "../../../shared/kql/index.js";
import { parseIsoDuration } from "../logs/kql/values.js";

const isoDuration = z
  .string()
  .refine((s) => (parseIsoDuration(s) ?? 0) > 0, "an ISO 8601 duration such as PT5M");

export const ALERT_OPERATORS = [
  "GreaterThan",
  "GreaterThanOrEqual",
  "LessThan",
  "LessThanOrEqual",
  "Equal",
] as const;
export type AlertOperator = (typeof ALERT_OPERATORS)[number];

export const TIME_AGGREGATIONS = ["Count", "Total", "Average", "Minimum", "Maximum"] as const;
export type TimeAggregation = (typeof TIME_AGGREGATIONS)[number];

const dimensionSchema = z.object({
  name: z.string().min(1),
  operator: z.enum(["Include", "Exclude"]).default("Include"),
  values: z.array(z.string()).min(1).default(["*"]),
});

const conditionSchema = z
  .object({
    query: z.string().min(1).optional(),
    /** One of shared/kql/*.kql, without the extension. */
    queryFile: z.enum(KQL_QUERIES).optional(),
    timeAggregation: z.enum(TIME_AGGREGATIONS),
    metricMeasureColumn: z.string().min(1).optional(),
    dimensions: z.array(dimensionSchema).default([]),
    operator: z.enum(ALERT_OPERATORS),
    threshold: z.number(),
    failingPeriods: z
      .object({
        numberOfEvaluationPeriods: z.number().int().min(1).max(6),
        minFailingPeriodsToAlert: z.number().int().min(1).max(6),
      })
      .refine(
        (f) => f.minFailingPeriodsToAlert <= f.numberOfEvaluationPeriods,
        "minFailingPeriodsToAlert > numberOfEvaluationPeriods",
      )
      .default({ numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }),
  })
  .refine(
    (c) => (c.query === undefined) !== (c.queryFile === undefined),
    "give exactly one of query and queryFile",
  )
  .refine(
    (c) => c.timeAggregation === "Count" || c.metricMeasureColumn !== undefined,
    "metricMeasureColumn is required unless timeAggregation is Count",
  );

export const alertRuleSchema = z.object({
  name: z.string().min(1),
  description: z.string().default(""),
  /** 0 (critical) .. 4 (verbose). */
  severity: z.number().int().min(0).max(4),
  enabled: z.boolean().default(true),
  evaluationFrequency: isoDuration,
  windowSize: isoDuration,
  criteria: z.object({
    allOf: z.array(conditionSchema).length(1, "exactly one condition (as Azure allows)"),
  }),
  /** Resolve the alert when the condition clears. */
  autoMitigate: z.boolean().default(true),
});

export type AlertRuleDefinition = z.input<typeof alertRuleSchema>;

export interface AlertRule {
  name: string;
  description: string;
  severity: number;
  enabled: boolean;
  evaluationFrequencyMs: number;
  windowSizeMs: number;
  evaluationFrequency: string;
  windowSize: string;
  query: string;
  queryFile?: KqlQueryName;
  timeAggregation: TimeAggregation;
  metricMeasureColumn?: string;
  dimensions: { name: string; operator: "Include" | "Exclude"; values: string[] }[];
  operator: AlertOperator;
  threshold: number;
  failingPeriods: { numberOfEvaluationPeriods: number; minFailingPeriodsToAlert: number };
  autoMitigate: boolean;
}

/** Validates a definition and loads its query; errors name the rule and the field. */
export function parseAlertRule(definition: unknown): AlertRule {
  const parsed = alertRuleSchema.safeParse(definition);
  if (!parsed.success) {
    const name = (definition as { name?: unknown })?.name;
    const problems = parsed.error.issues
      .map((i) => `${i.path.join(".") || "(rule)"}: ${i.message}`)
      .join("; ");
    throw new Error(`invalid alert rule${typeof name === "string" ? ` '${name}'` : ""}: ${problems}`);
  }
  const r = parsed.data;
  const c = r.criteria.allOf[0] as z.output<typeof conditionSchema>;
  return {
    name: r.name,
    description: r.description,
    severity: r.severity,
    enabled: r.enabled,
    evaluationFrequency: r.evaluationFrequency,
    windowSize: r.windowSize,
    evaluationFrequencyMs: parseIsoDuration(r.evaluationFrequency) ?? 0,
    windowSizeMs: parseIsoDuration(r.windowSize) ?? 0,
    query: c.query ?? loadKql(c.queryFile as KqlQueryName),
    queryFile: c.queryFile,
    timeAggregation: c.timeAggregation,
    metricMeasureColumn: c.metricMeasureColumn,
    dimensions: c.dimensions,
    operator: c.operator,
    threshold: c.threshold,
    failingPeriods: c.failingPeriods,
    autoMitigate: r.autoMitigate,
  };
}

/** A JSON file holding one rule definition or an array of them. */
export function loadAlertRules(file: string): AlertRule[] {
  const parsed: unknown = JSON.parse(readFileSync(file, "utf8"));
  return (Array.isArray(parsed) ? parsed : [parsed]).map(parseAlertRule);
}
