/** Compiles KQL scalar expressions (Kusto syntax nodes) into typed evaluators over a row. */
import type { SyntaxNode } from "../kusto.js";
import { semanticError, unsupported } from "./errors.js";
import { child, listItems, nameOf, sourceText } from "./syntax.js";
import {
  type Column,
  compareValues,
  isDate,
  isTimespan,
  type Json,
  type KqlType,
  parseDateTime,
  parseTimespan,
  type Row,
  Timespan,
  toJson,
  type Value,
  valueKey,
  valueToString,
} from "./values.js";

export interface ScalarBinding {
  type: KqlType;
  value: Value;
}

export interface Scope {
  columns: readonly Column[];
  /** Scalar `let` bindings visible here. */
  lets: ReadonlyMap<string, ScalarBinding>;
  /** now() for the whole query, ms since epoch. */
  now: number;
  /** The query text (dynamic literals are parsed from it). */
  text: string;
}

export interface Compiled {
  type: KqlType;
  eval: (row: Row) => Value;
  /** The column name KQL gives this expression when unnamed, if it has one (e.g. a column reference). */
  name?: string;
}

const constant = (type: KqlType, value: Value): Compiled => ({ type, eval: () => value });

export function columnIndex(columns: readonly Column[], name: string): number {
  return columns.findIndex((c) => c.name === name);
}

function unknownName(name: string, n: SyntaxNode): Error {
  return semanticError(`Failed to resolve scalar expression named '${name}'`, n.start);
}

// ---------------------------------------------------------------------------------------------
// Literals

