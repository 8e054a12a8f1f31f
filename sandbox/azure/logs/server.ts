/**
 * The Log Analytics query API (v1) over HTTPS, as @azure/monitor-query-logs calls it:
 * POST /v1/workspaces/{id}/query {query, timespan} (GET with ?query= too) and POST /v1/$batch.
 * Answers {tables:[{name, columns:[{name,type}], rows}]}; a truncated result is 200 plus
 * error.code PartialError; bad KQL is 400 BadArgumentError whose message says what is wrong.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { SANDBOX_TOKEN_PREFIX } from "../credential.js";
import { bearerToken, type RunningServer, type ServerTls, sendJson, startHttpsServer } from "./https.js";
import { KqlError } from "./kql/errors.js";
import { parseIsoDuration, type Table, toWire } from "./kql/values.js";
import type { LogStore, TimeRange } from "./store.js";

export interface LogsApiOptions {
  store: LogStore;
  tls: ServerTls;
  port?: number;
  /** Which bearer tokens to accept; default: the sandbox credential's tokens. */
  acceptToken?: (token: string) => boolean;
  /** Rows per result before it is cut with a PartialError (Azure's limit is 500,000). */
  maxRows?: number;
}

export interface LogsApi extends RunningServer {
  /** What LogsQueryClient takes as `endpoint`: `<url>/v1`. */
  endpoint: string;
  workspaceId: string;
  /** The next `count` queries fail with `status` (e.g. 429, 503) before running. */
  injectFault(fault: { status: number; code?: string; count?: number; retryAfterSeconds?: number }): void;
  /**
   * Fault: results longer than `rows` are cut and answered as PartialError (HTTP 200, partial
   * rows), as Log Analytics does past its record limit; a small limit makes any query partial.
   */
  setMaxRows(rows: number): void;
  /** Queries answered so far (including failed ones). */
  readonly queries: number;
}

export interface ApiError {
  status: number;
  code: string;
  message: string;
  innerCode?: string;
}

/** A request the API refuses, with its status and error code. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function errorBody(e: ApiError): unknown {
  return {
    error: {
      code: e.code,
      message: e.message,
      ...(e.innerCode ? { innererror: { code: e.innerCode, message: e.message } } : {}),
    },
  };
}

/** The query API's timespan: ISO 8601 duration, start/end, start/duration or duration/end. */
export function parseTimespanParam(timespan: string | undefined, now: number): TimeRange | undefined {
  if (timespan === undefined || timespan === "") return undefined;
  const bad = (): never => {
    throw new ApiFailure(400, "BadArgumentError", `invalid timespan '${timespan}'`);
  };
  const parts = timespan.split("/");
  if (parts.length === 1) {
    const d = parseIsoDuration(timespan) ?? bad();
    return { start: now - d, end: now };
  }
  if (parts.length !== 2) return bad();
  const [a = "", b = ""] = parts;
  const ta = Date.parse(a);
  const tb = Date.parse(b);
  if (!Number.isNaN(ta) && !Number.isNaN(tb)) return { start: ta, end: tb };
  if (!Number.isNaN(ta)) return { start: ta, end: ta + (parseIsoDuration(b) ?? bad()) };
  if (!Number.isNaN(tb)) return { start: tb - (parseIsoDuration(a) ?? bad()), end: tb };
  return bad();
}

export function tableToWire(table: Table, name = "PrimaryResult"): unknown {
  return {
    name,
    columns: table.columns.map((c) => ({ name: c.name, type: c.type })),
    rows: table.rows.map((row) => row.map((v, i) => toWire(v, table.columns[i]?.type ?? "dynamic"))),
  };
}

/** Runs one query as the API does; returns status and body. */
export function answerQuery(
  store: LogStore,
  body: { query?: unknown; timespan?: unknown },
  maxRows: number,
): { status: number; body: unknown } {
  try {
    if (typeof body.query !== "string" || body.query.trim() === "") {
      throw new ApiFailure(400, "BadArgumentError", "the request has no query");
    }
    const now = store.clock.now();
    const range = parseTimespanParam(typeof body.timespan === "string" ? body.timespan : undefined, now);
    const result = store.query(body.query, range, { now });
    if (result.rows.length > maxRows) {
      const cut = { columns: result.columns, rows: result.rows.slice(0, maxRows) };
      return {
        status: 200,
        body: {
          tables: [tableToWire(cut)],
          error: {
            code: "PartialError",
            message: "There were some errors when processing your query.",
            details: [
              {
                code: "EngineError",
                message: `Query result set has exceeded the internal record count limit ${maxRows} (E_QUERY_RESULT_SET_TOO_LARGE)`,
              },
            ],
          },
        },
      };
    }
    return { status: 200, body: { tables: [tableToWire(result)] } };
  } catch (err) {
    if (err instanceof KqlError) {
      const e: ApiError = {
        status: 400,
        code: "BadArgumentError",
        message: err.message,
        innerCode: err.kind,
      };
      return { status: 400, body: errorBody(e) };
    }
    if (err instanceof ApiFailure) return { status: err.status, body: errorBody(err) };
    throw err;
  }
}

