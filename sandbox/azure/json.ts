/** JSON values as they arrive over the wire, and the few helpers the simulator needs on them. */
export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

export function isObject(x: unknown): x is JsonObject {
  return x !== null && typeof x === "object" && !Array.isArray(x);
}

export function asObject(x: unknown): JsonObject | undefined {
  return isObject(x) ? x : undefined;
}

export function asArray(x: unknown): Json[] | undefined {
  return Array.isArray(x) ? (x as Json[]) : undefined;
}

export function asString(x: unknown): string | undefined {
  return typeof x === "string" ? x : undefined;
}

export function clone<T>(x: T): T {
  return structuredClone(x);
}

/** JSON text with object keys sorted: equal values give equal text. */
export function canonicalJson(x: unknown): string {
  return JSON.stringify(x, (_key, value: unknown) => {
    if (isObject(value)) {
      return Object.fromEntries(
        Object.keys(value)
          .sort()
          .map((k) => [k, value[k]]),
      );
    }
    return value;
  });
}

/** RFC 7386 JSON merge patch: objects merge recursively, null deletes, arrays and scalars replace. */
export function mergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const out: JsonObject = isObject(target) ? clone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}
