/**
 * Microsoft's KQL parser (Kusto.Language, shipped as a Bridge.NET build in
 * @kusto/language-service-next), loaded once per process. The query engine runs on the syntax tree
 * it produces, converted to plain objects; the tests use its semantic analysis to check the
 * product's queries against the real table schemas.
 */
import { createRequire } from "node:module";
import { type KqlColumnType, type KqlTableSchema, schemaText } from "../../../shared/kql/tables.js";

// The few members of the Bridge.NET objects that this module touches.
interface BridgeNode {
  readonly Kind: number;
  readonly IsToken: boolean;
  readonly Text: string;
  readonly ValueText?: string;
  readonly TextStart: number;
  readonly ChildCount: number;
  GetChild(index: number): BridgeNode | null;
}
interface BridgeLiteralExpression extends BridgeNode {
  readonly LiteralValue: unknown;
}
interface BridgeList<T> {
  readonly Count: number;
  getItem(index: number): T;
}
interface BridgeDiagnostic {
  readonly Severity: string;
  readonly Code: string;
  readonly Message: string;
  readonly Start: number;
  readonly Length: number;
}
interface BridgeColumn {
  readonly Name: string;
  readonly Type: { readonly Name: string };
}
interface BridgeCode {
  readonly Syntax: BridgeNode;
  readonly ResultType: { readonly Columns?: BridgeList<BridgeColumn> } | null;
  GetDiagnostics(): BridgeList<BridgeDiagnostic>;
}
interface BridgeSymbol {
  readonly __symbol: true;
}
interface BridgeGlobals {
  WithCluster(cluster: BridgeSymbol): BridgeGlobals;
  WithDatabase(db: BridgeSymbol): BridgeGlobals;
}
interface KustoLanguage {
  KustoCode: {
    Parse(text: string): BridgeCode;
    ParseAndAnalyze(text: string, globals: BridgeGlobals): BridgeCode;
  };
  GlobalState: { Default: BridgeGlobals };
  Symbols: {
    TableSymbol: { $ctor7: new (name: string, schema: string, description: string | null) => BridgeSymbol };
    DatabaseSymbol: { ctor: new (name: string, members: BridgeSymbol[]) => BridgeSymbol };
    ClusterSymbol: { ctor: new (name: string, members: BridgeSymbol[]) => BridgeSymbol };
  };
  Syntax: { SyntaxKind: Record<string, unknown> };
}

let language: KustoLanguage | undefined;
let kindNames: Map<number, string> | undefined;

function kusto(): KustoLanguage {
  if (language) return language;
  const require = createRequire(import.meta.url);
  // Both scripts install their API on globalThis (Bridge, System, Kusto) rather than exporting it.
  require("@kusto/language-service-next/bridge.js");
  require("@kusto/language-service-next/Kusto.Language.Bridge.js");
  const root = (globalThis as unknown as { Kusto?: { Language?: KustoLanguage } }).Kusto?.Language;
  if (!root) throw new Error("@kusto/language-service-next did not install Kusto.Language");
  language = root;
  kindNames = new Map();
  for (const [name, value] of Object.entries(root.Syntax.SyntaxKind)) {
    if (typeof value === "number") kindNames.set(value, name);
  }
  return root;
}

/** A node of the KQL syntax tree as plain data. Tokens have no children; nodes have no text. */
export interface SyntaxNode {
  /** Kusto's SyntaxKind name, e.g. "PipeExpression", "FilterOperator", "StringLiteralToken". */
  kind: string;
  /** Token text as written (tokens only). */
  text: string;
  /**
   * For literal expressions: the decoded value of a string literal, or the token's value text for
   * other literals (e.g. "1h" for a timespan, "2024-01-01" for a datetime).
   */
  literal?: string;
  /** Offset of the node's first character in the query. */
  start: number;
  children: SyntaxNode[];
}

export interface KqlDiagnostic {
  severity: string;
  code: string;
  message: string;
  start: number;
  length: number;
}

function convert(node: BridgeNode): SyntaxNode {
  const kind = kindNames?.get(node.Kind) ?? `Kind${node.Kind}`;
  const out: SyntaxNode = { kind, text: node.IsToken ? node.Text : "", start: node.TextStart, children: [] };
  if (!node.IsToken) {
    for (let i = 0; i < node.ChildCount; i++) {
      const child = node.GetChild(i);
      if (child) out.children.push(convert(child));
    }
    if (kind.endsWith("LiteralExpression")) {
      if (kind === "StringLiteralExpression") {
        const value = (node as BridgeLiteralExpression).LiteralValue;
        out.literal = typeof value === "string" ? value : "";
      } else {
        const token = node.GetChild(0);
        out.literal = token?.ValueText ?? token?.Text ?? "";
      }
    }
  }
  return out;
}

function diagnosticsOf(code: BridgeCode): KqlDiagnostic[] {
  const list = code.GetDiagnostics();
  const out: KqlDiagnostic[] = [];
  for (let i = 0; i < list.Count; i++) {
    const d = list.getItem(i);
    out.push({
      severity: String(d.Severity),
      code: d.Code,
      message: d.Message,
      start: d.Start,
      length: d.Length,
    });
  }
  return out;
}

export interface ParsedKql {
  root: SyntaxNode;
  /** Syntax errors only (the parser knows no tables here). */
  diagnostics: KqlDiagnostic[];
}

/** Parses a query with Microsoft's parser (syntax only, no schema). */
export function parseKql(text: string): ParsedKql {
  const code = kusto().KustoCode.Parse(text);
  return { root: convert(code.Syntax), diagnostics: diagnosticsOf(code) };
}

export interface KqlAnalysis {
  diagnostics: KqlDiagnostic[];
  /** The result columns Kusto infers for the query's last statement. */
  resultColumns: { name: string; type: string }[];
}

const globalsCache = new WeakMap<readonly KqlTableSchema[], BridgeGlobals>();

function globalsFor(tables: readonly KqlTableSchema[]): BridgeGlobals {
  const cached = globalsCache.get(tables);
  if (cached) return cached;
  const k = kusto();
  const symbols = tables.map((t) => new k.Symbols.TableSymbol.$ctor7(t.name, schemaText(t), null));
  const db = new k.Symbols.DatabaseSymbol.ctor("logs", symbols);
  const cluster = new k.Symbols.ClusterSymbol.ctor("local", [db]);
  const globals = k.GlobalState.Default.WithCluster(cluster).WithDatabase(db);
  globalsCache.set(tables, globals);
  return globals;
}

/** Parses and analyses a query against table schemas: syntax errors, unknown names, type errors. */
export function analyzeKql(text: string, tables: readonly KqlTableSchema[]): KqlAnalysis {
  const code = kusto().KustoCode.ParseAndAnalyze(text, globalsFor(tables));
  const resultColumns: { name: string; type: string }[] = [];
  const cols = code.ResultType?.Columns;
  if (cols) {
    for (let i = 0; i < cols.Count; i++) {
      const c = cols.getItem(i);
      resultColumns.push({ name: c.Name, type: c.Type.Name });
    }
  }
  return { diagnostics: diagnosticsOf(code), resultColumns };
}

/** Kusto's type names as the query API reports them. */
export function normalizeKustoType(name: string): KqlColumnType | string {
  return name === "double" ? "real" : name === "boolean" ? "bool" : name;
}
