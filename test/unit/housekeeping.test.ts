import { InvocationContext } from "@azure/functions";
import type { DurableClient } from "durable-functions";
import { describe, expect, it } from "vitest";
import { housekeepingTimerHandler } from "../../functions/housekeeping.js";
import { purgeFilter } from "../../shared/operations/retention.js";

const NOW = Date.parse("2026-03-31T00:00:00Z");

describe("purgeFilter", () => {
  it.each([
    [30, "2026-03-01T00:00:00.000Z"],
    [1, "2026-03-30T00:00:00.000Z"],
    [365, "2025-03-31T00:00:00.000Z"],
  ])("%i days keeps everything created after %s", (days, cutoff) => {
    const f = purgeFilter(NOW, days);
    expect(f.createdTimeTo.toISOString()).toBe(cutoff);
    expect(f.createdTimeFrom.getTime()).toBe(0);
    expect(f.runtimeStatus).toEqual(["Completed", "Failed", "Terminated"]);
  });

  it.each([0, -1, 1.5, Number.NaN])("refuses a retention of %s days", (days) => {
    expect(() => purgeFilter(NOW, days)).toThrow(RangeError);
  });
});

describe("the housekeeping timer", () => {
  it("asks the task hub to purge only finished instances older than the retention", async () => {
    const calls: unknown[] = [];
    const client = {
      purgeInstanceHistoryBy: async (filter: unknown) => {
        calls.push(filter);
        return { instancesDeleted: 3 };
      },
    } as unknown as DurableClient;
    await housekeepingTimerHandler({ retentionDays: 30, now: () => NOW })(
      { isPastDue: false, scheduleStatus: undefined } as never,
      client,
      new InvocationContext({ functionName: "housekeepingTimer" }),
    );
    expect(calls).toEqual([
      {
        createdTimeFrom: new Date(0),
        createdTimeTo: new Date("2026-03-01T00:00:00Z"),
        runtimeStatus: ["Completed", "Failed", "Terminated"],
      },
    ]);
  });
});
