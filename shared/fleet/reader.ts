import type { TableClient } from "@azure/data-tables";
import {
  FLEET_PARTITION,
  type FleetRow,
  parseFleetRow,
  parseSweepSummary,
  SWEEP_SUMMARY_PARTITION,
  SWEEP_SUMMARY_ROW,
  type SweepSummary,
} from "./schema.js";

/*
 * Reading the fleet table for the operator surface: the sweep's rows and one app's ledger. Every
 * read is bounded (the fleet partition holds one row per app; the ledger is read newest-first up
 * to a cap), so a long history cannot make the page slow.
 */

export interface LedgerEntry {
  rowKey: string;
  runId?: string;
  trigger?: string;
  reason?: string;
  startedAt?: string;
  finishedAt?: string;
  outcome?: string;
  failure?: string;
  warning?: string;
  stepSeconds?: Record<string, number>;
  /** SHA-256 of the join token the run's new agent attested with (its name), never the token. */
  newAgentSha256?: string;
}

export interface FleetReader {
  rows(): Promise<FleetRow[]>;
  summary(): Promise<SweepSummary | undefined>;
  /** Up to `limit` ledger runs of `app` finished before the row key `before`, newest first. */
  history(
    app: string,
    limit: number,
    before?: string,
  ): Promise<{ entries: LedgerEntry[]; next: string | null }>;
}

/** The most rows one read takes: far above one row per app of any fleet we manage. */
export const MAX_FLEET_ROWS = 5000;
const MAX_LEDGER_SCAN = 2000;

const odataString = (s: string) => `'${s.replace(/'/g, "''")}'`;

const iso = (v: unknown) =>
  v instanceof Date ? v.toISOString() : typeof v === "string" && v !== "" ? v : undefined;
const text = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);

export function ledgerEntry(e: Record<string, unknown>): LedgerEntry {
  let stepSeconds: Record<string, number> | undefined;
  try {
    stepSeconds = typeof e.stepSeconds === "string" ? JSON.parse(e.stepSeconds) : undefined;
  } catch {
    stepSeconds = undefined;
  }
  return {
    rowKey: String(e.rowKey),
    runId: text(e.runId),
    trigger: text(e.trigger),
    reason: text(e.reason),
    startedAt: iso(e.startedAt),
    finishedAt: iso(e.finishedAt),
    outcome: text(e.outcome),
    failure: text(e.failure),
    warning: text(e.warning),
    stepSeconds,
    newAgentSha256:
      typeof e.newAgentSha256 === "string" && /^[0-9a-f]{64}$/.test(e.newAgentSha256)
        ? e.newAgentSha256
        : undefined,
  };
}

export function tableFleetReader(
  table: () => Promise<Pick<TableClient, "listEntities" | "getEntity">>,
): FleetReader {
  return {
    async rows() {
      const t = await table();
      const out: FleetRow[] = [];
      for await (const e of t.listEntities<Record<string, unknown>>({
        queryOptions: { filter: `PartitionKey eq ${odataString(FLEET_PARTITION)}` },
      })) {
        const row = parseFleetRow(e);
        if (row) out.push(row);
        if (out.length >= MAX_FLEET_ROWS) break;
      }
      return out;
    },
    async summary() {
      const t = await table();
      try {
        return parseSweepSummary(
          await t.getEntity<Record<string, unknown>>(SWEEP_SUMMARY_PARTITION, SWEEP_SUMMARY_ROW),
        );
      } catch (err) {
        if ((err as { statusCode?: unknown }).statusCode === 404) return undefined;
        throw err;
      }
    },
    async history(app, limit, before) {
      const t = await table();
      // Ledger row keys start with the finish time, so text order is time order; the table returns
      // them oldest first, so keep the newest `limit + 1` of a bounded scan.
      const filter = [
        `PartitionKey eq ${odataString(app)}`,
        ...(before ? [`RowKey lt ${odataString(before)}`] : []),
      ].join(" and ");
      const window: Record<string, unknown>[] = [];
      let scanned = 0;
      for await (const e of t.listEntities<Record<string, unknown>>({ queryOptions: { filter } })) {
        if (e.kind !== undefined && e.kind !== "reattest") continue;
        window.push(e);
        if (window.length > limit + 1) window.shift();
        if (++scanned >= MAX_LEDGER_SCAN) break;
      }
      const newest = window.reverse();
      const page = newest.slice(0, limit).map(ledgerEntry);
      return { entries: page, next: newest.length > limit ? (page.at(-1)?.rowKey ?? null) : null };
    },
  };
}
