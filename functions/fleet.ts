import type { HttpRequest, HttpResponseInit } from "@azure/functions";
import type { DurableClient } from "durable-functions";
import { z } from "zod";
import type { FleetReader } from "../shared/fleet/reader.js";
import { type BundleSide, buildFleetView, type FleetView } from "../shared/fleet/view.js";
import { redact } from "../shared/logging.js";
import { type OperationSummary, summarizeOperation } from "../shared/operations/summary.js";
import { parseAppName } from "../shared/spiffe/index.js";
import { json, problem } from "./http.js";

/*
 * GET /api/fleet and GET /api/fleet/{app}. Each source is read on its own: one that does not answer
 * (Key Vault, the server, the task hub) leaves its part empty and is named in server.errors, so
 * the page still shows what is known instead of a 500.
 */

export interface FleetDeps {
  cooldownSeconds: number;
  listApps(): Promise<{ managed: string[]; skipped: Array<{ name: string; reason: string }> }>;
  reader: FleetReader;
  readBundle(): Promise<{ server: BundleSide | null; vault: BundleSide | null; match: boolean | null }>;
  /** The admin SVID's expiry, once its rotation exists (null until then). */
  readAdminSvidExpiry?(): Promise<string | null>;
  now?: () => number;
}

/** Operations of the last week are enough to show each app's latest run. */
const OPERATIONS_LOOKBACK_MS = 7 * 24 * 3600_000;

const firstLine = (err: unknown) => ((err as Error)?.message ?? String(err)).split("\n")[0] ?? "";

async function gather(
  deps: FleetDeps,
  client: DurableClient,
): Promise<{ view: FleetView; operations: OperationSummary[] }> {
  const now = (deps.now ?? Date.now)();
  const [apps, rows, summary, ops, bundle, admin] = await Promise.allSettled([
    deps.listApps(),
    deps.reader.rows(),
    deps.reader.summary(),
    client.getStatusBy({ createdTimeFrom: new Date(now - OPERATIONS_LOOKBACK_MS) }),
    deps.readBundle(),
    deps.readAdminSvidExpiry ? deps.readAdminSvidExpiry() : Promise.resolve(null),
  ]);
  const errors: string[] = [];
  const value = <T>(r: PromiseSettledResult<T>, what: string, fallback: T): T => {
    if (r.status === "fulfilled") return r.value;
    errors.push(`${what}: ${firstLine(r.reason)}`);
    return fallback;
  };
  const fleetRows = value(rows, "fleet table", []);
  const listed = value(apps, "app discovery", undefined);
  const operations = value(ops, "task hub", []).map(summarizeOperation);
  const view = buildFleetView({
    now,
    cooldownSeconds: deps.cooldownSeconds,
    // When discovery fails, the sweep's rows still name the apps it last saw.
    managed: listed?.managed ?? fleetRows.map((r) => r.app),
    skipped: listed?.skipped ?? [],
    rows: fleetRows,
    summary: value(summary, "sweep summary", undefined),
    operations,
    bundle: value(bundle, "trust bundle", { server: null, vault: null, match: null }),
    adminSvidExpiresAt: value(admin, "admin SVID", null),
  });
  view.server.errors.push(...errors);
  return { view, operations };
}

export function fleetHttpHandler(deps: FleetDeps) {
  return async (request: HttpRequest, client: DurableClient): Promise<HttpResponseInit> => {
    // The fleet view takes no parameters; a misspelt one (a filter that does not exist) says so.
    const unknown = [...new Set(new URL(request.url).searchParams.keys())].filter((k) => k !== "code");
    if (unknown.length > 0) {
      return problem(400, `Unknown query parameter(s): ${unknown.join(", ")}; GET /api/fleet takes none.`);
    }
    return json(200, redact((await gather(deps, client)).view));
  };
}

const appQuerySchema = z
  .object({
    code: z.string().optional(),
    limit: z.coerce
      .number("a whole number 1-100")
      .int("a whole number 1-100")
      .min(1, "a whole number 1-100")
      .max(100, "a whole number 1-100")
      .default(20),
    before: z
      .string()
      .regex(/^[0-9TZ:.-]{20,30}_[0-9a-f]{16}$/, "a cursor this API returned (history.next)")
      .optional(),
  })
  .strict();

export function fleetAppHttpHandler(deps: FleetDeps) {
  return async (request: HttpRequest, client: DurableClient): Promise<HttpResponseInit> => {
    let app: string;
    try {
      app = parseAppName(request.params.app ?? "");
    } catch (err) {
      return problem(400, (err as Error).message);
    }
    const query = appQuerySchema.safeParse(Object.fromEntries(new URL(request.url).searchParams));
    if (!query.success) {
      const detail = query.error.issues
        .map((i) =>
          i.code === "unrecognized_keys"
            ? `unknown parameter(s) ${i.keys.join(", ")} (known: limit, before)`
            : `${i.path.join(".")}: ${i.message}`,
        )
        .join("; ");
      return problem(400, `Invalid query: ${detail}.`);
    }
    const { view, operations } = await gather(deps, client);
    const found = view.apps.find((a) => a.app === app);
    if (!found) {
      return problem(
        404,
        `No app "${app}" in the fleet: it is neither managed nor skipped (tag it to manage it).`,
      );
    }
    let history: Awaited<ReturnType<FleetReader["history"]>> | { error: string };
    try {
      history = await deps.reader.history(app, query.data.limit, query.data.before);
    } catch (err) {
      history = { error: `ledger: ${firstLine(err)}` };
    }
    // The sweep's row names no agent; the ledger's newest successful run does.
    const agentSha256 =
      found.agentSha256 ??
      ("error" in history
        ? null
        : (history.entries.find((h) => h.outcome === "succeeded" && h.newAgentSha256)?.newAgentSha256 ??
          null));
    return json(
      200,
      redact({
        ...found,
        agentSha256,
        server: view.server,
        operations: operations.filter((o) => o.app === app),
        history: "error" in history ? [] : history.entries,
        historyNext: "error" in history ? null : history.next,
        ...("error" in history ? { historyError: history.error } : {}),
      }),
    );
  };
}
