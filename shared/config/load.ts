import type { z } from "zod";
import type { AppConfig } from "./assemble.js";
import { assemble } from "./assemble.js";
import { longestScheduleGapSeconds } from "./schedule-gap.js";
import { NAMES, RULES, type RuleContext, type SettingName, settingOf, type Values } from "./settings.js";
import { PLAIN } from "./validators.js";

/*
 * loadConfig reports every problem at once and never echoes a value: some settings end up next to
 * secrets, and error text travels to logs and HTTP callers.
 */

// Loading

export type ProblemKind = "missing" | "invalid" | "conflict";

export interface ConfigProblem {
  /** The settings involved, first one decides the position in the report. */
  settings: readonly SettingName[];
  kind: ProblemKind;
  /** One line, never containing a configured value. */
  message: string;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    const count = `${problems.length} problem${problems.length === 1 ? "" : "s"}`;
    super([`Invalid configuration (${count}):`, ...problems.map((p) => `  - ${p.message}`)].join("\n"));
    this.problems = problems;
  }
}

const hint = (name: SettingName) => `${settingOf(name).description}, e.g. ${settingOf(name).example}`;

function missing(name: SettingName, when?: string): ConfigProblem {
  const condition = when === undefined ? "" : ` (required when ${when})`;
  return { settings: [name], kind: "missing", message: `${name} is missing${condition}: ${hint(name)}` };
}

function invalid(name: SettingName, reason: string): ConfigProblem {
  const detail = reason === PLAIN ? "" : ` (${reason})`;
  return { settings: [name], kind: "invalid", message: `${name} is invalid${detail}: ${hint(name)}` };
}

/** Reason of the first issue; our schemas only produce messages that never quote the input. */
function reasonOf(error: z.ZodError): string {
  return error.issues[0]?.message ?? PLAIN;
}

/** Parses a setting's default; a failure is a bug in the table, not a configuration problem. */
function parseDefault(name: SettingName, text: string): unknown {
  const result = settingOf(name).schema.safeParse(text);
  if (!result.success) throw new Error(`Default of ${name} does not satisfy its own rules`);
  return result.data;
}

function applyRules(ctx: RuleContext): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const rule of RULES) {
    if (rule.kind === "requires") {
      if (rule.applies(ctx) && !ctx.given(rule.setting)) problems.push(missing(rule.setting, rule.when));
      continue;
    }
    if (rule.kind === "coversSum") {
      const total = rule.covers.map((name) => ctx.value(name) as number | undefined);
      const have = ctx.value(rule.setting) as number | undefined;
      // Only between valid values: an invalid one is reported on its own already.
      if (have === undefined || total.some((t) => t === undefined)) continue;
      if (have < total.reduce<number>((sum, t) => sum + (t ?? 0), 0)) {
        problems.push({
          settings: [rule.setting, ...rule.covers],
          kind: "conflict",
          message: `${rule.setting} is shorter than ${rule.covers.join(" + ")}: ${rule.because}; raise ${rule.setting} or lower the others`,
        });
      }
      continue;
    }
    if (rule.kind === "scheduleWithinHalf") {
      const schedule = ctx.value(rule.schedule) as string | undefined;
      const ttl = ctx.value(rule.ttl) as number | undefined;
      if (!rule.applies(ctx) || schedule === undefined || ttl === undefined) continue;
      if (longestScheduleGapSeconds(schedule) >= ttl / 2) {
        problems.push({
          settings: [rule.ttl, rule.schedule],
          kind: "conflict",
          message: `${rule.schedule} can wait longer between runs than half of ${rule.ttl}: ${rule.because}; run it more often or raise ${rule.ttl}`,
        });
      }
      continue;
    }
    if (rule.kind === "inTrustDomain") {
      const id = ctx.value(rule.setting) as string | undefined;
      const td = ctx.value(rule.trustDomain) as string | undefined;
      if (id !== undefined && td !== undefined && new URL(id).host !== td) {
        problems.push({
          settings: [rule.setting, rule.trustDomain],
          kind: "conflict",
          message: `${rule.setting} is not in ${rule.trustDomain} (${td}): ${rule.because}`,
        });
      }
      continue;
    }
    const [a, b] = rule.settings;
    if (ctx.given(a) && ctx.given(b)) {
      problems.push({
        settings: [a, b],
        kind: "conflict",
        message: `${a} and ${b} are both set: set only one, ${a} for a local socket or ${b} for TCP with mTLS`,
      });
    } else if (rule.applies(ctx) && !ctx.given(a) && !ctx.given(b)) {
      problems.push({
        settings: [a, b],
        kind: "missing",
        message: `${a} or ${b} is missing (${rule.when} needs exactly one): ${hint(a)}; or ${hint(b)}`,
      });
    }
  }
  return problems;
}

/** Validates every setting the app reads; throws one ConfigError listing every problem. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const parsed = new Map<SettingName, unknown>();
  const given = new Set<SettingName>();
  const problems: ConfigProblem[] = [];

  for (const name of NAMES) {
    const raw = env[name];
    const s = settingOf(name);
    // Functions hosts pass blank app settings as "", which means "not configured".
    if (raw === undefined || raw === "") {
      if (s.presence === "required") problems.push(missing(name));
      else if (s.default !== undefined) parsed.set(name, parseDefault(name, s.default));
      continue;
    }
    given.add(name);
    const result = s.schema.safeParse(raw);
    if (result.success) parsed.set(name, result.data);
    else problems.push(invalid(name, reasonOf(result.error)));
  }

  const ctx: RuleContext = {
    value: <K extends SettingName>(name: K) => parsed.get(name) as Values[K] | undefined,
    given: (name) => given.has(name),
  };
  const missingAlready = new Set<SettingName | undefined>();
  for (const p of applyRules(ctx)) {
    // "Missing because of A" and "missing because of B" say one thing: keep the first.
    if (p.kind === "missing" && missingAlready.has(p.settings[0])) continue;
    if (p.kind === "missing") missingAlready.add(p.settings[0]);
    problems.push(p);
  }

  if (problems.length > 0) {
    const position = (p: ConfigProblem) => NAMES.indexOf(p.settings[0] ?? NAMES[0]!);
    throw new ConfigError(problems.toSorted((x, y) => position(x) - position(y)));
  }
  // Every required or defaulted setting is in `parsed` now, which is what Values promises.
  return assemble(Object.fromEntries(parsed) as Values);
}
