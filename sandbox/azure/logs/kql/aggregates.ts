/** Aggregation functions of `summarize`: output columns named as Kusto names them, and accumulators. */
import type { SyntaxNode } from "../kusto.js";
import { semanticError, unsupported } from "./errors.js";
import { type Compiled, callParts, compileScalar, type Scope } from "./scalar.js";
import { sourceText } from "./syntax.js";
import {
  type Column,
  compareValues,
  isTimespan,
  type KqlType,
  type Row,
  Timespan,
  toJson,
  type Value,
  valueKey,
} from "./values.js";

export interface Accumulator {
  add(row: Row): void;
  result(): Value[];
}

export interface AggregateSpec {
  /** Columns this aggregate contributes, before the summarize makes names unique. */
  outputs: Column[];
  create(): Accumulator;
}

interface AggregateContext {
  scope: Scope;
  /** Names of the by-columns: arg_max(x, *) leaves them out. */
  byNames: ReadonlySet<string>;
}

function args(n: SyntaxNode, count: [number, number], name: string): SyntaxNode[] {
  const { args: list } = callParts(n);
  if (list.length < count[0] || list.length > count[1]) {
    const want = count[0] === count[1] ? `${count[0]}` : `${count[0]} to ${count[1]}`;
    throw semanticError(`aggregate '${name}' expects ${want} arguments, got ${list.length}`, n.start);
  }
  return list;
}

const suffix = (c: Compiled) => c.name ?? "";

function predicateOf(node: SyntaxNode | undefined, scope: Scope): Compiled | undefined {
  return node ? compileScalar(node, scope) : undefined;
}

function sumType(t: KqlType): KqlType {
  return t === "int"
    ? "long"
    : t === "timespan"
      ? "timespan"
      : t === "real" || t === "dynamic"
        ? "real"
        : "long";
}

function addValues(a: Value, b: Value): Value {
  if (a === null) return b;
  if (b === null) return a;
  if (typeof a === "number" && typeof b === "number") return a + b;
  if (isTimespan(a) && isTimespan(b)) return new Timespan(a.ms + b.ms);
  return a;
}

