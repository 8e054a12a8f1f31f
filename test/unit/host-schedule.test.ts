import { describe, expect, it } from "vitest";
import { parseSchedule, resolveAppSettings } from "../../sandbox/host/schedule.js";

const at = (iso: string) => Date.parse(iso);

describe("timer schedules", () => {
  it.each([
    ["0 */5 * * * *", "2026-01-01T00:03:10Z", "2026-01-01T00:05:00Z"],
    ["0 */5 * * * *", "2026-01-01T00:05:00Z", "2026-01-01T00:10:00Z"],
    ["*/15 * * * * *", "2026-01-01T00:00:01Z", "2026-01-01T00:00:15Z"],
    ["0 0 * * * *", "2026-01-01T10:30:00Z", "2026-01-01T11:00:00Z"],
    ["0 30 9 * * 1-5", "2026-01-03T12:00:00Z", "2026-01-05T09:30:00Z"],
    ["00:00:30", "2026-01-01T00:00:00Z", "2026-01-01T00:00:30Z"],
    ["1.00:00:00", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"],
  ])("%s after %s is %s", (expr, after, next) => {
    expect(new Date(parseSchedule(expr, {}).next(at(after))).toISOString()).toBe(
      new Date(next).toISOString(),
    );
  });

  it("needs six NCRONTAB fields (seconds first), and says so", () => {
    expect(() => parseSchedule("*/5 * * * *", {})).toThrow(/expected 6 fields/);
  });

  it("rejects nonsense values", () => {
    expect(() => parseSchedule("0 99 * * * *", {})).toThrow();
  });

  it("resolves %SETTING% from app settings and names a missing one", () => {
    expect(resolveAppSettings("%SWEEP%", { SWEEP: "0 */1 * * * *" })).toBe("0 */1 * * * *");
    expect(() => resolveAppSettings("%SWEEP%", {})).toThrow(/app setting SWEEP, which is not set/);
    expect(parseSchedule("%S%", { S: "0 0 * * * *" }).expression).toBe("0 0 * * * *");
  });
});
