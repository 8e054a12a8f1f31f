import { createHash } from "node:crypto";
import type { TableClient, TableEntity, TransactionAction } from "@azure/data-tables";
import type { AppHealth } from "./classify.js";

/*
 * The health sweep's rows in the fleet table, beside the re-attest ledger (partitioned by app) and
 * the bundle's rows ("_bundle"): partitions starting with "_" cannot be Container App names.
 *   _fleet         one row per app: verdict, since when, why, last signing, agent SVID expiry,
 *                  the last sweep and the last action the sweep took for it
 *   _fleet-events  one row per verdict change (first sight included)
 *   _sweep         "latest" (the last sweep's summary) and one row per sweep
 * What the operator surface reads. Upserts keyed by app / sweep: a retried write is the same row.
 */

export const FLEET_STATE_PARTITION = "_fleet";
export const FLEET_EVENTS_PARTITION = "_fleet-events";
export const SWEEP_PARTITION = "_sweep";
export const SWEEP_LATEST_ROW = "latest";
/** Azure Table transactions hold at most 100 operations, all in one partition. */
const BATCH = 100;

export interface PreviousState {
  verdict: string;
  verdictSince: string;
  lastActionAt?: string;
}

const short = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 16);
const iso = (d: Date | undefined) => d?.toISOString();
const defined = (o: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

/** Every app's row from the last sweep (one paged query of one partition). */
export async function readFleetState(table: TableClient): Promise<Map<string, PreviousState>> {
  const out = new Map<string, PreviousState>();
  const rows = table.listEntities<Record<string, unknown>>({
    queryOptions: { filter: `PartitionKey eq '${FLEET_STATE_PARTITION}'` },
  });
  for await (const r of rows) {
    out.set(String(r.rowKey), {
      verdict: String(r.verdict ?? ""),
      verdictSince: String(r.verdictSince ?? ""),
      ...(typeof r.lastActionAt === "string" ? { lastActionAt: r.lastActionAt } : {}),
    });
  }
  return out;
}

/** Apps whose re-attestation (by any trigger: the ledger) finished at or after `since`. */
export async function recentlyReattested(table: TableClient, since: Date): Promise<Set<string>> {
  const out = new Set<string>();
  const rows = table.listEntities<Record<string, unknown>>({
    queryOptions: { filter: `kind eq 'reattest' and finishedAt ge datetime'${since.toISOString()}'` },
  });
  for await (const r of rows) out.add(String(r.partitionKey));
  return out;
}

/** The last sweep's summary: its known server fingerprints. */
export async function readLastSweep(table: TableClient): Promise<{ fingerprints: string[] } | undefined> {
  try {
    const r = await table.getEntity<Record<string, unknown>>(SWEEP_PARTITION, SWEEP_LATEST_ROW);
    const fps =
      typeof r.serverFingerprints === "string" ? (JSON.parse(r.serverFingerprints) as string[]) : [];
    return { fingerprints: fps };
  } catch (err) {
    if ((err as { statusCode?: unknown }).statusCode === 404) return undefined;
    throw err;
  }
}

/** The rows one sweep writes for its verdicts (pure), and the verdict changes among them. */
export function verdictRows(
  apps: readonly AppHealth[],
  previous: ReadonlyMap<string, PreviousState>,
  takenAt: Date,
  sweepId: string,
): { states: TableEntity[]; events: TableEntity[] } {
  const at = takenAt.toISOString();
  const states: TableEntity[] = [];
  const events: TableEntity[] = [];
  for (const a of apps) {
    const before = previous.get(a.app);
    const changed = before?.verdict !== a.verdict;
    states.push({
      partitionKey: FLEET_STATE_PARTITION,
      rowKey: a.app,
      ...defined({
        verdict: a.verdict,
        verdictSince: changed ? at : before?.verdictSince || at,
        reason: a.reason.slice(0, 2000),
        lastSignedAt: iso(a.lastSignedAt),
        agentExpiresAt: iso(a.agentExpiresAt),
        dueAt: iso(a.dueAt),
        lastSweepAt: at,
        lastSweepId: sweepId,
      }),
    });
    if (changed) {
      events.push({
        partitionKey: FLEET_EVENTS_PARTITION,
        rowKey: `${at}_${short(`${sweepId}/${a.app}`)}`,
        ...defined({
          app: a.app,
          from: before?.verdict,
          to: a.verdict,
          reason: a.reason.slice(0, 2000),
          dueAt: iso(a.dueAt),
          sweepId,
        }),
      });
    }
  }
  return { states, events };
}

/** Upserts (Merge: a sweep's verdict keeps the last action) in transactions of one partition each. */
export async function upsertRows(table: TableClient, rows: readonly TableEntity[]): Promise<void> {
  const byPartition = new Map<string, TableEntity[]>();
  for (const r of rows) {
    const list = byPartition.get(r.partitionKey);
    if (list) list.push(r);
    else byPartition.set(r.partitionKey, [r]);
  }
  for (const list of byPartition.values()) {
    for (let i = 0; i < list.length; i += BATCH) {
      const actions: TransactionAction[] = list.slice(i, i + BATCH).map((e) => ["upsert", e, "Merge"]);
      await table.submitTransaction(actions);
    }
  }
}