export function compileAggregate(n: SyntaxNode, ctx: AggregateContext): AggregateSpec {
  if (n.kind !== "FunctionCallExpression") {
    throw unsupported(
      `'${sourceText(n)}' as a summarize aggregate (use a single aggregation function)`,
      n.start,
    );
  }
  const { name } = callParts(n);
  const { scope } = ctx;
  switch (name) {
    case "count": {
      args(n, [0, 0], name);
      return {
        outputs: [{ name: "count_", type: "long" }],
        create: () => {
          let c = 0;
          return { add: () => void c++, result: () => [c] };
        },
      };
    }
    case "countif": {
      const [p] = args(n, [1, 1], name).map((a) => compileScalar(a, scope));
      return {
        outputs: [{ name: "countif_", type: "long" }],
        create: () => {
          let c = 0;
          return {
            add: (row) => {
              if (p?.eval(row) === true) c++;
            },
            result: () => [c],
          };
        },
      };
    }
    case "dcount":
    case "dcountif": {
      const a = args(n, name === "dcount" ? [1, 2] : [2, 3], name);
      const value = compileScalar(a[0] as SyntaxNode, scope);
      const pred = name === "dcountif" ? predicateOf(a[1], scope) : undefined;
      return {
        outputs: [{ name: `${name}_${suffix(value)}`, type: "long" }],
        create: () => {
          const seen = new Set<string>();
          return {
            add: (row) => {
              if (pred && pred.eval(row) !== true) return;
              const v = value.eval(row);
              if (v !== null) seen.add(valueKey(v));
            },
            result: () => [seen.size],
          };
        },
      };
    }
    case "sum":
    case "sumif": {
      const a = args(n, name === "sum" ? [1, 1] : [2, 2], name);
      const value = compileScalar(a[0] as SyntaxNode, scope);
      const pred = name === "sumif" ? predicateOf(a[1], scope) : undefined;
      return {
        outputs: [{ name: `${name}_${suffix(value)}`, type: sumType(value.type) }],
        create: () => {
          let total: Value = null;
          return {
            add: (row) => {
              if (pred && pred.eval(row) !== true) return;
              total = addValues(total, value.eval(row));
            },
            result: () => [total],
          };
        },
      };
    }
    case "avg":
    case "avgif": {
      const a = args(n, name === "avg" ? [1, 1] : [2, 2], name);
      const value = compileScalar(a[0] as SyntaxNode, scope);
      const pred = name === "avgif" ? predicateOf(a[1], scope) : undefined;
      return {
        outputs: [{ name: `${name}_${suffix(value)}`, type: "real" }],
        create: () => {
          let total = 0;
          let count = 0;
          return {
            add: (row) => {
              if (pred && pred.eval(row) !== true) return;
              const v = value.eval(row);
              if (typeof v === "number") {
                total += v;
                count++;
              }
            },
            result: () => [count === 0 ? null : total / count],
          };
        },
      };
    }
    case "min":
    case "max": {
      const [a0] = args(n, [1, 1], name);
      const value = compileScalar(a0 as SyntaxNode, scope);
      const sign = name === "max" ? 1 : -1;
      return {
        outputs: [{ name: `${name}_${suffix(value)}`, type: value.type }],
        create: () => {
          let best: Value = null;
          return {
            add: (row) => {
              const v = value.eval(row);
              if (v !== null && (best === null || compareValues(v, best) * sign > 0)) best = v;
            },
            result: () => [best],
          };
        },
      };
    }
    case "take_any":
    case "any": {
      const list = args(n, [1, 64], name).map((a) => compileScalar(a, scope));
      return {
        outputs: list.map((c, i) => ({ name: c.name ?? `${name}_${i}`, type: c.type })),
        create: () => {
          let picked: Value[] | undefined;
          return {
            add: (row) => {
              if (!picked) picked = list.map((c) => c.eval(row));
            },
            result: () => picked ?? list.map(() => null),
          };
        },
      };
    }
    case "make_set":
    case "make_list": {
      const a = args(n, [1, 2], name);
      const value = compileScalar(a[0] as SyntaxNode, scope);
      const maxNode = a[1];
      const max = maxNode ? Number(maxNode.literal ?? Number.NaN) : 1_048_576;
      if (!Number.isFinite(max)) throw unsupported(`a non-literal size in ${name}`, n.start);
      const set = name === "make_set";
      return {
        outputs: [{ name: `${set ? "set" : "list"}_${suffix(value)}`, type: "dynamic" }],
        create: () => {
          const items: Value[] = [];
          const seen = new Set<string>();
          return {
            add: (row) => {
              const v = value.eval(row);
              if (v === null || items.length >= max) return;
              if (set) {
                const k = valueKey(v);
                if (seen.has(k)) return;
                seen.add(k);
              }
              items.push(v);
            },
            result: () => [items.map(toJson)],
          };
        },
      };
    }
    case "arg_max":
    case "arg_min":
      return compileArgExtreme(n, name, ctx);
  }
  throw unsupported(`the aggregate function '${name}'`, n.start);
}

function compileArgExtreme(n: SyntaxNode, name: string, ctx: AggregateContext): AggregateSpec {
  const [byNode, ...rest] = args(n, [1, 64], name);
  const by = compileScalar(byNode as SyntaxNode, ctx.scope);
  const byName = by.name ?? `${name === "arg_max" ? "max" : "min"}_`;
  const carried: { name: string; compiled: Compiled }[] = [];
  for (const item of rest) {
    if (item.kind === "StarExpression") {
      ctx.scope.columns.forEach((col, i) => {
        if (col.name === byName || ctx.byNames.has(col.name)) return;
        carried.push({
          name: col.name,
          compiled: { type: col.type, eval: (row) => row[i] ?? null, name: col.name },
        });
      });
    } else {
      const c = compileScalar(item, ctx.scope);
      carried.push({ name: c.name ?? "Column", compiled: c });
    }
  }
  const sign = name === "arg_max" ? 1 : -1;
  return {
    outputs: [
      { name: byName, type: by.type },
      ...carried.map((c) => ({ name: c.name, type: c.compiled.type })),
    ],
    create: () => {
      let best: Value = null;
      let bestRow: Row | undefined;
      return {
        add: (row) => {
          const v = by.eval(row);
          if (v === null) return;
          if (best === null || compareValues(v, best) * sign > 0) {
            best = v;
            bestRow = row;
          }
        },
        result: () => {
          const row = bestRow;
          return [best, ...carried.map((c) => (row ? c.compiled.eval(row) : null))];
        },
      };
    },
  };
}
