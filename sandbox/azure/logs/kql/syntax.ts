/** Small readers over Kusto's syntax tree (as converted by ../kusto.ts). */
import type { SyntaxNode } from "../kusto.js";
import { semanticError } from "./errors.js";

export const isToken = (n: SyntaxNode) => n.children.length === 0 && n.text !== "";

export function child(n: SyntaxNode, kind: string): SyntaxNode | undefined {
  return n.children.find((c) => c.kind === kind);
}

/** The items of a List node, unwrapping SeparatedElement (item, comma). */
export function listItems(list: SyntaxNode | undefined): SyntaxNode[] {
  if (!list) return [];
  return list.children.flatMap((c) => {
    if (c.kind === "SeparatedElement") return c.children[0] ? [c.children[0]] : [];
    if (c.kind === "CommaToken") return [];
    return [c];
  });
}

/** Lists directly under `n`, in order (operators keep parameters, expressions and clauses in lists). */
export function lists(n: SyntaxNode): SyntaxNode[] {
  return n.children.filter((c) => c.kind === "List");
}

/** The first token's text: the operator keyword, e.g. "where", "mv-expand". */
export function firstTokenText(n: SyntaxNode): string {
  if (isToken(n)) return n.text;
  for (const c of n.children) {
    const t = firstTokenText(c);
    if (t !== "") return t;
  }
  return "";
}

/** Concatenated token text of a subtree, single-spaced (for messages). */
export function sourceText(n: SyntaxNode): string {
  const parts: string[] = [];
  const walk = (x: SyntaxNode) => {
    if (isToken(x)) parts.push(x.text);
    for (const c of x.children) walk(c);
  };
  walk(n);
  return parts
    .join(" ")
    .replace(/\s+([,.)\]])/g, "$1")
    .replace(/([([.])\s+/g, "$1");
}

/** The identifier of a NameReference / NameDeclaration / TokenName / BracketedName. */
export function nameOf(n: SyntaxNode): string {
  if (n.kind === "NameReference" || n.kind === "NameDeclaration") {
    const inner = n.children[0];
    if (inner) return nameOf(inner);
  }
  if (n.kind === "TokenName") return n.children[0]?.text ?? "";
  if (n.kind === "BracketedName") {
    const lit = n.children.find((c) => c.kind === "StringLiteralToken");
    if (lit) return lit.text.slice(1, -1);
  }
  if (isToken(n)) return n.text;
  throw semanticError(`expected a name, found '${sourceText(n)}'`, n.start);
}

/** Named parameters of an operator, e.g. kind=leftouter: lowercased name -> token text. */
export function namedParameters(op: SyntaxNode): Map<string, string> {
  const out = new Map<string, string>();
  for (const list of lists(op)) {
    for (const item of listItems(list)) {
      if (item.kind !== "NamedParameter") continue;
      const name = item.children[0] ? nameOf(item.children[0]) : "";
      const value = item.children[2];
      out.set(name.toLowerCase(), value ? sourceText(value) : "");
    }
  }
  return out;
}
