/**
 * A KQL engine for the subset the product's queries use, running on the syntax tree of Microsoft's
 * own parser. Anything outside the subset fails with an UnsupportedError that names the operator,
 * function or statement, never with a silently wrong answer.
 */
import { parseKql, type SyntaxNode } from "../kusto.js";
import { type AggregateSpec, compileAggregate } from "./aggregates.js";
import { KqlError, semanticError, unsupported } from "./errors.js";
import {
  type Compiled,
  columnIndex,
  compileScalar,
  convertTo,
  kqlRegex,
  type ScalarBinding,
  type Scope,
} from "./scalar.js";
import { child, firstTokenText, listItems, lists, namedParameters, nameOf, sourceText } from "./syntax.js";
import {
  type Column,
  compareValues,
  type KqlType,
  type Row,
  type Table,
  type Value,
  valueKey,
  valueToString,
} from "./values.js";

/** Where table references resolve: the logs store, already cut to the query's time range. */
export interface TableSource {
  table(name: string): Table | undefined;
}

export interface RunOptions {
  /** now() for the query (ms since epoch); default Date.now(). */
  now?: number;
}

export const SUPPORTED_OPERATORS = [
  "where",
  "filter",
  "extend",
  "project",
  "project-away",
  "project-rename",
  "summarize",
  "order by",
  "sort by",
  "take",
  "limit",
  "top",
  "distinct",
  "count",
  "parse",
  "join",
  "union",
  "print",
] as const;

interface Env {
  source: TableSource;
  scalars: Map<string, ScalarBinding>;
  tables: Map<string, Table>;
  now: number;
  text: string;
}

function scopeFor(columns: readonly Column[], env: Env): Scope {
  return { columns, lets: env.scalars, now: env.now, text: env.text };
}

/** Runs a query and returns its (single) result table. */
export function runKql(query: string, source: TableSource, options: RunOptions = {}): Table {
  const parsed = parseKql(query);
  const errors = parsed.diagnostics.filter((d) => d.severity === "Error");
  const first = errors[0];
  if (first) {
    const where = lineAndColumn(query, first.start);
    throw new KqlError(
      "SyntaxError",
      `Syntax error at line ${where.line}, column ${where.column}: ${first.message}`,
      first.start,
    );
  }
  const env: Env = {
    source,
    scalars: new Map(),
    tables: new Map(),
    now: options.now ?? Date.now(),
    text: query,
  };
  const statementList = lists(parsed.root)[1];
  const statements = listItems(statementList);
  let result: Table | undefined;
  for (const statement of statements) {
    if (result) throw unsupported("more than one result statement in a query", statement.start);
    switch (statement.kind) {
      case "LetStatement":
        bindLet(statement, env);
        break;
      case "ExpressionStatement": {
        const expr = statement.children[0];
        if (!expr) throw semanticError("empty statement", statement.start);
        result = evalTabular(expr, env);
        break;
      }
      default:
        throw unsupported(`the '${firstTokenText(statement)}' statement`, statement.start);
    }
  }
  if (!result) throw semanticError("the query has no result statement (only let statements)");
  return result;
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, offset));
  const lines = before.split("\n");
  return { line: lines.length, column: (lines[lines.length - 1]?.length ?? 0) + 1 };
}

function isTabular(n: SyntaxNode, env: Env): boolean {
  if (n.kind === "PipeExpression") return true;
  if (n.kind === "ParenthesizedExpression") return n.children[1] ? isTabular(n.children[1], env) : false;
  if (n.kind === "NameReference") {
    const name = nameOf(n);
    return env.tables.has(name) || (!env.scalars.has(name) && env.source.table(name) !== undefined);
  }
  return false;
}

