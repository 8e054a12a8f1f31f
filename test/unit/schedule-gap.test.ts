import { describe, expect, it } from "vitest";
import { longestScheduleGapSeconds } from "../../shared/config/schedule-gap.js";

describe("longestScheduleGapSeconds", () => {
  it.each([
    ["0 */15 * * * *", 900],
    ["*/5 * * * * *", 5],
    ["0 0,5 * * * *", 3300],
    ["0 0 * * * *", 3600],
    ["0 30 9 * * 1-5", 3 * 86_400],
    ["0 0 0 * * *", 86_400],
    ["0 0 0 * * 1", 7 * 86_400],
    // Rarer than the window: counted as the window.
    ["0 0 0 1 * *", 15 * 86_400],
  ])("%s → %d s", (schedule, seconds) => {
    expect(longestScheduleGapSeconds(schedule)).toBe(seconds);
  });
});
