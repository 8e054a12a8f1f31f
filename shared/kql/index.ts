/**
 * The product's KQL, one query per `.kql` file in this folder: loaded by the app, by infra's alert
 * rules and by the sandbox's query engine, and checked by Microsoft's Kusto parser in the tests.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";

export const KQL_QUERIES = [
  "workload-svid-signed",
  "agent-attestation-failures",
  "spire-server-log-level",
  "health-sweep",
] as const;

export type KqlQueryName = (typeof KQL_QUERIES)[number];

/**
 * The folder holding the `.kql` files: next to this module when run from source, or the source
 * folder when run from the build output (tsc does not copy non-TS files into dist/).
 */
export function kqlDirectory(): string {
  const candidates = [import.meta.dirname, resolve(import.meta.dirname, "../../../shared/kql")];
  const dir = candidates.find((d) => existsSync(join(d, `${KQL_QUERIES[0]}.kql`)));
  if (dir === undefined) throw new Error(`no .kql files found in ${candidates.join(" or ")}`);
  return dir;
}

const cache = new Map<string, string>();

/** The text of a product query. */
export function loadKql(name: KqlQueryName): string {
  const cached = cache.get(name);
  if (cached !== undefined) return cached;
  const text = readFileSync(join(kqlDirectory(), `${name}.kql`), "utf8");
  cache.set(name, text);
  return text;
}

/** Every `.kql` file in the folder (name without extension), including any not yet in KQL_QUERIES. */
export function listKqlFiles(): string[] {
  return readdirSync(kqlDirectory())
    .filter((f) => f.endsWith(".kql"))
    .map((f) => f.slice(0, -".kql".length))
    .sort();
}
