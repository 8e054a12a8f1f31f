/*
 * Which durable instances the housekeeping timer purges: finished ones (never a running run,
 * whose history is its state) created before the retention window. The fleet ledger lives in the
 * fleet table and is never touched by this.
 */

export const PURGEABLE_STATUSES = ["Completed", "Failed", "Terminated"] as const;

export interface PurgeFilter {
  createdTimeFrom: Date;
  createdTimeTo: Date;
  runtimeStatus: (typeof PURGEABLE_STATUSES)[number][];
}

export function purgeFilter(now: number, retentionDays: number): PurgeFilter {
  if (!Number.isInteger(retentionDays) || retentionDays < 1) {
    throw new RangeError(`retention is a whole number of days >= 1, not ${retentionDays}`);
  }
  return {
    // The epoch: the task hub's query needs a lower bound, and no instance predates it.
    createdTimeFrom: new Date(0),
    createdTimeTo: new Date(now - retentionDays * 86_400_000),
    runtimeStatus: [...PURGEABLE_STATUSES],
  };
}
