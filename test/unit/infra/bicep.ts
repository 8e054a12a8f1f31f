/**
 * The Bicep templates of infra/ as syntax trees, where no Bicep CLI can run: every file is parsed
 * with tree-sitter-bicep (a real Bicep grammar, as wasm). The checks beside this file cross-check
 * the trees against the code they deploy; each takes the templates as a map of path → text, so a
 * test can break a copy in memory and see the check fail. Test-only; product code never imports it.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { Language, type Node, Parser } from "web-tree-sitter";

export const ROOT = resolve(import.meta.dirname, "../../..");
const INFRA = join(ROOT, "infra");

/** Repo-relative path (posix) → file text. */
export type Templates = Map<string, string>;

export function loadTemplates(): Templates {
  const out: Templates = new Map();
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.name.endsWith(".bicep"))
        out.set(relative(ROOT, full).split("\\").join("/"), readFileSync(full, "utf8"));
    }
  };
  walk(INFRA);
  return out;
}

/** A copy of the templates with one file's text changed by `edit` (which must change it). */
export function mutate(templates: Templates, path: string, edit: (text: string) => string): Templates {
  const before = templates.get(path);
  if (before === undefined) throw new Error(`no template ${path}`);
  const after = edit(before);
  if (after === before) throw new Error(`the edit did not change ${path}`);
  return new Map(templates).set(path, after);
}

let parserPromise: Promise<Parser> | undefined;

export function bicepParser(): Promise<Parser> {
  parserPromise ??= (async () => {
    await Parser.init();
    const lang = await Language.load(join(ROOT, "node_modules/tree-sitter-bicep/tree-sitter-bicep.wasm"));
    const parser = new Parser();
    parser.setLanguage(lang);
    return parser;
  })();
  return parserPromise;
}

export function parse(parser: Parser, text: string): Node {
  const tree = parser.parse(text);
  if (tree === null) throw new Error("the parser returned no tree");
  return tree.rootNode;
}

// ---------------------------------------------------------------- syntax

/** "file:line: message" for every ERROR or MISSING node of every template. */
export function syntaxErrors(parser: Parser, templates: Templates): string[] {
  const problems: string[] = [];
  for (const [path, text] of templates) {
    const root = parse(parser, text);
    if (!root.hasError) continue;
    const walk = (n: Node): void => {
      if (n.isError || n.isMissing) {
        const what = n.isMissing ? `missing ${n.type}` : `unexpected ${JSON.stringify(n.text.slice(0, 40))}`;
        problems.push(`${path}:${n.startPosition.row + 1}: syntax error, ${what}`);
        return;
      }
      if (n.hasError) for (const c of n.children) if (c) walk(c);
    };
    walk(root);
    // hasError with no ERROR/MISSING node found still fails, naming the file.
    if (!problems.some((p) => p.startsWith(`${path}:`))) problems.push(`${path}:1: syntax error`);
  }
  return problems;
}

// ---------------------------------------------------------------- tree helpers

/** A node's named children (web-tree-sitter types them as possibly null). */
export const kids = (n: Node): Node[] => n.namedChildren.filter((c): c is Node => c !== null);

/** The text of a string literal without interpolation, else undefined. */
export function stringValue(n: Node | undefined): string | undefined {
  if (n?.type !== "string") return undefined;
  const parts = kids(n);
  if (parts.some((p) => p.type !== "string_content" && p.type !== "escape_sequence")) return undefined;
  return parts.map((p) => p.text).join("");
}

/** An object's properties by key (identifier or quoted key). */
export function objectProps(obj: Node | undefined): Map<string, Node> {
  const props = new Map<string, Node>();
  if (obj?.type !== "object") return props;
  for (const p of kids(obj)) {
    if (p.type !== "object_property") continue;
    const [key, value] = kids(p);
    if (!key || !value) continue;
    const name = key.type === "string" ? stringValue(key) : key.text;
    if (name !== undefined) props.set(name, value);
  }
  return props;
}

export interface Declaration {
  file: string;
  kind: "resource" | "module" | "variable";
  symbol: string;
  /** Resource type@version or module path or undefined for variables. */
  target?: string;
  existing: boolean;
  /** The body object (through `if (...)` and `[for ...: ...]`). */
  body?: Node;
  /** Scope text of a module (`scope: ...`), or of a resource. */
  scopeText?: string;
  line: number;
  /** The comment lines right above the declaration. */
  comment: string;
  value?: Node;
}

function bodyOf(n: Node): Node | undefined {
  for (const c of kids(n)) {
    if (c.type === "object") return c;
    if (c.type === "if_statement" || c.type === "for_statement") return bodyOf(c);
  }
  return undefined;
}

function commentAbove(n: Node): string {
  const lines: string[] = [];
  let prev = n.previousNamedSibling;
  let row = n.startPosition.row;
  while (prev && prev.type === "comment" && prev.endPosition.row >= row - 1) {
    lines.unshift(prev.text);
    row = prev.startPosition.row;
    prev = prev.previousNamedSibling;
  }
  return lines.join("\n");
}

export function declarations(parser: Parser, templates: Templates): Declaration[] {
  const out: Declaration[] = [];
  for (const [file, text] of templates) {
    const root = parse(parser, text);
    for (const n of kids(root)) {
      const kind =
        n.type === "resource_declaration"
          ? "resource"
          : n.type === "module_declaration"
            ? "module"
            : n.type === "variable_declaration"
              ? "variable"
              : undefined;
      if (!kind) continue;
      const [id, second] = kids(n);
      if (!id) continue;
      const body = kind === "variable" ? undefined : bodyOf(n);
      const scope = objectProps(body).get("scope");
      out.push({
        file,
        kind,
        symbol: id.text,
        ...(kind !== "variable" && { target: stringValue(second) }),
        existing: kind === "resource" && /\bexisting\s*=/.test(n.text.split("\n")[0] ?? ""),
        ...(body && { body }),
        ...(scope && { scopeText: scope.text }),
        line: n.startPosition.row + 1,
        comment: commentAbove(n),
        ...(kind === "variable" && second && { value: second }),
      });
    }
  }
  return out;
}
