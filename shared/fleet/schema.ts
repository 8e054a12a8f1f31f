import { z } from "zod";

/*
 * The fleet table's sweep rows as the operator surface reads them: one row per app (partition
 * FLEET_PARTITION, row key = app name) and the last sweep's summary (SWEEP_SUMMARY_PARTITION /
 * SWEEP_SUMMARY_ROW), as the health sweep writes them (shared/health/fleet-state.ts on the sweep's
 * branch: verdictSince, lastSweepAt, finishedAt, server, sweepId). Unknown columns are ignored and
 * a malformed row reads as "unknown", never as a crash of the page.
 */

/** "_" cannot start a Container App name, so these partitions never meet an app's ledger rows. */
export const FLEET_PARTITION = "_fleet";
export const SWEEP_SUMMARY_PARTITION = "_sweep";
export const SWEEP_SUMMARY_ROW = "latest";

const isoTime = z
  .union([z.date(), z.string()])
  .transform((v) => (v instanceof Date ? v : new Date(v)))
  .refine((d) => !Number.isNaN(d.getTime()), "not a time")
  .transform((d) => d.toISOString());

const optionalIso = isoTime.optional().catch(undefined);
const optionalText = z.string().optional().catch(undefined);

export const fleetRowSchema = z.object({
  rowKey: z.string(),
  verdict: z.string().catch("unknown"),
  reason: optionalText,
  /** When the app entered its current verdict. */
  since: optionalIso,
  lastSignedAt: optionalIso,
  agentExpiresAt: optionalIso,
  workloadExpiresAt: optionalIso,
  /** SHA-256 of the agent's join token (the agent's name in the ledger), never the token. */
  agentSha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional()
    .catch(undefined),
  lastAction: optionalText,
  lastActionAt: optionalIso,
  sweptAt: optionalIso,
  /** When the renewal that did not happen was due (stalled and silent verdicts). */
  dueAt: optionalIso,
});

/** The sweep's column names, mapped onto the reader's. */
const ROW_ALIASES: Record<string, string> = { verdictSince: "since", lastSweepAt: "sweptAt" };
const SUMMARY_ALIASES: Record<string, string> = {
  finishedAt: "at",
  server: "serverVerdict",
  sweepId: "instanceId",
};

function aliased(entity: Record<string, unknown>, aliases: Record<string, string>): Record<string, unknown> {
  const out = { ...entity };
  for (const [from, to] of Object.entries(aliases)) {
    if (out[to] === undefined && out[from] !== undefined) out[to] = out[from];
  }
  return out;
}

export type FleetRow = Omit<z.output<typeof fleetRowSchema>, "rowKey"> & { app: string };

export const sweepSummarySchema = z.object({
  at: isoTime,
  mode: z.string().catch("repair"),
  serverVerdict: z.string().catch("unknown"),
  serverReason: optionalText,
  instanceId: optionalText,
  repairs: z.number().int().min(0).optional().catch(undefined),
});

export type SweepSummary = z.output<typeof sweepSummarySchema>;

/** A table entity as a FleetRow, or undefined when it is not one. */
export function parseFleetRow(entity: Record<string, unknown>): FleetRow | undefined {
  const parsed = fleetRowSchema.safeParse(aliased(entity, ROW_ALIASES));
  if (!parsed.success) return undefined;
  const { rowKey, ...rest } = parsed.data;
  return { app: rowKey, ...rest };
}

export function parseSweepSummary(entity: Record<string, unknown>): SweepSummary | undefined {
  const parsed = sweepSummarySchema.safeParse(aliased(entity, SUMMARY_ALIASES));
  return parsed.success ? parsed.data : undefined;
}