function bindLet(n: SyntaxNode, env: Env): void {
  const name = nameOf(n.children[1] as SyntaxNode);
  const expr = n.children[3];
  if (!expr) throw semanticError(`let ${name} has no value`, n.start);
  if (expr.kind === "FunctionDeclaration")
    throw unsupported("user-defined functions (let with parameters)", expr.start);
  if (isTabular(expr, env)) {
    env.tables.set(name, evalTabular(expr, env));
    return;
  }
  const compiled = compileScalar(expr, scopeFor([], env));
  env.scalars.set(name, { type: compiled.type, value: compiled.eval([]) });
}

function evalTabular(n: SyntaxNode, env: Env): Table {
  switch (n.kind) {
    case "PipeExpression": {
      const input = evalTabular(n.children[0] as SyntaxNode, env);
      return applyOperator(n.children[2] as SyntaxNode, input, env);
    }
    case "ParenthesizedExpression":
      return evalTabular(n.children[1] as SyntaxNode, env);
    case "NameReference": {
      const name = nameOf(n);
      const table = env.tables.get(name) ?? env.source.table(name);
      if (!table)
        throw semanticError(`Failed to resolve table or column expression named '${name}'`, n.start);
      return table;
    }
    case "UnionOperator":
      return union(n, undefined, env);
    case "PrintOperator":
      return print(n, env);
  }
  throw unsupported(`the tabular expression '${sourceText(n)}'`, n.start);
}

function applyOperator(op: SyntaxNode, input: Table, env: Env): Table {
  switch (op.kind) {
    case "FilterOperator":
      return filter(op, input, env);
    case "ExtendOperator":
      return extend(op, input, env);
    case "ProjectOperator":
      return project(op, input, env);
    case "ProjectAwayOperator":
      return projectAway(op, input);
    case "ProjectRenameOperator":
      return projectRename(op, input);
    case "SummarizeOperator":
      return summarize(op, input, env);
    case "SortOperator":
      return sort(op, input, env);
    case "TakeOperator":
      return take(op, input, env);
    case "TopOperator":
      return top(op, input, env);
    case "DistinctOperator":
      return distinct(op, input, env);
    case "CountOperator":
      return { columns: [{ name: "Count", type: "long" }], rows: [[input.rows.length]] };
    case "ParseOperator":
      return parse(op, input, env);
    case "JoinOperator":
      return join(op, input, env);
    case "UnionOperator":
      return union(op, input, env);
  }
  const keyword = firstTokenText(op);
  throw unsupported(`the query operator '${keyword}'`, op.start);
}

// ---------------------------------------------------------------------------------------------
// Naming

/** `base`, or `base1`, `base2`... whichever is free. */
export function uniqueName(base: string, taken: ReadonlySet<string>): string {
  if (!taken.has(base)) return base;
  for (let i = 1; ; i++) if (!taken.has(`${base}${i}`)) return `${base}${i}`;
}

function autoName(taken: ReadonlySet<string>): string {
  for (let i = 1; ; i++) if (!taken.has(`Column${i}`)) return `Column${i}`;
}

interface NamedExpr {
  name: string | undefined;
  compiled: Compiled;
}

function namedExpression(item: SyntaxNode, scope: Scope): NamedExpr {
  if (item.kind === "SimpleNamedExpression") {
    return {
      name: nameOf(item.children[0] as SyntaxNode),
      compiled: compileScalar(item.children[2] as SyntaxNode, scope),
    };
  }
  if (item.kind === "CompoundNamedExpression")
    throw unsupported("(a, b) = ... outside summarize", item.start);
  const compiled = compileScalar(item, scope);
  return { name: compiled.name, compiled };
}

// ---------------------------------------------------------------------------------------------
// Operators

function filter(op: SyntaxNode, input: Table, env: Env): Table {
  const condition = op.children[op.children.length - 1] as SyntaxNode;
  const predicate = compileScalar(condition, scopeFor(input.columns, env));
  if (predicate.type !== "bool" && predicate.type !== "dynamic") {
    throw semanticError(
      `where: the condition '${sourceText(condition)}' is ${predicate.type}, not bool`,
      condition.start,
    );
  }
  return { columns: input.columns, rows: input.rows.filter((row) => predicate.eval(row) === true) };
}

