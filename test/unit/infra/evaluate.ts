/**
 * Evaluates the small subset of Bicep expressions the Function App's settings use (parameters,
 * string literals and interpolation, `? :`, `==`/`!=`, `empty()`, `subscription()`/`tenant()`
 * members) with given parameter values, so a test can hand the result to the product's own
 * config validation. Anything else throws, naming the construct, rather than guessing.
 */
import type { Node } from "web-tree-sitter";
import { kids, objectProps } from "./bicep.js";

export interface Scope {
  params: Record<string, string>;
  subscriptionId: string;
  tenantId: string;
}

export function evaluate(n: Node, scope: Scope): string | boolean {
  switch (n.type) {
    case "string":
      return kids(n)
        .map((part) => {
          if (part.type === "string_content" || part.type === "escape_sequence") return part.text;
          const inner = kids(part)[0];
          if (part.type === "interpolation" && inner) return String(evaluate(inner, scope));
          throw new Error(`cannot evaluate string part ${part.type}`);
        })
        .join("");
    case "boolean":
      return n.text === "true";
    case "identifier": {
      const value = scope.params[n.text];
      if (value === undefined) throw new Error(`no value for ${n.text}`);
      return value;
    }
    case "parenthesized_expression": {
      const inner = kids(n)[0];
      if (!inner) throw new Error("empty parentheses");
      return evaluate(inner, scope);
    }
    case "ternary_expression": {
      const cond = n.childForFieldName("condition");
      const yes = n.childForFieldName("consequence");
      const no = n.childForFieldName("alternative");
      if (!cond || !yes || !no) throw new Error("incomplete ternary");
      return evaluate(cond, scope) === true ? evaluate(yes, scope) : evaluate(no, scope);
    }
    case "binary_expression": {
      const left = n.childForFieldName("left");
      const right = n.childForFieldName("right");
      const op = n.children.find((c) => c !== null && !c.isNamed)?.text;
      if (!left || !right) throw new Error("incomplete binary expression");
      if (op === "==") return evaluate(left, scope) === evaluate(right, scope);
      if (op === "!=") return evaluate(left, scope) !== evaluate(right, scope);
      throw new Error(`cannot evaluate operator ${op}`);
    }
    case "unary_expression": {
      const operand = kids(n)[0];
      if (n.text.startsWith("!") && operand) return evaluate(operand, scope) !== true;
      throw new Error(`cannot evaluate ${n.text}`);
    }
    case "call_expression": {
      const fn = n.childForFieldName("function")?.text;
      const args = kids(n.childForFieldName("arguments") ?? n).map((a) => evaluate(a, scope));
      if (fn === "empty" && args.length === 1) return args[0] === "";
      throw new Error(`cannot evaluate ${fn}()`);
    }
    case "member_expression": {
      const call = n.childForFieldName("object")?.text;
      const property = n.childForFieldName("property")?.text;
      if (call === "subscription()" && property === "subscriptionId") return scope.subscriptionId;
      if (call === "tenant()" && property === "tenantId") return scope.tenantId;
      throw new Error(`cannot evaluate ${n.text}`);
    }
    default:
      throw new Error(`cannot evaluate ${n.type}: ${n.text}`);
  }
}

/** An object variable's entries, evaluated; empty values are dropped, as the template filters them. */
export function evaluateSettings(obj: Node | undefined, scope: Scope): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of objectProps(obj)) {
    const v = evaluate(value, scope);
    if (typeof v !== "string") throw new Error(`${name} is not a string`);
    if (v !== "") out[name] = v;
  }
  return out;
}
