import type { OperationKind, OperationSummary } from "./summary.js";

/*
 * Paging the operation listing: newest first, running ones before finished ones, and a cursor
 * that names the last item shown (its sort key), so a page is stable while new runs start.
 */

export interface OperationFilter {
  kinds?: OperationKind[];
  state: "running" | "finished" | "all";
  app?: string;
  limit: number;
  /** The sort key of the last item of the previous page. */
  after?: string;
}

/** Running first, then newest created; the id breaks ties so the order is total. */
export function sortKey(o: OperationSummary): string {
  // Inverted time so that ascending text order is newest first.
  const inverted = String(9_999_999_999_999 - Date.parse(o.createdTime)).padStart(13, "0");
  return `${o.running ? "0" : "1"}_${inverted}_${o.id}`;
}

export function encodeCursor(key: string): string {
  return Buffer.from(key, "utf8").toString("base64url");
}

/** The cursor's sort key, or undefined when it is not one of ours. */
export function decodeCursor(cursor: string): string | undefined {
  const key = Buffer.from(cursor, "base64url").toString("utf8");
  return /^[01]_\d{13}_[A-Za-z0-9@:._-]{1,200}$/.test(key) ? key : undefined;
}

export function pageOperations(
  all: OperationSummary[],
  filter: OperationFilter,
): { operations: OperationSummary[]; next: string | null } {
  const kept = all
    .filter((o) => !filter.kinds || filter.kinds.includes(o.kind))
    .filter((o) => filter.state === "all" || (filter.state === "running") === o.running)
    .filter((o) => !filter.app || o.app === filter.app)
    .map((o) => ({ o, key: sortKey(o) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .filter(({ key }) => filter.after === undefined || key > filter.after);
  const page = kept.slice(0, filter.limit);
  const last = page.at(-1);
  return {
    operations: page.map(({ o }) => o),
    next: kept.length > filter.limit && last ? encodeCursor(last.key) : null,
  };
}
