import { createHash } from "node:crypto";
import type { TableClient, TransactionAction } from "@azure/data-tables";
import type { RotationAction } from "./decision.js";

/*
 * The trust bundle's rows in the fleet table, in a partition of their own ("_bundle" cannot be a
 * Container App name, which starts with a letter): one summary row (the last run and the last
 * version written) and one event row per version written, a CA reset among them with both sets
 * of roots. Both rows go in one transaction, so a retried record is the same pair of rows.
 */

export const BUNDLE_PARTITION = "_bundle";
export const SUMMARY_ROW = "rotation-latest";

export interface RotationRecord {
  runId: string;
  trigger: string;
  reason: string;
  startedAt: string;
  finishedAt: string;
  action: RotationAction | "refused" | "failed";
  /** The Key Vault version current after the run. */
  version?: string;
  previousVersion?: string;
  written: boolean;
  serverFingerprints: string[];
  vaultFingerprints: string[];
  failure?: string;
}

export interface LastRotation {
  lastRunAt?: string;
  lastRunTrigger?: string;
  lastRunReason?: string;
  lastRunAction?: string;
  lastRunFailure?: string;
  version?: string;
  lastWriteAt?: string;
  lastWriteAction?: string;
  lastWriteReason?: string;
  lastWriteVersion?: string;
  lastCaResetAt?: string;
}

const short = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 16);

/** Event rows sort by kind, then time; unique per run. */
export function eventRowKey(kind: string, finishedAt: string, runId: string): string {
  return `${kind}_${new Date(finishedAt).toISOString()}_${short(runId)}`;
}

const defined = (o: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

/** The transaction recording one run (pure: the rows it writes). */
export function rotationRows(r: RotationRecord): TransactionAction[] {
  const summary: Record<string, unknown> = {
    partitionKey: BUNDLE_PARTITION,
    rowKey: SUMMARY_ROW,
    lastRunAt: r.finishedAt,
    lastRunTrigger: r.trigger,
    lastRunReason: r.reason,
    lastRunAction: r.action,
    // A Merge keeps the last failure unless replaced: clear it on a good run.
    lastRunFailure: r.failure ?? "",
    version: r.version,
  };
  const actions: TransactionAction[] = [];
  if (r.written) {
    Object.assign(summary, {
      lastWriteAt: r.finishedAt,
      lastWriteAction: r.action,
      lastWriteReason: r.reason,
      lastWriteVersion: r.version,
    });
    if (r.action === "ca-reset") summary.lastCaResetAt = r.finishedAt;
    const kind = r.action === "ca-reset" ? "ca-reset" : "bundle-written";
    actions.push([
      "upsert",
      {
        partitionKey: BUNDLE_PARTITION,
        rowKey: eventRowKey(kind, r.finishedAt, r.runId),
        ...defined({
          kind,
          action: r.action,
          runId: r.runId,
          trigger: r.trigger,
          reason: r.reason,
          startedAt: r.startedAt,
          finishedAt: r.finishedAt,
          version: r.version,
          previousVersion: r.previousVersion,
          serverFingerprints: JSON.stringify(r.serverFingerprints),
          vaultFingerprints: JSON.stringify(r.vaultFingerprints),
        }),
      },
      "Replace",
    ]);
  }
  actions.unshift(["upsert", defined(summary) as { partitionKey: string; rowKey: string }, "Merge"]);
  return actions;
}

export async function recordRotation(table: TableClient, record: RotationRecord): Promise<void> {
  await table.submitTransaction(rotationRows(record));
}

/**
 * Notes a version this app just wrote, before the run records itself: Key Vault raises
 * SecretNewVersionCreated for it within seconds, and the event trigger checks the summary row's
 * lastWriteVersion to tell the app's own writes (nothing to check: the writer read the server a
 * moment ago) from anyone else's. The run's record later merges the same version again, with
 * the run's finish time as lastWriteAt.
 */
export async function noteBundleWrite(
  table: Pick<TableClient, "upsertEntity">,
  write: { version: string; at: string },
): Promise<void> {
  await table.upsertEntity(
    {
      partitionKey: BUNDLE_PARTITION,
      rowKey: SUMMARY_ROW,
      lastWriteVersion: write.version,
      lastWriteAt: write.at,
    },
    "Merge",
  );
}

/** The summary row, or undefined before the first run. */
export async function readLastRotation(
  table: Pick<TableClient, "getEntity">,
): Promise<LastRotation | undefined> {
  try {
    const e = await table.getEntity<Record<string, unknown>>(BUNDLE_PARTITION, SUMMARY_ROW);
    const out: LastRotation = {};
    for (const key of [
      "lastRunAt",
      "lastRunTrigger",
      "lastRunReason",
      "lastRunAction",
      "lastRunFailure",
      "version",
      "lastWriteAt",
      "lastWriteAction",
      "lastWriteReason",
      "lastWriteVersion",
      "lastCaResetAt",
    ] as const) {
      const v = e[key];
      if (typeof v === "string" && v !== "") out[key] = v;
    }
    return out;
  } catch (err) {
    if ((err as { statusCode?: unknown }).statusCode === 404) return undefined;
    throw err;
  }
}

/** The version of the bundle secret this app last wrote, and when; undefined before any write. */
export async function lastBundleWrite(
  table: Pick<TableClient, "getEntity">,
): Promise<{ version: string; at?: string } | undefined> {
  const last = await readLastRotation(table);
  if (!last?.lastWriteVersion) return undefined;
  return { version: last.lastWriteVersion, ...(last.lastWriteAt && { at: last.lastWriteAt }) };
}

export interface CaResetEvent {
  at: string;
  version?: string;
  previousVersion?: string;
  serverFingerprints: string[];
  vaultFingerprints: string[];
}

/** Every recorded CA reset, oldest first. */
export async function listCaResets(table: Pick<TableClient, "listEntities">): Promise<CaResetEvent[]> {
  const out: CaResetEvent[] = [];
  const rows = table.listEntities<Record<string, unknown>>({
    queryOptions: { filter: `PartitionKey eq '${BUNDLE_PARTITION}' and kind eq 'ca-reset'` },
  });
  for await (const e of rows) {
    out.push({
      at: String(e.finishedAt ?? ""),
      ...(typeof e.version === "string" ? { version: e.version } : {}),
      ...(typeof e.previousVersion === "string" ? { previousVersion: e.previousVersion } : {}),
      serverFingerprints: JSON.parse(String(e.serverFingerprints ?? "[]")) as string[],
      vaultFingerprints: JSON.parse(String(e.vaultFingerprints ?? "[]")) as string[],
    });
  }
  return out;
}