function parseBody(body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  try {
    const parsed: unknown = JSON.parse(body.toString("utf8"));
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed))
      return parsed as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new ApiFailure(400, "BadArgumentError", "the request body is not a JSON object");
}

export async function startLogsApi(options: LogsApiOptions): Promise<LogsApi> {
  const { store } = options;
  const accept = options.acceptToken ?? ((t: string) => t.startsWith(SANDBOX_TOKEN_PREFIX));
  let maxRows = options.maxRows ?? 500_000;
  const faults: { status: number; code: string; count: number; retryAfterSeconds?: number }[] = [];
  let queries = 0;

  const handler = (req: IncomingMessage, res: ServerResponse, raw: Buffer) => {
    const url = new URL(req.url ?? "/", "https://localhost");
    const token = bearerToken(req);
    if (!token) {
      sendJson(
        res,
        401,
        errorBody({
          status: 401,
          code: "AuthorizationRequiredError",
          message: "Valid authentication was not provided",
        }),
        {
          "www-authenticate":
            'Bearer authorization_uri="https://login.microsoftonline.com/common", resource="https://api.loganalytics.io"',
        },
      );
      return;
    }
    if (!accept(token)) {
      sendJson(
        res,
        403,
        errorBody({
          status: 403,
          code: "InvalidTokenError",
          message: "The provided authentication is not valid for this resource",
        }),
      );
      return;
    }
    const fault = faults[0];
    if (fault) {
      fault.count -= 1;
      if (fault.count <= 0) faults.shift();
      queries += 1;
      const headers: Record<string, string> =
        fault.retryAfterSeconds !== undefined ? { "retry-after": String(fault.retryAfterSeconds) } : {};
      sendJson(
        res,
        fault.status,
        errorBody({ status: fault.status, code: fault.code, message: "injected fault" }),
        headers,
      );
      return;
    }
    try {
      const query = /^\/v1\/workspaces\/([^/]+)\/query$/.exec(url.pathname);
      if (query) {
        const workspace = decodeURIComponent(query[1] ?? "");
        if (workspace !== store.workspaceId) {
          sendJson(
            res,
            404,
            errorBody({
              status: 404,
              code: "WorkspaceNotFoundError",
              message: `Workspace '${workspace}' could not be found`,
            }),
          );
          return;
        }
        const body =
          req.method === "GET"
            ? {
                query: url.searchParams.get("query") ?? undefined,
                timespan: url.searchParams.get("timespan") ?? undefined,
              }
            : parseBody(raw);
        queries += 1;
        const answer = answerQuery(store, body, maxRows);
        sendJson(res, answer.status, answer.body);
        return;
      }
      if (url.pathname === "/v1/$batch" && req.method === "POST") {
        const { requests } = parseBody(raw) as { requests?: unknown };
        if (!Array.isArray(requests))
          throw new ApiFailure(400, "BadArgumentError", "requests must be an array");
        const responses = requests.map(
          (r: { id?: unknown; workspace?: unknown; body?: { query?: unknown; timespan?: unknown } }) => {
            queries += 1;
            if (r.workspace !== store.workspaceId) {
              return {
                id: r.id,
                status: 404,
                body: errorBody({
                  status: 404,
                  code: "WorkspaceNotFoundError",
                  message: `Workspace '${String(r.workspace)}' could not be found`,
                }),
              };
            }
            const answer = answerQuery(store, r.body ?? {}, maxRows);
            return { id: r.id, status: answer.status, body: answer.body };
          },
        );
        sendJson(res, 200, { responses });
        return;
      }
      sendJson(
        res,
        404,
        errorBody({
          status: 404,
          code: "PathNotFoundError",
          message: `The requested path does not exist: ${url.pathname}`,
        }),
      );
    } catch (err) {
      if (err instanceof ApiFailure) {
        sendJson(res, err.status, errorBody(err));
        return;
      }
      throw err;
    }
  };

  const server = await startHttpsServer(options.tls, handler, options.port);
  return {
    ...server,
    endpoint: `${server.url}/v1`,
    workspaceId: store.workspaceId,
    setMaxRows(rows) {
      maxRows = rows;
    },
    injectFault(fault) {
      faults.push({
        status: fault.status,
        code: fault.code ?? "ServiceUnavailable",
        count: fault.count ?? 1,
        retryAfterSeconds: fault.retryAfterSeconds,
      });
    },
    get queries() {
      return queries;
    },
  };
}