function extend(op: SyntaxNode, input: Table, env: Env): Table {
  const scope = scopeFor(input.columns, env);
  const columns = [...input.columns];
  const plan: { index: number; compiled: Compiled }[] = [];
  for (const item of listItems(lists(op)[0])) {
    const { name, compiled } = namedExpression(item, scope);
    const taken = new Set(columns.map((c) => c.name));
    const finalName = name ?? autoName(taken);
    const existing = columnIndex(columns, finalName);
    if (existing >= 0) {
      columns[existing] = { name: finalName, type: compiled.type };
      plan.push({ index: existing, compiled });
    } else {
      columns.push({ name: finalName, type: compiled.type });
      plan.push({ index: columns.length - 1, compiled });
    }
  }
  // Every expression sees the input row, as in Kusto (extend a = 1, b = a fails there too).
  const rows = input.rows.map((row) => {
    const out = [...row];
    for (const p of plan) out[p.index] = p.compiled.eval(row);
    return out;
  });
  return { columns, rows };
}

function project(op: SyntaxNode, input: Table, env: Env): Table {
  const scope = scopeFor(input.columns, env);
  const columns: Column[] = [];
  const compiled: Compiled[] = [];
  for (const item of listItems(lists(op)[0])) {
    const named = namedExpression(item, scope);
    const taken = new Set(columns.map((c) => c.name));
    const name = named.name ?? autoName(taken);
    if (taken.has(name)) throw semanticError(`project: the column '${name}' is named twice`, item.start);
    columns.push({ name, type: named.compiled.type });
    compiled.push(named.compiled);
  }
  return { columns, rows: input.rows.map((row) => compiled.map((c) => c.eval(row))) };
}

function matchColumns(pattern: string, columns: readonly Column[]): number[] {
  if (!pattern.includes("*")) {
    const i = columnIndex(columns, pattern);
    return i >= 0 ? [i] : [];
  }
  const re = new RegExp(`^${pattern.split("*").map(escapeRegex).join(".*")}$`);
  return columns.flatMap((c, i) => (re.test(c.name) ? [i] : []));
}

function projectAway(op: SyntaxNode, input: Table): Table {
  const drop = new Set<number>();
  for (const item of listItems(lists(op)[0])) {
    const pattern = item.kind === "NameReference" ? nameOf(item) : sourceText(item).replace(/\s+/g, "");
    const hits = matchColumns(pattern, input.columns);
    if (hits.length === 0 && !pattern.includes("*")) {
      throw semanticError(`project-away: no column named '${pattern}'`, item.start);
    }
    for (const h of hits) drop.add(h);
  }
  const keep = input.columns.flatMap((_, i) => (drop.has(i) ? [] : [i]));
  return {
    columns: keep.map((i) => input.columns[i] as Column),
    rows: input.rows.map((row) => keep.map((i) => row[i] ?? null)),
  };
}

function projectRename(op: SyntaxNode, input: Table): Table {
  const columns = [...input.columns];
  for (const item of listItems(lists(op)[0])) {
    if (item.kind !== "SimpleNamedExpression")
      throw semanticError("project-rename expects new = old", item.start);
    const to = nameOf(item.children[0] as SyntaxNode);
    const from = nameOf(item.children[2] as SyntaxNode);
    const i = columnIndex(columns, from);
    if (i < 0) throw semanticError(`project-rename: no column named '${from}'`, item.start);
    columns[i] = { name: to, type: (columns[i] as Column).type };
  }
  return { columns, rows: input.rows };
}

