import { CronExpressionParser } from "cron-parser";

/*
 * The longest wait between two runs of an NCRONTAB schedule (6 fields, seconds first), in seconds:
 * what a deadline that only this schedule checks can be missed by. Found by walking the firings
 * from a fixed instant (deterministic) over a bounded window long enough for any weekly pattern;
 * a schedule that fires less often than that window counts as the window (it is too rare anyway).
 */

const FROM = new Date("2026-01-05T00:00:00Z"); // a Monday
const MAX_FIRINGS = 5_000;
const WINDOW_SECONDS = 15 * 86_400;

export function longestScheduleGapSeconds(ncrontab: string): number {
  const it = CronExpressionParser.parse(ncrontab, { tz: "UTC", currentDate: FROM });
  let previous: number | undefined;
  let longest: number | undefined;
  for (let i = 0; i < MAX_FIRINGS; i++) {
    const at = it.next().getTime();
    // The wait before the first firing depends only on where the walk starts: not counted.
    if (previous !== undefined) longest = Math.max(longest ?? 0, (at - previous) / 1000);
    previous = at;
    if ((at - FROM.getTime()) / 1000 > WINDOW_SECONDS) break;
  }
  // Not two firings within the window: at least as long as the window.
  return longest === undefined ? WINDOW_SECONDS : Math.min(longest, WINDOW_SECONDS);
}
