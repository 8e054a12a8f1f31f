import { z } from "zod";
import type { LogSink } from "../shared/logging.js";
import { redactText } from "../shared/logging.js";
import type { Services } from "../shared/services.js";
import { Activities, type ActivityResult, type LedgerRecordInput } from "./contracts.js";
import { runActivity, sha256Hex } from "./run.js";

/*
 * The fleet ledger: one Table Storage row per re-attest run, partitioned by app, rows sorted by
 * when the run finished. Upserted under a key derived from the run, so a retried write is the
 * same row.
 */

export interface LedgerRecordOutput {
  partitionKey: string;
  rowKey: string;
}

const MAX_TEXT = 8000;

const LedgerSchema = z.object({
  app: z.string().regex(/^[a-z][a-z0-9-]{0,30}[a-z0-9]$/, "not a Container App name"),
  runId: z.string().min(1).max(400),
  trigger: z.enum(["http", "alert", "sweep", "deploy"]),
  reason: z.string().optional(),
  startedAt: z.string().refine((s) => !Number.isNaN(Date.parse(s)), "not an ISO time"),
  finishedAt: z.string().refine((s) => !Number.isNaN(Date.parse(s)), "not an ISO time"),
  outcome: z.enum(["succeeded", "failed"]),
  failure: z.string().optional(),
  warning: z.string().optional(),
  stepSeconds: z.record(z.string(), z.number()),
  previousAgents: z.number().int().min(0),
  newAgentSha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
});

/** Sorts by finish time (ISO 8601 UTC sorts as text), unique per run. */
export function ledgerRowKey(finishedAt: string, runId: string): string {
  return `${new Date(finishedAt).toISOString()}_${sha256Hex(runId).slice(0, 16)}`;
}

const text = (s: string | undefined) => (s === undefined ? undefined : redactText(s).slice(0, MAX_TEXT));

export function ledgerRecord(
  input: LedgerRecordInput,
  services?: Services,
  sink?: LogSink,
): Promise<ActivityResult<LedgerRecordOutput>> {
  return runActivity(Activities.ledgerRecord, LedgerSchema, input, services, sink, async (i, s, log) => {
    const table = await s.fleetTable();
    const partitionKey = i.app;
    const rowKey = ledgerRowKey(i.finishedAt, i.runId);
    const entity = {
      partitionKey,
      rowKey,
      kind: "reattest",
      runId: i.runId,
      trigger: i.trigger,
      reason: text(i.reason),
      startedAt: new Date(i.startedAt),
      finishedAt: new Date(i.finishedAt),
      outcome: i.outcome,
      failure: text(i.failure),
      warning: text(i.warning),
      stepSeconds: JSON.stringify(i.stepSeconds),
      previousAgents: i.previousAgents,
      newAgentSha256: i.newAgentSha256,
    };
    const compact = Object.fromEntries(Object.entries(entity).filter(([, v]) => v !== undefined));
    await table.upsertEntity({ ...compact, partitionKey, rowKey }, "Replace");
    log.info("recorded the run in the fleet ledger", {
      table: s.config.fleet.tableName,
      rowKey,
      outcome: i.outcome,
    });
    return { partitionKey, rowKey };
  });
}