function literal(n: SyntaxNode, scope: Scope): Compiled | undefined {
  const text = n.literal ?? "";
  const isNull = text === "null";
  switch (n.kind) {
    case "StringLiteralExpression":
      return constant("string", text);
    case "LongLiteralExpression":
      return constant("long", isNull ? null : Number(text));
    case "IntLiteralExpression":
      return constant("int", isNull ? null : Number(text));
    case "RealLiteralExpression":
      return constant("real", isNull ? null : Number(text));
    case "BooleanLiteralExpression":
      return constant("bool", isNull ? null : text.toLowerCase() === "true");
    case "DateTimeLiteralExpression": {
      if (isNull) return constant("datetime", null);
      const d = parseDateTime(text);
      if (!d) throw semanticError(`invalid datetime literal '${text}'`, n.start);
      return constant("datetime", d);
    }
    case "TimespanLiteralExpression": {
      if (isNull) return constant("timespan", null);
      const t = parseTimespan(text);
      if (!t) throw semanticError(`invalid timespan literal '${text}'`, n.start);
      return constant("timespan", t);
    }
    case "NullLiteralExpression":
      return constant("dynamic", null);
    case "DynamicExpression": {
      const open = child(n, "OpenParenToken");
      const close = child(n, "CloseParenToken");
      if (!open || !close) throw semanticError("malformed dynamic literal", n.start);
      const inner = scope.text.slice(open.start + 1, close.start).trim();
      try {
        return constant("dynamic", JSON.parse(inner === "" ? "null" : inner) as Json);
      } catch {
        throw unsupported(`the dynamic literal ${inner} (only JSON is)`, n.start);
      }
    }
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Operators

// Kusto terms are maximal runs of alphanumeric characters (its string operators documentation).
const TERM_CHAR = /[A-Za-z0-9]/;

/** KQL `has`: the needle occurs as whole terms (case-insensitive unless cs). */
export function hasTerm(haystack: string, needle: string, cs: boolean): boolean {
  if (needle === "") return true;
  const h = cs ? haystack : haystack.toLowerCase();
  const n = cs ? needle : needle.toLowerCase();
  const startsWithTerm = TERM_CHAR.test(n[0] ?? "");
  const endsWithTerm = TERM_CHAR.test(n[n.length - 1] ?? "");
  for (let at = h.indexOf(n); at >= 0; at = h.indexOf(n, at + 1)) {
    const before = at > 0 ? (h[at - 1] ?? "") : "";
    const after = h[at + n.length] ?? "";
    if (startsWithTerm && before !== "" && TERM_CHAR.test(before)) continue;
    if (endsWithTerm && after !== "" && TERM_CHAR.test(after)) continue;
    return true;
  }
  return false;
}

function coerceForCompare(a: Value, b: Value): [Value, Value] {
  if (isDate(a) && typeof b === "string") return [a, parseDateTime(b) ?? b];
  if (typeof a === "string" && isDate(b)) return [parseDateTime(a) ?? a, b];
  return [a, b];
}

export function valuesEqual(a: Value, b: Value): boolean {
  if (a === null || b === null) return false;
  const [x, y] = coerceForCompare(a, b);
  return valueKey(x) === valueKey(y);
}

const regexCache = new Map<string, RegExp>();

/** RE2-flavoured KQL regex as a JS RegExp: (?P<name>...) groups and a leading (?i) are translated. */
export function kqlRegex(pattern: string, extraFlags = ""): RegExp {
  const key = `${extraFlags}/${pattern}`;
  const cached = regexCache.get(key);
  if (cached) return cached;
  let source = pattern.replaceAll("(?P<", "(?<");
  let flags = extraFlags;
  const inline = /^\(\?([imsU]+)\)/.exec(source);
  if (inline) {
    source = source.slice(inline[0].length);
    for (const f of inline[1] ?? "") if ("ims".includes(f) && !flags.includes(f)) flags += f;
  }
  let re: RegExp;
  try {
    re = new RegExp(source, flags);
  } catch (err) {
    throw semanticError(`invalid regular expression '${pattern}': ${(err as Error).message}`);
  }
  regexCache.set(key, re);
  return re;
}

type StringPredicate = (value: string, operand: string) => boolean;

const STRING_OPERATORS: Record<string, StringPredicate> = {
  has: (v, o) => hasTerm(v, o, false),
  "!has": (v, o) => !hasTerm(v, o, false),
  has_cs: (v, o) => hasTerm(v, o, true),
  "!has_cs": (v, o) => !hasTerm(v, o, true),
  contains: (v, o) => v.toLowerCase().includes(o.toLowerCase()),
  "!contains": (v, o) => !v.toLowerCase().includes(o.toLowerCase()),
  contains_cs: (v, o) => v.includes(o),
  "!contains_cs": (v, o) => !v.includes(o),
  startswith: (v, o) => v.toLowerCase().startsWith(o.toLowerCase()),
  "!startswith": (v, o) => !v.toLowerCase().startsWith(o.toLowerCase()),
  startswith_cs: (v, o) => v.startsWith(o),
  "!startswith_cs": (v, o) => !v.startsWith(o),
  endswith: (v, o) => v.toLowerCase().endsWith(o.toLowerCase()),
  "!endswith": (v, o) => !v.toLowerCase().endsWith(o.toLowerCase()),
  endswith_cs: (v, o) => v.endsWith(o),
  "!endswith_cs": (v, o) => !v.endsWith(o),
  "=~": (v, o) => v.toLowerCase() === o.toLowerCase(),
  "!~": (v, o) => v.toLowerCase() !== o.toLowerCase(),
  "matches regex": (v, o) => kqlRegex(o).test(v),
};

/** Operators whose result holds for a null left side (the negated string forms). */
const TRUE_ON_NULL = new Set([
  "!has",
  "!has_cs",
  "!contains",
  "!contains_cs",
  "!startswith",
  "!startswith_cs",
  "!endswith",
  "!endswith_cs",
  "!~",
]);

const NUMERIC: ReadonlySet<KqlType> = new Set(["int", "long", "real"]);

function arithmeticType(op: string, l: KqlType, r: KqlType, n: SyntaxNode): KqlType {
  if (l === "dynamic" || r === "dynamic") return "real";
  if (NUMERIC.has(l) && NUMERIC.has(r)) {
    if (l === "real" || r === "real") return "real";
    return "long";
  }
  const pair = `${l}${op}${r}`;
  const table: Record<string, KqlType> = {
    "datetime-datetime": "timespan",
    "datetime+timespan": "datetime",
    "timespan+datetime": "datetime",
    "datetime-timespan": "datetime",
    "timespan+timespan": "timespan",
    "timespan-timespan": "timespan",
    "timespan/timespan": "real",
    "timespan*long": "timespan",
    "timespan*int": "timespan",
    "timespan*real": "timespan",
    "long*timespan": "timespan",
    "int*timespan": "timespan",
    "real*timespan": "timespan",
    "timespan/long": "timespan",
    "timespan/int": "timespan",
    "timespan/real": "timespan",
  };
  const out = table[pair];
  if (!out) throw semanticError(`operator '${op}' cannot be applied to ${l} and ${r}`, n.start);
  return out;
}

function msOf(v: Value): number | undefined {
  if (typeof v === "number") return v;
  if (isDate(v)) return v.getTime();
  if (isTimespan(v)) return v.ms;
  return undefined;
}

function arithmetic(op: string, a: Value, b: Value, integer: boolean): Value {
  if (a === null || b === null) return null;
  if (typeof a === "number" && typeof b === "number") {
    switch (op) {
      case "+":
        return a + b;
      case "-":
        return a - b;
      case "*":
        return a * b;
      case "/":
        if (b === 0) return null;
        return integer ? Math.trunc(a / b) : a / b;
      case "%":
        return b === 0 ? null : a % b;
    }
  }
  const x = msOf(a);
  const y = msOf(b);
  if (x === undefined || y === undefined) return null;
  if (isDate(a) && isDate(b)) return op === "-" ? new Timespan(x - y) : null;
  if (isDate(a) && isTimespan(b)) return new Date(op === "+" ? x + y : x - y);
  if (isTimespan(a) && isDate(b)) return op === "+" ? new Date(x + y) : null;
  if (isTimespan(a) && isTimespan(b)) {
    if (op === "+") return new Timespan(x + y);
    if (op === "-") return new Timespan(x - y);
    if (op === "/") return y === 0 ? null : x / y;
    return null;
  }
  if (isTimespan(a) && typeof b === "number")
    return op === "*" ? new Timespan(x * y) : y === 0 ? null : new Timespan(x / y);
  if (typeof a === "number" && isTimespan(b) && op === "*") return new Timespan(x * y);
  return null;
}

// ---------------------------------------------------------------------------------------------
// Functions

interface ScalarFunction {
  min: number;
  max: number;
  type: (args: Compiled[]) => KqlType;
  /** Conversion functions pass the argument's name on to their result column. */
  keepsName?: boolean;
  compile?: (args: Compiled[], scope: Scope, n: SyntaxNode) => (row: Row) => Value;
  apply?: (args: Value[]) => Value;
}

function toNumber(v: Value, integer: boolean): Value {
  if (v === null) return null;
  let n: number;
  if (typeof v === "number") n = v;
  else if (typeof v === "boolean") n = v ? 1 : 0;
  else if (typeof v === "string") n = v.trim() === "" ? Number.NaN : Number(v);
  else if (isDate(v)) n = v.getTime() * 10_000 + 621_355_968_000_000_000;
  else if (isTimespan(v)) n = v.ms * 10_000;
  else return null;
  if (!Number.isFinite(n)) return null;
  return integer ? Math.trunc(n) : n;
}

function toDateTime(v: Value): Value {
  if (v === null) return null;
  if (isDate(v)) return v;
  if (typeof v === "string") return parseDateTime(v) ?? null;
  return null;
}

function toTimespan(v: Value): Value {
  if (v === null) return null;
  if (isTimespan(v)) return v;
  if (typeof v === "string") return parseTimespan(v) ?? null;
  if (typeof v === "number") return new Timespan(v / 10_000);
  return null;
}

function toBool(v: Value): Value {
  if (typeof v === "boolean") return v;
  if (typeof v === "number") return v !== 0;
  if (typeof v === "string") {
    const t = v.trim().toLowerCase();
    return t === "true" || t === "1" ? true : t === "false" || t === "0" ? false : null;
  }
  return null;
}

function parseJson(v: Value): Value {
  if (typeof v !== "string") return v === null ? null : toJson(v);
  try {
    return JSON.parse(v) as Json;
  } catch {
    return v;
  }
}

function binValue(v: Value, size: Value): Value {
  if (v === null || size === null) return null;
  if (isDate(v) && isTimespan(size)) {
    return size.ms > 0 ? new Date(Math.floor(v.getTime() / size.ms) * size.ms) : null;
  }
  if (isTimespan(v) && isTimespan(size)) {
    return size.ms > 0 ? new Timespan(Math.floor(v.ms / size.ms) * size.ms) : null;
  }
  if (typeof v === "number" && typeof size === "number") return size > 0 ? Math.floor(v / size) * size : null;
  return null;
}

const isEmpty = (v: Value) => v === null || v === "";

const same = (i: number) => (args: Compiled[]) => args[i]?.type ?? "dynamic";
const fixed = (t: KqlType) => () => t;

const FUNCTIONS: Record<string, ScalarFunction> = {
  ago: {
    min: 1,
    max: 1,
    type: fixed("datetime"),
    compile:
      ([span], scope) =>
      (row) => {
        const t = span?.eval(row) ?? null;
        return isTimespan(t) ? new Date(scope.now - t.ms) : null;
      },
  },
  now: {
    min: 0,
    max: 1,
    type: fixed("datetime"),
    compile:
      ([offset], scope) =>
      (row) => {
        const t = offset ? offset.eval(row) : new Timespan(0);
        return isTimespan(t) ? new Date(scope.now + t.ms) : null;
      },
  },
  bin: {
    min: 2,
    max: 2,
    type: (a) => (a[0]?.type === "int" ? "long" : (a[0]?.type ?? "dynamic")),
    keepsName: true,
    apply: ([v, s]) => binValue(v ?? null, s ?? null),
  },
  floor: {
    min: 2,
    max: 2,
    type: (a) => (a[0]?.type === "int" ? "long" : (a[0]?.type ?? "dynamic")),
    keepsName: true,
    apply: ([v, s]) => binValue(v ?? null, s ?? null),
  },
  todatetime: {
    min: 1,
    max: 1,
    type: fixed("datetime"),
    keepsName: true,
    apply: ([v]) => toDateTime(v ?? null),
  },
  totimespan: {
    min: 1,
    max: 1,
    type: fixed("timespan"),
    keepsName: true,
    apply: ([v]) => toTimespan(v ?? null),
  },
  tostring: {
    min: 1,
    max: 1,
    type: fixed("string"),
    keepsName: true,
    apply: ([v]) => valueToString(v ?? null),
  },
  toint: { min: 1, max: 1, type: fixed("int"), keepsName: true, apply: ([v]) => toNumber(v ?? null, true) },
  tolong: { min: 1, max: 1, type: fixed("long"), keepsName: true, apply: ([v]) => toNumber(v ?? null, true) },
  toreal: {
    min: 1,
    max: 1,
    type: fixed("real"),
    keepsName: true,
    apply: ([v]) => toNumber(v ?? null, false),
  },
  todouble: {
    min: 1,
    max: 1,
    type: fixed("real"),
    keepsName: true,
    apply: ([v]) => toNumber(v ?? null, false),
  },
  tobool: { min: 1, max: 1, type: fixed("bool"), keepsName: true, apply: ([v]) => toBool(v ?? null) },
  toboolean: { min: 1, max: 1, type: fixed("bool"), keepsName: true, apply: ([v]) => toBool(v ?? null) },
  todynamic: { min: 1, max: 1, type: fixed("dynamic"), apply: ([v]) => parseJson(v ?? null) },
  parse_json: { min: 1, max: 1, type: fixed("dynamic"), apply: ([v]) => parseJson(v ?? null) },
  tolower: { min: 1, max: 1, type: fixed("string"), apply: ([v]) => valueToString(v ?? null).toLowerCase() },
  toupper: { min: 1, max: 1, type: fixed("string"), apply: ([v]) => valueToString(v ?? null).toUpperCase() },
  strlen: { min: 1, max: 1, type: fixed("long"), apply: ([v]) => [...valueToString(v ?? null)].length },
  strcat: { min: 1, max: 64, type: fixed("string"), apply: (vs) => vs.map((v) => valueToString(v)).join("") },
  trim: {
    min: 2,
    max: 2,
    type: fixed("string"),
    apply: ([re, v]) => {
      const r = kqlRegex(valueToString(re ?? null)).source;
      return valueToString(v ?? null).replace(new RegExp(`^(?:${r})+|(?:${r})+$`, "g"), "");
    },
  },
  substring: {
    min: 2,
    max: 3,
    type: fixed("string"),
    apply: ([v, start, len]) => {
      const s = [...valueToString(v ?? null)];
      const from = Math.max(0, typeof start === "number" ? start : 0);
      const count = typeof len === "number" ? len : s.length;
      return s.slice(from, from + Math.max(0, count)).join("");
    },
  },
  indexof: {
    min: 2,
    max: 2,
    type: fixed("long"),
    apply: ([v, lookup]) => (v == null ? null : valueToString(v).indexOf(valueToString(lookup ?? null))),
  },
  replace_string: {
    min: 3,
    max: 3,
    type: fixed("string"),
    apply: ([v, from, to]) =>
      valueToString(v ?? null).replaceAll(valueToString(from ?? null), valueToString(to ?? null)),
  },
  split: {
    min: 2,
    max: 3,
    type: fixed("dynamic"),
    apply: ([v, delim, index]) => {
      const parts = valueToString(v ?? null).split(valueToString(delim ?? null));
      if (typeof index === "number") return index >= 0 && index < parts.length ? [parts[index] ?? ""] : [];
      return parts;
    },
  },
  extract: {
    min: 3,
    max: 4,
    type: (a) => a[3]?.type ?? "string",
    compile: ([pattern, group, source, typeOf]) => {
      return (row) => {
        const text = source?.eval(row) ?? null;
        if (text === null) return null;
        const re = kqlRegex(valueToString(pattern?.eval(row) ?? null));
        const m = re.exec(valueToString(text));
        const g = group?.eval(row);
        const value = m && typeof g === "number" ? (m[g] ?? null) : null;
        if (value === null) return null;
        return typeOf ? convertTo(typeOf.type, value) : value;
      };
    },
  },
  isempty: { min: 1, max: 1, type: fixed("bool"), apply: ([v]) => isEmpty(v ?? null) },
  isnotempty: { min: 1, max: 1, type: fixed("bool"), apply: ([v]) => !isEmpty(v ?? null) },
  isnull: { min: 1, max: 1, type: fixed("bool"), apply: ([v]) => v === null || v === undefined },
  isnotnull: { min: 1, max: 1, type: fixed("bool"), apply: ([v]) => v !== null && v !== undefined },
  not: { min: 1, max: 1, type: fixed("bool"), apply: ([v]) => (typeof v === "boolean" ? !v : null) },
  iff: { min: 3, max: 3, type: same(1), apply: ([c, a, b]) => (c === true ? (a ?? null) : (b ?? null)) },
  iif: { min: 3, max: 3, type: same(1), apply: ([c, a, b]) => (c === true ? (a ?? null) : (b ?? null)) },
  case: {
    min: 3,
    max: 99,
    type: same(1),
    apply: (vs) => {
      for (let i = 0; i + 1 < vs.length; i += 2) if (vs[i] === true) return vs[i + 1] ?? null;
      return vs[vs.length - 1] ?? null;
    },
  },
  coalesce: { min: 1, max: 64, type: same(0), apply: (vs) => vs.find((v) => !isEmpty(v)) ?? null },
  array_length: { min: 1, max: 1, type: fixed("long"), apply: ([v]) => (Array.isArray(v) ? v.length : null) },
  abs: {
    min: 1,
    max: 1,
    type: same(0),
    apply: ([v]) =>
      typeof v === "number"
        ? Math.abs(v)
        : isTimespan(v ?? null)
          ? new Timespan(Math.abs((v as Timespan).ms))
          : null,
  },
  round: {
    min: 1,
    max: 2,
    type: same(0),
    apply: ([v, digits]) => {
      if (typeof v !== "number") return null;
      const f = 10 ** (typeof digits === "number" ? digits : 0);
      return Math.round(v * f) / f;
    },
  },
  max_of: {
    min: 2,
    max: 64,
    type: same(0),
    apply: (vs) =>
      vs
        .filter((v) => v !== null)
        .reduce<Value>((m, v) => (m === null || compareValues(v, m) > 0 ? v : m), null),
  },
  min_of: {
    min: 2,
    max: 64,
    type: same(0),
    apply: (vs) =>
      vs
        .filter((v) => v !== null)
        .reduce<Value>((m, v) => (m === null || compareValues(v, m) < 0 ? v : m), null),
  },
};

function convertTo(type: KqlType, v: Value): Value {
  switch (type) {
    case "long":
    case "int":
      return toNumber(v, true);
    case "real":
      return toNumber(v, false);
    case "datetime":
      return toDateTime(v);
    case "timespan":
      return toTimespan(v);
    case "bool":
      return toBool(v);
    case "dynamic":
      return parseJson(v);
    default:
      return v === null ? null : valueToString(v);
  }
}

export { convertTo };

/** Names of the functions this engine evaluates (for docs and error messages). */
export const SCALAR_FUNCTIONS = Object.keys(FUNCTIONS).sort();

/** The name and arguments of a FunctionCallExpression. */
export function callParts(n: SyntaxNode): { name: string; args: SyntaxNode[] } {
  const nameNode = n.children[0];
  const argList = n.children[1];
  const name = nameNode ? nameOf(nameNode) : "";
  const args = argList ? listItems(argList.children.find((c) => c.kind === "List")) : [];
  return { name, args };
}

function compileCall(n: SyntaxNode, scope: Scope): Compiled {
  const { name, args } = callParts(n);
  const fn = FUNCTIONS[name];
  if (!fn) {
    if (AGGREGATE_NAMES.has(name)) {
      throw semanticError(`the aggregate function '${name}' can only be used in summarize`, n.start);
    }
    throw unsupported(`the function '${name}'`, n.start);
  }
  if (args.length < fn.min || args.length > fn.max) {
    const want = fn.min === fn.max ? `${fn.min}` : `${fn.min} to ${fn.max}`;
    throw semanticError(`function '${name}' expects ${want} arguments, got ${args.length}`, n.start);
  }
  // extract's optional 4th argument is a type (typeof(long)), not a value.
  const compiled = args.map((a, i) =>
    name === "extract" && i === 3 ? typeofArgument(a) : compileScalar(a, scope),
  );
  const type = fn.type(compiled);
  const nameOut = fn.keepsName ? compiled[0]?.name : undefined;
  if (fn.compile) return { type, eval: fn.compile(compiled, scope, n), name: nameOut };
  const apply = fn.apply as (vs: Value[]) => Value;
  return { type, eval: (row) => apply(compiled.map((c) => c.eval(row))), name: nameOut };
}

/** `typeof(long)` as extract's 4th argument: a type, not a value. */
function typeofArgument(n: SyntaxNode): Compiled {
  const text = sourceText(n).replace(/\s+/g, "");
  const m = /^typeof\((\w+)\)$/.exec(text);
  const t = m?.[1] === "double" ? "real" : m?.[1];
  const known: KqlType[] = [
    "string",
    "int",
    "long",
    "real",
    "bool",
    "datetime",
    "timespan",
    "dynamic",
    "guid",
  ];
  if (!t || !known.includes(t as KqlType))
    throw semanticError(`expected typeof(<type>), found '${text}'`, n.start);
  return constant(t as KqlType, null);
}

/** Names that only make sense inside summarize (so a misuse gets a clear message). */
export const AGGREGATE_NAMES = new Set([
  "count",
  "countif",
  "dcount",
  "dcountif",
  "sum",
  "sumif",
  "avg",
  "avgif",
  "min",
  "max",
  "arg_max",
  "arg_min",
  "make_set",
  "make_list",
  "take_any",
  "any",
]);

// ---------------------------------------------------------------------------------------------
// Member access on dynamic values

function member(v: Value, key: Value): Value {
  if (v === null || typeof v !== "object" || isDate(v) || isTimespan(v)) return null;
  if (Array.isArray(v)) {
    if (typeof key !== "number") return null;
    const i = key < 0 ? v.length + key : key;
    return v[i] ?? null;
  }
  const k = valueToString(key);
  return Object.hasOwn(v, k) ? (v[k] ?? null) : null;
}

// ---------------------------------------------------------------------------------------------
// The compiler

export function compileScalar(n: SyntaxNode, scope: Scope): Compiled {
  const lit = literal(n, scope);
  if (lit) return lit;
  switch (n.kind) {
    case "NameReference": {
      const name = nameOf(n);
      const i = columnIndex(scope.columns, name);
      if (i >= 0) {
        const col = scope.columns[i] as Column;
        return { type: col.type, eval: (row) => row[i] ?? null, name };
      }
      const bound = scope.lets.get(name);
      if (bound) return { ...constant(bound.type, bound.value) };
      throw unknownName(name, n);
    }
    case "ParenthesizedExpression": {
      const inner = n.children[1];
      if (!inner) throw semanticError("empty parentheses", n.start);
      return compileScalar(inner, scope);
    }
    case "UnaryMinusExpression":
    case "UnaryPlusExpression": {
      const operand = compileScalar(n.children[1] as SyntaxNode, scope);
      if (n.kind === "UnaryPlusExpression") return operand;
      return {
        type: operand.type,
        eval: (row) => {
          const v = operand.eval(row);
          return typeof v === "number" ? -v : isTimespan(v) ? new Timespan(-v.ms) : null;
        },
      };
    }
    case "FunctionCallExpression":
      return compileCall(n, scope);
    case "PathExpression": {
      const base = compileScalar(n.children[0] as SyntaxNode, scope);
      const selector = n.children[2] as SyntaxNode;
      const key = nameOf(selector);
      if (base.type !== "dynamic")
        throw semanticError(`'${sourceText(n)}': only dynamic values have members`, n.start);
      return {
        type: "dynamic",
        eval: (row) => member(base.eval(row), key),
        name: base.name ? `${base.name}_${key}` : key,
      };
    }
    case "ElementExpression": {
      const base = compileScalar(n.children[0] as SyntaxNode, scope);
      const bracket = n.children[1] as SyntaxNode;
      const index = compileScalar(bracket.children[1] as SyntaxNode, scope);
      const lit = bracket.children[1]?.literal;
      return {
        type: "dynamic",
        eval: (row) => member(base.eval(row), index.eval(row)),
        name: base.name && lit !== undefined ? `${base.name}_${lit}` : undefined,
      };
    }
    case "InExpression":
    case "NotInExpression":
    case "InCsExpression":
    case "NotInCsExpression":
    case "HasAnyExpression":
      return compileInLike(n, scope);
    case "BetweenExpression":
    case "NotBetweenExpression":
      return compileBetween(n, scope);
  }
  if (n.kind.endsWith("Expression") && n.children.length === 3 && n.children[1]?.children.length === 0) {
    return compileBinary(n, scope);
  }
  throw unsupported(`the expression '${sourceText(n)}' (${n.kind})`, n.start);
}

function compileBinary(n: SyntaxNode, scope: Scope): Compiled {
  const op = (n.children[1]?.text ?? "").toLowerCase().replace(/\s+/g, " ");
  const left = compileScalar(n.children[0] as SyntaxNode, scope);
  const right = compileScalar(n.children[2] as SyntaxNode, scope);
  const l = left.eval;
  const r = right.eval;
  switch (op) {
    case "and":
      return { type: "bool", eval: (row) => l(row) === true && r(row) === true };
    case "or":
      return { type: "bool", eval: (row) => l(row) === true || r(row) === true };
    case "==":
      return { type: "bool", eval: (row) => valuesEqual(l(row), r(row)) };
    case "!=":
    case "<>":
      return {
        type: "bool",
        eval: (row) => {
          const a = l(row);
          const b = r(row);
          return a !== null && b !== null && !valuesEqual(a, b);
        },
      };
    case "<":
    case "<=":
    case ">":
    case ">=":
      return {
        type: "bool",
        eval: (row) => {
          const [a, b] = coerceForCompare(l(row), r(row));
          if (a === null || b === null) return false;
          const c = compareValues(a, b);
          return op === "<" ? c < 0 : op === "<=" ? c <= 0 : op === ">" ? c > 0 : c >= 0;
        },
      };
    case "+":
    case "-":
    case "*":
    case "/":
    case "%": {
      const type = arithmeticType(op, left.type, right.type, n);
      const integer = type === "long" || type === "int";
      return { type, eval: (row) => arithmetic(op, l(row), r(row), integer) };
    }
  }
  const predicate = STRING_OPERATORS[op];
  if (predicate) {
    const nullResult = TRUE_ON_NULL.has(op);
    return {
      type: "bool",
      eval: (row) => {
        const a = l(row);
        const b = r(row);
        if (a === null || b === null) return nullResult;
        return predicate(valueToString(a), valueToString(b));
      },
    };
  }
  throw unsupported(`the operator '${op}'`, n.children[1]?.start ?? n.start);
}

function compileInLike(n: SyntaxNode, scope: Scope): Compiled {
  const op = (n.children[1]?.text ?? "").toLowerCase();
  const left = compileScalar(n.children[0] as SyntaxNode, scope);
  const list = n.children[2] as SyntaxNode;
  const items = listItems(list.children.find((c) => c.kind === "List")).map((item) => {
    if (item.kind === "PipeExpression" || item.kind === "NameReference") {
      const isColumnOrLet =
        item.kind === "NameReference" &&
        (columnIndex(scope.columns, nameOf(item)) >= 0 || scope.lets.has(nameOf(item)));
      if (!isColumnOrLet) throw unsupported("a tabular expression inside 'in'", item.start);
    }
    return compileScalar(item, scope);
  });
  const expand = (row: Row): Value[] =>
    items.flatMap((c): Value[] => {
      const v = c.eval(row);
      return Array.isArray(v) ? v : [v];
    });
  switch (op) {
    case "in":
      return { type: "bool", eval: (row) => expand(row).some((v) => valuesEqual(left.eval(row), v)) };
    case "!in":
      return {
        type: "bool",
        eval: (row) => left.eval(row) !== null && !expand(row).some((v) => valuesEqual(left.eval(row), v)),
      };
    case "in~":
    case "!in~": {
      const negate = op === "!in~";
      return {
        type: "bool",
        eval: (row) => {
          const a = left.eval(row);
          if (a === null) return false;
          const s = valueToString(a).toLowerCase();
          const found = expand(row).some((v) => v !== null && valueToString(v).toLowerCase() === s);
          return negate ? !found : found;
        },
      };
    }
    case "has_any":
      return {
        type: "bool",
        eval: (row) => {
          const a = left.eval(row);
          if (a === null) return false;
          const s = valueToString(a);
          return expand(row).some((v) => v !== null && hasTerm(s, valueToString(v), false));
        },
      };
  }
  throw unsupported(`the operator '${op}'`, n.start);
}

function compileBetween(n: SyntaxNode, scope: Scope): Compiled {
  const negate = n.kind === "NotBetweenExpression";
  const value = compileScalar(n.children[0] as SyntaxNode, scope);
  const couple = n.children[2] as SyntaxNode;
  const bounds = couple.children.filter((c) => c.children.length > 0 || c.kind.endsWith("Expression"));
  const [low, high] = bounds.map((b) => compileScalar(b, scope));
  if (!low || !high) throw semanticError("between needs (low .. high)", n.start);
  return {
    type: "bool",
    eval: (row) => {
      const v = value.eval(row);
      const lo = low.eval(row);
      let hi = high.eval(row);
      if (v === null || lo === null || hi === null) return false;
      // `between (t .. 1h)`: a timespan upper bound on a datetime is relative to the lower one.
      if (isDate(lo) && isTimespan(hi)) hi = new Date(lo.getTime() + hi.ms);
      const inside = compareValues(v, lo) >= 0 && compareValues(v, hi) <= 0;
      return negate ? !inside : inside;
    },
  };
}
