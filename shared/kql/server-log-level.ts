import type { LogsTable } from "@azure/monitor-query-logs";

/*
 * Whether the SPIRE server's log can show workload signings at all. "Signed X509 SVID" is logged
 * at DEBUG only (shared/notes/spire-facts.md, Logs); at INFO a verification waiting for it would
 * wait out its timeout on a healthy run. Read from spire-server-log-level.kql's one row.
 */

export interface ServerLogLevelSummary {
  lines: number;
  debugLines: number;
  infoLines: number;
  signings: number;
  lastLine?: Date;
}

const asNumber = (v: unknown) => (typeof v === "number" ? v : Number(v ?? 0)) || 0;
const asDate = (v: unknown) => {
  const t = v instanceof Date ? v : typeof v === "string" ? new Date(v) : undefined;
  return t && !Number.isNaN(t.getTime()) ? t : undefined;
};

/** The summary row of spire-server-log-level.kql; undefined when the server logged nothing. */
export function readServerLogLevel(table: LogsTable | undefined): ServerLogLevelSummary | undefined {
  const row = table?.rows[0];
  if (!table || !row) return undefined;
  const col = (name: string) => row[table.columnDescriptors.findIndex((c) => c.name === name)];
  const lines = asNumber(col("lines"));
  if (lines === 0) return undefined;
  return {
    lines,
    debugLines: asNumber(col("debug_lines")),
    infoLines: asNumber(col("info_lines")),
    signings: asNumber(col("signings")),
    lastLine: asDate(col("last_line")),
  };
}

/**
 * True when the log proves the server hides DEBUG lines: it logged INFO lines, some after `since`
 * (so ingestion has caught up with the run), and not one DEBUG line or signing in the whole window.
 * A server at DEBUG logs signings for every agent it serves, so a window with none is not DEBUG.
 * Anything less certain (no lines yet, lines only from before the run) is not proof: keep waiting.
 */
export function debugHidden(summary: ServerLogLevelSummary | undefined, since: Date): boolean {
  if (!summary) return false;
  return (
    summary.debugLines === 0 &&
    summary.signings === 0 &&
    summary.infoLines > 0 &&
    summary.lastLine !== undefined &&
    summary.lastLine.getTime() > since.getTime()
  );
}
