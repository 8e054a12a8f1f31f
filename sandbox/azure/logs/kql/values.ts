/** KQL scalar values as the engine holds them, and their conversions. */
import type { KqlColumnType } from "../../../../shared/kql/tables.js";

export type KqlType = KqlColumnType;

/** A KQL timespan; `ms` may be fractional (ticks are 100 ns). */
export class Timespan {
  constructor(readonly ms: number) {}
}

export type Json = null | string | number | boolean | Json[] | { [key: string]: Json };

/** string, long/int/real (number), bool, datetime (Date), timespan, dynamic (Json), or null. */
export type Value = Json | Date | Timespan;

export type Row = Value[];

export interface Column {
  name: string;
  type: KqlType;
}

export interface Table {
  columns: Column[];
  rows: Row[];
}

export const isDate = (v: Value): v is Date => v instanceof Date;
export const isTimespan = (v: Value): v is Timespan => v instanceof Timespan;

const UNIT_MS: Record<string, number> = {
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
  h: 3_600_000,
  hr: 3_600_000,
  hrs: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  m: 60_000,
  min: 60_000,
  minute: 60_000,
  minutes: 60_000,
  s: 1_000,
  sec: 1_000,
  second: 1_000,
  seconds: 1_000,
  ms: 1,
  milli: 1,
  millis: 1,
  millisecond: 1,
  milliseconds: 1,
  microsecond: 0.001,
  microseconds: 0.001,
  tick: 0.0001,
  ticks: 0.0001,
};

/** "90s", "1.5h", "2d", "100ms", "[-][d.]hh:mm[:ss[.fffffff]]"; undefined when not a timespan. */
export function parseTimespan(text: string): Timespan | undefined {
  const t = text.trim();
  const unit = /^(-?[0-9]+(?:\.[0-9]+)?)\s*([a-z]+)$/i.exec(t);
  if (unit) {
    const factor = UNIT_MS[(unit[2] ?? "").toLowerCase()];
    return factor === undefined ? undefined : new Timespan(Number(unit[1]) * factor);
  }
  const clock = /^(-)?(?:([0-9]+)\.)?([0-9]{1,2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,7}))?)?$/.exec(t);
  if (clock) {
    const [, neg, days, hh, mm, ss, frac] = clock;
    const ms =
      Number(days ?? 0) * 86_400_000 +
      Number(hh) * 3_600_000 +
      Number(mm) * 60_000 +
      Number(ss ?? 0) * 1_000 +
      (frac ? Number(`0.${frac}`) * 1_000 : 0);
    return new Timespan(neg ? -ms : ms);
  }
  return undefined;
}

/** ISO 8601 duration (PT1H, P1D, PT5M30S) as used by the query API's timespan. */
export function parseIsoDuration(text: string): number | undefined {
  const m = /^P(?:([0-9.]+)W)?(?:([0-9.]+)D)?(?:T(?:([0-9.]+)H)?(?:([0-9.]+)M)?(?:([0-9.]+)S)?)?$/i.exec(
    text.trim(),
  );
  if (!m || text.trim().toUpperCase() === "P" || text.trim().toUpperCase().endsWith("T")) return undefined;
  const [, w, d, h, min, s] = m;
  return (
    Number(w ?? 0) * 604_800_000 +
    Number(d ?? 0) * 86_400_000 +
    Number(h ?? 0) * 3_600_000 +
    Number(min ?? 0) * 60_000 +
    Number(s ?? 0) * 1_000
  );
}

/** KQL datetime text: ISO 8601, "yyyy-MM-dd HH:mm:ss[.f]", a date alone; UTC unless a zone is given. */
export function parseDateTime(text: string): Date | undefined {
  let t = text.trim();
  if (t === "") return undefined;
  if (/^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]/.test(t)) t = t.replace(" ", "T");
  if (/^[0-9]{4}-[0-9]{2}-[0-9]{2}$/.test(t)) t += "T00:00:00Z";
  else if (/^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+$/.test(t)) t += "Z";
  // JS Dates keep milliseconds: trim finer fractions (SPIRE logs nanoseconds) rather than fail.
  t = t.replace(/(\.[0-9]{3})[0-9]+/, "$1");
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

function pad(n: number, width = 2): string {
  return String(Math.trunc(n)).padStart(width, "0");
}

/** .NET's constant format: [-][d.]hh:mm:ss[.fffffff]. */
export function formatTimespan(t: Timespan): string {
  const neg = t.ms < 0;
  let ticks = Math.round(Math.abs(t.ms) * 10_000);
  const days = Math.floor(ticks / 864_000_000_000);
  ticks -= days * 864_000_000_000;
  const hours = Math.floor(ticks / 36_000_000_000);
  ticks -= hours * 36_000_000_000;
  const minutes = Math.floor(ticks / 600_000_000);
  ticks -= minutes * 600_000_000;
  const seconds = Math.floor(ticks / 10_000_000);
  ticks -= seconds * 10_000_000;
  const frac = ticks > 0 ? `.${pad(ticks, 7)}` : "";
  return `${neg ? "-" : ""}${days > 0 ? `${days}.` : ""}${pad(hours)}:${pad(minutes)}:${pad(seconds)}${frac}`;
}

/** tostring(): what KQL prints for a value (null becomes ""). */
export function valueToString(v: Value): string {
  if (v === null) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (v instanceof Date) return v.toISOString().replace(/\.000Z$/, "Z");
  if (v instanceof Timespan) return formatTimespan(v);
  return JSON.stringify(v);
}

/** A value as it goes into a dynamic (JSON) container. */
export function toJson(v: Value): Json {
  if (v instanceof Date) return valueToString(v);
  if (v instanceof Timespan) return formatTimespan(v);
  return v;
}

/** A value in the query API's JSON rows for a column of type `type`. */
export function toWire(v: Value, type: KqlType): Json {
  if (v === null) return null;
  if (type === "dynamic") return typeof v === "string" ? v : JSON.stringify(toJson(v));
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Timespan) return formatTimespan(v);
  return v as Json;
}

/** The static type of a runtime value, for dynamic-typed inputs. */
export function typeOfValue(v: Value): KqlType {
  if (typeof v === "string") return "string";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "number") return Number.isInteger(v) ? "long" : "real";
  if (v instanceof Date) return "datetime";
  if (v instanceof Timespan) return "timespan";
  return "dynamic";
}

/** Comparable key for equality, grouping and dcount: values of different types never collide. */
export function valueKey(v: Value): string {
  if (v === null) return "n";
  if (typeof v === "string") return `s${v}`;
  if (typeof v === "number") return `#${v}`;
  if (typeof v === "boolean") return `b${v}`;
  if (v instanceof Date) return `d${v.getTime()}`;
  if (v instanceof Timespan) return `t${v.ms}`;
  return `j${JSON.stringify(v)}`;
}

/** Ordering for sort and min/max: numbers, dates, timespans and strings within their kind. */
export function compareValues(a: Value, b: Value): number {
  if (a === null || b === null) return a === b ? 0 : a === null ? -1 : 1;
  const na = numericOf(a);
  const nb = numericOf(b);
  if (na !== undefined && nb !== undefined) return na < nb ? -1 : na > nb ? 1 : 0;
  const sa = valueToString(a);
  const sb = valueToString(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

function numericOf(v: Value): number | undefined {
  if (typeof v === "number") return v;
  if (v instanceof Date) return v.getTime();
  if (v instanceof Timespan) return v.ms;
  if (typeof v === "boolean") return v ? 1 : 0;
  return undefined;
}