function summarize(op: SyntaxNode, input: Table, env: Env): Table {
  const scope = scopeFor(input.columns, env);
  const opLists = lists(op);
  if (listItems(opLists[0]).length > 0) throw unsupported("summarize parameters (hint.*)", op.start);
  const byClause = child(op, "SummarizeByClause");
  const byItems = byClause ? listItems(byClause.children.find((c) => c.kind === "List")) : [];

  const taken = new Set<string>();
  const keyColumns: Column[] = [];
  const keys: Compiled[] = [];
  for (const item of byItems) {
    const named = namedExpression(item, scope);
    const name = uniqueName(named.name ?? autoName(taken), taken);
    taken.add(name);
    keyColumns.push({ name, type: named.compiled.type });
    keys.push(named.compiled);
  }

  const byNames = new Set(keyColumns.map((c) => c.name));
  const aggColumns: Column[] = [];
  const aggregates: AggregateSpec[] = [];
  for (const item of listItems(opLists[1])) {
    let call = item;
    let rename: string[] = [];
    if (item.kind === "SimpleNamedExpression") {
      rename = [nameOf(item.children[0] as SyntaxNode)];
      call = item.children[2] as SyntaxNode;
    } else if (item.kind === "CompoundNamedExpression") {
      const renameList = item.children[0] as SyntaxNode;
      rename = listItems(renameList.children.find((c) => c.kind === "List")).map(nameOf);
      call = item.children[2] as SyntaxNode;
    }
    const spec = compileAggregate(call, { scope, byNames });
    spec.outputs.forEach((out, i) => {
      const name = uniqueName(rename[i] ?? out.name, taken);
      taken.add(name);
      aggColumns.push({ name, type: out.type });
    });
    aggregates.push(spec);
  }

  const groups = new Map<string, { key: Value[]; accs: ReturnType<AggregateSpec["create"]>[] }>();
  for (const row of input.rows) {
    const key = keys.map((k) => k.eval(row));
    const id = key.map(valueKey).join("\u0001");
    let group = groups.get(id);
    if (!group) {
      group = { key, accs: aggregates.map((a) => a.create()) };
      groups.set(id, group);
    }
    for (const acc of group.accs) acc.add(row);
  }
  // Without by-columns Kusto answers one row even for no input (count() = 0).
  if (keys.length === 0 && groups.size === 0)
    groups.set("", { key: [], accs: aggregates.map((a) => a.create()) });
  const rows = [...groups.values()].map((g) => [...g.key, ...g.accs.flatMap((a) => a.result())]);
  return { columns: [...keyColumns, ...aggColumns], rows };
}

interface SortKey {
  compiled: Compiled;
  descending: boolean;
  nullsFirst: boolean;
}

function sortKeys(items: SyntaxNode[], scope: Scope): SortKey[] {
  return items.map((item) => {
    let expr = item;
    let descending = true;
    let nullsFirst: boolean | undefined;
    if (item.kind === "OrderedExpression") {
      expr = item.children[0] as SyntaxNode;
      const clause = child(item, "OrderingClause");
      if (clause) {
        if (child(clause, "AscKeyword")) descending = false;
        const nulls = child(clause, "OrderingNullsClause");
        if (nulls) nullsFirst = child(nulls, "FirstKeyword") !== undefined;
      }
    }
    return { compiled: compileScalar(expr, scope), descending, nullsFirst: nullsFirst ?? !descending };
  });
}

function sortRows(rows: Row[], keys: SortKey[]): Row[] {
  const evaluated = rows.map((row) => ({ row, values: keys.map((k) => k.compiled.eval(row)) }));
  evaluated.sort((a, b) => {
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i] as SortKey;
      const x = a.values[i] ?? null;
      const y = b.values[i] ?? null;
      if (x === null || y === null) {
        if (x === y) continue;
        return (x === null) === k.nullsFirst ? -1 : 1;
      }
      const c = compareValues(x, y);
      if (c !== 0) return k.descending ? -c : c;
    }
    return 0;
  });
  return evaluated.map((e) => e.row);
}

