import { z } from "zod";
import { type LogSink, redactText } from "../shared/logging.js";
import type { Services } from "../shared/services.js";
import type { ActivityResult } from "./contracts.js";
import { DeployActivities, type DeployRecordInput } from "./deploy.contracts.js";
import { ledgerRowKey } from "./ledger.js";
import { runActivity } from "./run.js";

/*
 * The deploy's own row in the fleet table, beside the per-app rows its re-attestations write: the
 * deploy's outcome, totals, step times and each app's outcome. Partition "_deploy" (no app name
 * starts with "_", so it never mixes with an app's rows), rows sorted by finish time, keyed by
 * the run so a retried write is the same row.
 */

export const DEPLOY_PARTITION = "_deploy";
const MAX_TEXT = 8000;
const isoTime = z.string().refine((s) => !Number.isNaN(Date.parse(s)), "not an ISO time");
const count = z.number().int().min(0);

const RecordSchema = z.object({
  runId: z.string().min(1).max(400),
  reason: z.string().optional(),
  startedAt: isoTime,
  finishedAt: isoTime,
  outcome: z.enum(["succeeded", "partial", "failed"]),
  failure: z.string().optional(),
  spireAccess: z.enum(["grpc", "run-command"]),
  totals: z.object({
    apps: count,
    succeeded: count,
    failed: count,
    skipped: count,
    entriesCreated: count,
    entriesUpdated: count,
    entriesDeleted: count,
    tokenCount: count,
    imagesChanged: count,
  }),
  stepSeconds: z.record(z.string(), z.number()),
  apps: z
    .array(
      z.object({
        app: z.string().max(64),
        outcome: z.enum(["succeeded", "failed", "skipped"]),
        reason: z.string(),
      }),
    )
    .max(2000),
});

const text = (s: string | undefined) => (s === undefined ? undefined : redactText(s).slice(0, MAX_TEXT));

export function deployRecord(
  input: DeployRecordInput,
  services?: Services,
  sink?: LogSink,
): Promise<ActivityResult<{ partitionKey: string; rowKey: string }>> {
  return runActivity(
    DeployActivities.deployRecord,
    RecordSchema,
    input,
    services,
    sink,
    async (i, s, log) => {
      const table = await s.fleetTable();
      const partitionKey = DEPLOY_PARTITION;
      const rowKey = ledgerRowKey(i.finishedAt, i.runId);
      // Table Storage caps a string property at 64 KB: the per-app list is clipped, the totals are not.
      const apps = JSON.stringify(i.apps.map((a) => ({ ...a, reason: a.reason.slice(0, 200) })));
      const entity = {
        partitionKey,
        rowKey,
        kind: "deploy",
        runId: i.runId,
        reason: text(i.reason),
        startedAt: new Date(i.startedAt),
        finishedAt: new Date(i.finishedAt),
        outcome: i.outcome,
        failure: text(i.failure),
        spireAccess: i.spireAccess,
        ...i.totals,
        stepSeconds: JSON.stringify(i.stepSeconds),
        appOutcomes: redactText(apps).slice(0, 30_000),
      };
      const compact = Object.fromEntries(Object.entries(entity).filter(([, v]) => v !== undefined));
      await table.upsertEntity({ ...compact, partitionKey, rowKey }, "Replace");
      log.info("recorded the deploy in the fleet ledger", { rowKey, outcome: i.outcome });
      return { partitionKey, rowKey };
    },
  );
}
