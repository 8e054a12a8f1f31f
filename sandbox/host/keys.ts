import { randomBytes, timingSafeEqual } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/**
 * Function keys, kept in a local JSON file the way `AzureWebJobsSecretStorageType=files` keeps
 * them for the real host: a master key, host-wide function keys, system keys (the durable task and
 * Event Grid extensions' webhooks, named `<extension>_extension` as the host's
 * ScriptWebHookProvider names them) and per-function keys. Generated on first start when absent;
 * a missing system key is added, as the host creates one on demand when its extension registers.
 */
export interface HostKeys {
  masterKey: string;
  functionKeys: Record<string, string>;
  systemKeys: Record<string, string>;
  functions: Record<string, Record<string, string>>;
}

export type AuthLevel = "anonymous" | "function" | "admin";

const newKey = () => randomBytes(30).toString("base64url");

export function loadOrCreateKeys(file: string): HostKeys {
  if (existsSync(file)) {
    const parsed = JSON.parse(readFileSync(file, "utf8")) as Partial<HostKeys>;
    if (typeof parsed.masterKey !== "string" || parsed.masterKey.length < 16) {
      throw new Error(`Keys file ${file} has no masterKey of at least 16 characters`);
    }
    const keys: HostKeys = {
      masterKey: parsed.masterKey,
      functionKeys: parsed.functionKeys ?? {},
      systemKeys: {
        durabletask_extension: newKey(),
        eventgrid_extension: newKey(),
        ...(parsed.systemKeys ?? {}),
      },
      functions: parsed.functions ?? {},
    };
    // Persist added system keys: whoever reads the file (tests, the sandbox) must see the key served.
    const had = Object.keys(parsed.systemKeys ?? {}).length;
    if (Object.keys(keys.systemKeys).length !== had)
      writeFileSync(file, `${JSON.stringify(keys, null, 2)}\n`);
    return keys;
  }
  const keys: HostKeys = {
    masterKey: newKey(),
    functionKeys: { default: newKey() },
    systemKeys: { durabletask_extension: newKey(), eventgrid_extension: newKey() },
    functions: {},
  };
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(keys, null, 2)}\n`, { mode: 0o600 });
  return keys;
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Which key, if any, a presented value is; admin level accepts only the master key. */
export function authorize(
  keys: HostKeys,
  level: AuthLevel,
  functionName: string,
  presented?: string,
): boolean {
  if (level === "anonymous") return true;
  if (!presented) return false;
  if (same(presented, keys.masterKey)) return true;
  if (level === "admin") return false;
  const candidates = [
    ...Object.values(keys.functionKeys),
    ...Object.values(keys.functions[functionName] ?? {}),
  ];
  return candidates.some((k) => same(presented, k));
}

export function authorizeSystem(keys: HostKeys, extension: string, presented?: string): boolean {
  if (!presented) return false;
  const sys = keys.systemKeys[extension];
  return same(presented, keys.masterKey) || (sys !== undefined && same(presented, sys));
}