function sort(op: SyntaxNode, input: Table, env: Env): Table {
  const opLists = lists(op);
  const items = listItems(opLists[opLists.length - 1]);
  return {
    columns: input.columns,
    rows: sortRows(input.rows, sortKeys(items, scopeFor(input.columns, env))),
  };
}

function countArgument(n: SyntaxNode | undefined, env: Env, what: string): number {
  if (!n) throw semanticError(`${what} needs a row count`);
  const v = compileScalar(n, scopeFor([], env)).eval([]);
  if (typeof v !== "number" || v < 0)
    throw semanticError(`${what}: the row count must be a non-negative number`, n.start);
  return Math.trunc(v);
}

function take(op: SyntaxNode, input: Table, env: Env): Table {
  const expr = op.children[op.children.length - 1];
  return { columns: input.columns, rows: input.rows.slice(0, countArgument(expr, env, firstTokenText(op))) };
}

function top(op: SyntaxNode, input: Table, env: Env): Table {
  const parts = op.children.filter((c) => c.kind !== "List" && c.children.length > 0);
  const [countNode, orderNode] = [parts[0], parts[parts.length - 1]];
  if (!orderNode || countNode === orderNode) throw semanticError("top needs: top N by expression", op.start);
  const n = countArgument(countNode, env, "top");
  const keys = sortKeys([orderNode], scopeFor(input.columns, env));
  return { columns: input.columns, rows: sortRows(input.rows, keys).slice(0, n) };
}

