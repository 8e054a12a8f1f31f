import type { HttpRequest, HttpResponseInit } from "@azure/functions";
import type { DurableClient } from "durable-functions";
import { z } from "zod";
import { unavailable } from "../shared/durable.js";
import { redact } from "../shared/logging.js";
import { decodeCursor, pageOperations } from "../shared/operations/page.js";
import { OPERATION_KINDS, summarizeOperation } from "../shared/operations/summary.js";
import { json, problem } from "./http.js";
import { unavailableResponse } from "./unavailable.js";

/*
 * GET /api/operations: running and recent operations of every kind. The task hub is asked only for
 * instances created within the lookback (bounded: at most 30 days), and a page holds at most 100.
 */

const MAX_LOOKBACK_HOURS = 720;

/** `code` is the Functions host's key parameter; every other parameter must be one of ours. */
const KNOWN = new Set(["code", "kind", "state", "app", "limit", "cursor", "sinceHours"]);

export const operationsQuerySchema = z
  .object({
    kind: z
      .string()
      .transform((s) => s.split(",").map((k) => k.trim()))
      .pipe(z.array(z.enum(OPERATION_KINDS, `one of ${OPERATION_KINDS.join(", ")}`)).min(1))
      .optional(),
    state: z.enum(["running", "finished", "all"], "running, finished or all").default("all"),
    app: z
      .string()
      .regex(/^[a-z][a-z0-9-]{0,30}[a-z0-9]$/, "a Container App name (lower-case letters, digits, -)")
      .optional(),
    limit: z.coerce
      .number("a whole number 1-100")
      .int("a whole number 1-100")
      .min(1, "a whole number 1-100")
      .max(100, "a whole number 1-100")
      .default(25),
    cursor: z
      .string()
      .transform((c, ctx) => {
        const key = decodeCursor(c);
        if (key === undefined) ctx.addIssue({ code: "custom", message: "not a cursor this API returned" });
        return key ?? "";
      })
      .optional(),
    sinceHours: z.coerce
      .number(`hours 1-${MAX_LOOKBACK_HOURS}`)
      .int(`hours 1-${MAX_LOOKBACK_HOURS}`)
      .min(1, `hours 1-${MAX_LOOKBACK_HOURS}`)
      .max(MAX_LOOKBACK_HOURS, `hours 1-${MAX_LOOKBACK_HOURS}`)
      .default(168),
  })
  .strict();

export type OperationsQuery = z.output<typeof operationsQuerySchema>;

/** The query, or a 400 naming every unknown or bad parameter. */
export function parseOperationsQuery(
  params: URLSearchParams,
): { ok: true; value: OperationsQuery } | { ok: false; response: HttpResponseInit } {
  const unknown = [...new Set(params.keys())].filter((k) => !KNOWN.has(k));
  if (unknown.length > 0) {
    return {
      ok: false,
      response: problem(
        400,
        `Unknown query parameter(s): ${unknown.join(", ")}; known: kind, state, app, limit, cursor, sinceHours.`,
      ),
    };
  }
  const raw: Record<string, string> = {};
  for (const [k, v] of params) if (k !== "code") raw[k] = v;
  const parsed = operationsQuerySchema.safeParse(raw);
  if (parsed.success) return { ok: true, value: parsed.data };
  const detail = parsed.error.issues.map((i) => `${i.path.join(".") || "query"}: ${i.message}`).join("; ");
  return { ok: false, response: problem(400, `Invalid query: ${detail}.`) };
}

export function operationsListHttpHandler(now: () => number = Date.now) {
  return async (request: HttpRequest, client: DurableClient): Promise<HttpResponseInit> => {
    const query = parseOperationsQuery(new URL(request.url).searchParams);
    if (!query.ok) return query.response;
    const q = query.value;
    let statuses: Awaited<ReturnType<DurableClient["getStatusBy"]>>;
    try {
      statuses = await client
        .getStatusBy({ createdTimeFrom: new Date(now() - q.sinceHours * 3600_000) })
        .catch((err) => {
          throw unavailable("listing operations", err);
        });
    } catch (err) {
      const outage = unavailableResponse(err);
      if (!outage) throw err;
      return outage;
    }
    const page = pageOperations(statuses.map(summarizeOperation), {
      kinds: q.kind,
      state: q.state,
      app: q.app,
      limit: q.limit,
      after: q.cursor,
    });
    return json(200, redact({ ...page, sinceHours: q.sinceHours }));
  };
}
