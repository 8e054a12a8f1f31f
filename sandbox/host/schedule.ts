import { CronExpressionParser } from "cron-parser";

/**
 * Timer trigger schedules: NCRONTAB (six fields, seconds first, always UTC here as in Azure
 * unless WEBSITE_TIME_ZONE is set) or a TimeSpan `hh:mm:ss` interval. `%NAME%` is replaced by
 * the app setting NAME, as the real host does.
 */
export interface Schedule {
  expression: string;
  next(after: number): number;
}

export function resolveAppSettings(expression: string, env: NodeJS.ProcessEnv): string {
  return expression.replace(/%([^%]+)%/g, (_, name: string) => {
    const value = env[name];
    if (value === undefined || value === "") {
      throw new Error(`Schedule "${expression}" refers to app setting ${name}, which is not set`);
    }
    return value;
  });
}

export function parseSchedule(raw: string, env: NodeJS.ProcessEnv = process.env): Schedule {
  const expression = resolveAppSettings(raw, env).trim();
  const span = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})$/.exec(expression);
  if (span) {
    const [, days, h, m, s] = span;
    const ms = ((Number(days ?? 0) * 24 + Number(h)) * 3600 + Number(m) * 60 + Number(s)) * 1000;
    if (ms <= 0) throw new Error(`Schedule "${expression}" is a zero interval`);
    return { expression, next: (after) => after + ms };
  }
  const fields = expression.split(/\s+/);
  if (fields.length !== 6) {
    throw new Error(
      `Schedule "${expression}" is not NCRONTAB: expected 6 fields "{second} {minute} {hour} {day} {month} {day-of-week}", got ${fields.length}`,
    );
  }
  const tz = process.env.WEBSITE_TIME_ZONE || "UTC";
  // Parse once up front so a bad expression fails at load, not at the first firing.
  CronExpressionParser.parse(expression, { tz, currentDate: new Date(0) });
  return {
    expression,
    next(after: number) {
      const it = CronExpressionParser.parse(expression, { tz, currentDate: new Date(after) });
      return it.next().getTime();
    },
  };
}
