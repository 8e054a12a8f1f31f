/**
 * Route templates as the Functions host understands them (ASP.NET style):
 * `apps/{app}/reattest`, optional `{id?}`, constrained `{id:int}`, catch-all `{*rest}`.
 */
export interface CompiledRoute {
  template: string;
  match(path: string): Record<string, string> | undefined;
}

const CONSTRAINTS: Record<string, RegExp> = {
  int: /^-?\d+$/,
  long: /^-?\d+$/,
  alpha: /^[a-z]+$/i,
  bool: /^(true|false)$/i,
  guid: /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i,
};

interface Segment {
  literal?: string;
  param?: string;
  optional?: boolean;
  catchAll?: boolean;
  constraint?: RegExp;
}

function parseSegment(raw: string, template: string): Segment {
  const m = /^\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?(\?)?\}$/.exec(raw);
  if (!m) {
    if (raw.includes("{") || raw.includes("}")) {
      throw new Error(`Route template "${template}" has an unsupported segment "${raw}"`);
    }
    return { literal: raw.toLowerCase() };
  }
  const [, star, name, constraintName, optional] = m;
  let constraint: RegExp | undefined;
  if (constraintName) {
    constraint = CONSTRAINTS[constraintName];
    if (!constraint)
      throw new Error(`Route template "${template}" uses unknown constraint "${constraintName}"`);
  }
  return { param: name, optional: optional === "?", catchAll: star === "*", constraint };
}

export function compileRoute(template: string): CompiledRoute {
  const trimmed = template.replace(/^\/+|\/+$/g, "");
  const segments = trimmed === "" ? [] : trimmed.split("/").map((s) => parseSegment(s, template));
  return {
    template: trimmed,
    match(path: string) {
      const parts = path
        .replace(/^\/+|\/+$/g, "")
        .split("/")
        .filter((p) => p !== "");
      const params: Record<string, string> = {};
      for (let i = 0; i < segments.length; i++) {
        const seg = segments[i]!;
        if (seg.catchAll && seg.param) {
          const rest = parts.slice(i).map(decodeURIComponent).join("/");
          if (rest === "" && !seg.optional) return undefined;
          if (rest !== "") params[seg.param] = rest;
          return params;
        }
        const part = parts[i];
        if (part === undefined) {
          if (seg.optional) continue;
          return undefined;
        }
        if (seg.literal !== undefined) {
          if (part.toLowerCase() !== seg.literal) return undefined;
          continue;
        }
        let value: string;
        try {
          value = decodeURIComponent(part);
        } catch {
          return undefined;
        }
        if (seg.constraint && !seg.constraint.test(value)) return undefined;
        params[seg.param!] = value;
      }
      return parts.length <= segments.length ? params : undefined;
    },
  };
}