function distinct(op: SyntaxNode, input: Table, env: Env): Table {
  const opLists = lists(op);
  const items = listItems(opLists[opLists.length - 1]);
  let projected = input;
  if (!(items.length === 1 && items[0]?.kind === "StarExpression")) {
    const scope = scopeFor(input.columns, env);
    const named = items.map((item) => namedExpression(item, scope));
    const columns = named.map((x, i) => ({ name: x.name ?? `Column${i + 1}`, type: x.compiled.type }));
    projected = { columns, rows: input.rows.map((row) => named.map((x) => x.compiled.eval(row))) };
  }
  const seen = new Set<string>();
  const rows = projected.rows.filter((row) => {
    const id = row.map(valueKey).join("\u0001");
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
  return { columns: projected.columns, rows };
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function parse(op: SyntaxNode, input: Table, env: Env): Table {
  const kind = (namedParameters(op).get("kind") ?? "simple").toLowerCase();
  if (kind !== "simple" && kind !== "regex" && kind !== "relaxed")
    throw unsupported(`parse kind=${kind}`, op.start);
  const opLists = lists(op);
  const source = op.children.find((c) => c.kind !== "List" && c.children.length > 0);
  if (!source) throw semanticError("parse needs an expression", op.start);
  const value = compileScalar(source, scopeFor(input.columns, env));
  const pattern = listItems(opLists[opLists.length - 1]);

  let regex = "";
  const newColumns: Column[] = [];
  pattern.forEach((item, i) => {
    const last = i === pattern.length - 1;
    if (item.kind === "StarExpression") {
      regex += last ? ".*" : ".*?";
    } else if (item.kind === "StringLiteralExpression") {
      regex += kind === "regex" ? (item.literal ?? "") : escapeRegex(item.literal ?? "");
    } else if (item.kind === "NameDeclaration" || item.kind === "NameAndTypeDeclaration") {
      const name = nameOf(item.kind === "NameDeclaration" ? item : (item.children[0] as SyntaxNode));
      const typeNode = item.kind === "NameAndTypeDeclaration" ? item.children[2] : undefined;
      const typeText = typeNode ? sourceText(typeNode).toLowerCase() : "string";
      const type = (typeText === "double" ? "real" : typeText === "boolean" ? "bool" : typeText) as KqlType;
      newColumns.push({ name, type });
      regex += last ? "(.*)" : "(.*?)";
    } else {
      throw unsupported(`'${sourceText(item)}' in a parse pattern`, item.start);
    }
  });
  const re = kqlRegex(`^${regex}${kind === "relaxed" ? "" : "$"}`, "s");
  const taken = new Set(input.columns.map((c) => c.name));
  for (const c of newColumns) {
    if (taken.has(c.name)) throw semanticError(`parse: the column '${c.name}' already exists`, op.start);
  }
  const rows = input.rows.map((row) => {
    const v = value.eval(row);
    const m = v === null ? null : re.exec(valueToString(v));
    const extracted = newColumns.map((c, i) => {
      const text = m?.[i + 1];
      if (text === undefined) return c.type === "string" ? "" : null;
      return convertTo(c.type, text);
    });
    return [...row, ...extracted];
  });
  return { columns: [...input.columns, ...newColumns], rows };
}

const JOIN_KINDS = new Set(["innerunique", "inner", "leftouter", "leftanti", "leftsemi"]);

function join(op: SyntaxNode, left: Table, env: Env): Table {
  const params = namedParameters(op);
  const kind = (params.get("kind") ?? "innerunique").toLowerCase();
  if (!JOIN_KINDS.has(kind)) throw unsupported(`join kind=${kind}`, op.start);
  for (const p of params.keys()) if (p !== "kind") throw unsupported(`the join parameter '${p}'`, op.start);
  const rightNode = op.children.find(
    (c) => c.kind !== "List" && c.children.length > 0 && !c.kind.startsWith("Join"),
  );
  const onClause = child(op, "JoinOnClause");
  if (!rightNode || !onClause) throw unsupported("join without an 'on' clause", op.start);
  const right = evalTabular(rightNode, env);

  const pairs = listItems(onClause.children.find((c) => c.kind === "List")).map((item) => {
    if (item.kind === "NameReference") {
      const name = nameOf(item);
      return { l: keyIndex(left, name, item), r: keyIndex(right, name, item) };
    }
    if (item.kind === "EqualExpression") {
      const sides = [item.children[0], item.children[2]].map((side) => {
        const path = side && side.kind === "PathExpression" ? side : undefined;
        const owner = path?.children[0] ? nameOf(path.children[0]) : "";
        if (!path || (owner !== "$left" && owner !== "$right")) {
          throw unsupported(`the join condition '${sourceText(item)}' (use $left.a == $right.b)`, item.start);
        }
        return { owner, name: nameOf(path.children[2] as SyntaxNode) };
      });
      const l = sides.find((s) => s.owner === "$left");
      const r = sides.find((s) => s.owner === "$right");
      if (!l || !r)
        throw semanticError(
          `the join condition '${sourceText(item)}' needs one $left and one $right`,
          item.start,
        );
      return { l: keyIndex(left, l.name, item), r: keyIndex(right, r.name, item) };
    }
    throw unsupported(`the join condition '${sourceText(item)}'`, item.start);
  });

  const keyOf = (row: Row, side: "l" | "r"): string | undefined => {
    const values = pairs.map((p) => row[p[side]] ?? null);
    return values.some((v) => v === null) ? undefined : values.map(valueKey).join("\u0001");
  };
  const rightByKey = new Map<string, Row[]>();
  for (const row of right.rows) {
    const k = keyOf(row, "r");
    if (k === undefined) continue;
    const list = rightByKey.get(k) ?? [];
    list.push(row);
    rightByKey.set(k, list);
  }

  let leftRows = left.rows;
  if (kind === "innerunique") {
    const seen = new Set<string>();
    leftRows = leftRows.filter((row) => {
      const k = keyOf(row, "l");
      if (k === undefined || seen.has(k)) return false;
      seen.add(k);
      return true;
    });
  }
  if (kind === "leftanti" || kind === "leftsemi") {
    const wantMatch = kind === "leftsemi";
    const rows = leftRows.filter((row) => {
      const k = keyOf(row, "l");
      return (k !== undefined && rightByKey.has(k)) === wantMatch;
    });
    return { columns: left.columns, rows };
  }

  const taken = new Set(left.columns.map((c) => c.name));
  const rightColumns = right.columns.map((c) => {
    const name = uniqueName(c.name, taken);
    taken.add(name);
    return { name, type: c.type };
  });
  const nulls = right.columns.map((): Value => null);
  const rows: Row[] = [];
  for (const row of leftRows) {
    const k = keyOf(row, "l");
    const matches = k === undefined ? undefined : rightByKey.get(k);
    if (matches) for (const m of matches) rows.push([...row, ...m]);
    else if (kind === "leftouter") rows.push([...row, ...nulls]);
  }
  return { columns: [...left.columns, ...rightColumns], rows };
}

/** `print a = 1, 2`: one row; unnamed columns are print_0, print_1... */
function print(op: SyntaxNode, env: Env): Table {
  const scope = scopeFor([], env);
  const named = listItems(lists(op)[0]).map((item) => namedExpression(item, scope));
  return {
    columns: named.map((x, i) => ({ name: x.name ?? `print_${i}`, type: x.compiled.type })),
    rows: [named.map((x) => x.compiled.eval([]))],
  };
}

/**
 * `union [kind=outer|inner] [withsource=Col] [isfuzzy=...] T1, (T2 | ...)`, standalone or after a
 * pipe. Columns meet by name; one name with different types becomes name_type, as in Kusto.
 */
function union(op: SyntaxNode, input: Table | undefined, env: Env): Table {
  const params = namedParameters(op);
  const kind = (params.get("kind") ?? "outer").toLowerCase();
  if (kind !== "outer" && kind !== "inner") throw unsupported(`union kind=${kind}`, op.start);
  for (const p of params.keys()) {
    if (!["kind", "withsource", "isfuzzy"].includes(p))
      throw unsupported(`the union parameter '${p}'`, op.start);
  }
  const operands = lists(op)
    .flatMap(listItems)
    .filter((item) => item.kind !== "NamedParameter");
  const tables: { source: string; table: Table }[] = [];
  if (input) tables.push({ source: "union_arg0", table: input });
  for (const item of operands) {
    const label = item.kind === "NameReference" ? nameOf(item) : `union_arg${tables.length}`;
    tables.push({ source: label, table: evalTabular(item, env) });
  }

  // Columns in order of first appearance; one name with several types becomes name_type for each,
  // the variants side by side where the name first appeared (Kusto's layout).
  const typesByName = new Map<string, KqlType[]>();
  for (const { table } of tables) {
    for (const c of table.columns) {
      const types = typesByName.get(c.name) ?? [];
      if (!types.includes(c.type)) types.push(c.type);
      typesByName.set(c.name, types);
    }
  }
  const outName = (c: Column) =>
    (typesByName.get(c.name)?.length ?? 1) > 1 ? `${c.name}_${c.type}` : c.name;
  const columns: Column[] = [...typesByName].flatMap(([name, types]) =>
    types.length > 1
      ? types.map((type) => ({ name: `${name}_${type}`, type }))
      : [{ name, type: types[0] as KqlType }],
  );
  const kept =
    kind === "inner"
      ? columns.filter((c) => tables.every(({ table }) => table.columns.some((x) => outName(x) === c.name)))
      : columns;
  const withSource = params.get("withsource");
  const rows: Row[] = [];
  for (const { source, table } of tables) {
    const index = kept.map((c) => table.columns.findIndex((x) => outName(x) === c.name));
    for (const row of table.rows) {
      const values = index.map((i) => (i >= 0 ? (row[i] ?? null) : null));
      rows.push(withSource ? [source, ...values] : values);
    }
  }
  return {
    columns: withSource ? [{ name: withSource, type: "string" }, ...kept] : kept,
    rows,
  };
}

function keyIndex(table: Table, name: string, at: SyntaxNode): number {
  const i = columnIndex(table.columns, name);
  if (i < 0) throw semanticError(`join: no column named '${name}' on that side`, at.start);
  return i;
}
