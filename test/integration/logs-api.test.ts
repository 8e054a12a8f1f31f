/** The Logs query API's edges, without SPIRE: auth, routes, batch, GET, timespans, injected faults. */
import { request } from "node:https";
import { LogsQueryClient, LogsQueryResultStatus } from "@azure/monitor-query-logs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SandboxTokenCredential } from "../../sandbox/azure/credential.js";
import { type LogsApi, parseTimespanParam, startLogsApi } from "../../sandbox/azure/logs/server.js";
import { LogStore } from "../../sandbox/azure/logs/store.js";
import { type LoopbackTls, makeLoopbackTls } from "../../sandbox/azure/tls.js";

let tls: LoopbackTls;
let api: LogsApi;
const store = new LogStore();

function raw(
  method: string,
  path: string,
  token: string | undefined,
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, api.url),
      {
        method,
        ca: tls.caPem,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(text
            ? { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)) }
            : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(Buffer.concat(chunks).toString() || "null"),
          }),
        );
      },
    );
    req.on("error", reject);
    req.end(text);
  });
}

beforeAll(async () => {
  tls = await makeLoopbackTls();
  api = await startLogsApi({ store, tls });
  store.ingestSyslog('{"level":"info","msg":"hello","time":"2020-01-01T00:00:00Z"}');
  store.ingestSyslog('{"level":"error","msg":"now"}');
});

afterAll(async () => {
  await api?.close();
});

describe("Logs query API", () => {
  it("parses every timespan form the SDK sends", () => {
    const now = Date.parse("2026-01-01T12:00:00Z");
    expect(parseTimespanParam("PT1H", now)).toEqual({ start: now - 3_600_000, end: now });
    expect(parseTimespanParam("P1DT30M", now)).toEqual({ start: now - 88_200_000, end: now });
    expect(parseTimespanParam("2026-01-01T00:00:00.000Z/2026-01-01T01:00:00.000Z", now)).toEqual({
      start: Date.parse("2026-01-01T00:00:00Z"),
      end: Date.parse("2026-01-01T01:00:00Z"),
    });
    expect(parseTimespanParam("2026-01-01T00:00:00Z/PT2H", now)?.end).toBe(
      Date.parse("2026-01-01T02:00:00Z"),
    );
    expect(parseTimespanParam("PT1H/2026-01-01T02:00:00Z", now)?.start).toBe(
      Date.parse("2026-01-01T01:00:00Z"),
    );
    expect(() => parseTimespanParam("an hour", now)).toThrow(/invalid timespan/);
  });

  it("answers 401 without a token, 403 for a foreign one, 404 for an unknown workspace or path", async () => {
    const q = { query: "Syslog | count" };
    expect((await raw("POST", `/v1/workspaces/${api.workspaceId}/query`, undefined, q)).status).toBe(401);
    expect((await raw("POST", `/v1/workspaces/${api.workspaceId}/query`, "eyJ.real.token", q)).status).toBe(
      403,
    );
    const unknown = await raw("POST", "/v1/workspaces/nope/query", "sandbox-token.x", q);
    expect(unknown).toMatchObject({ status: 404, body: { error: { code: "WorkspaceNotFoundError" } } });
    expect((await raw("GET", "/v2/other", "sandbox-token.x")).status).toBe(404);
  });

  it("serves GET with ?query= and applies the timespan (no timespan: no time filter)", async () => {
    const all = await raw(
      "GET",
      `/v1/workspaces/${api.workspaceId}/query?query=${encodeURIComponent("Syslog | count")}`,
      "sandbox-token.x",
    );
    expect(all.body).toMatchObject({
      tables: [{ name: "PrimaryResult", columns: [{ name: "Count", type: "long" }], rows: [[2]] }],
    });
    const recent = await raw(
      "GET",
      `/v1/workspaces/${api.workspaceId}/query?query=${encodeURIComponent("Syslog | count")}&timespan=PT1H`,
      "sandbox-token.x",
    );
    expect(recent.body).toMatchObject({ tables: [{ rows: [[1]] }] });
  });

  it("runs a batch through LogsQueryClient.queryBatch, with a bad query failing alone", async () => {
    const client = new LogsQueryClient(new SandboxTokenCredential(), {
      endpoint: api.endpoint,
      credentials: { scopes: ["https://api.loganalytics.io/.default"] },
      tlsOptions: { ca: tls.caPem },
    });
    const results = await client.queryBatch([
      {
        workspaceId: api.workspaceId,
        query: "Syslog | summarize n = count() by SeverityLevel | order by SeverityLevel asc",
        timespan: { duration: "P10000D" },
      },
      {
        workspaceId: api.workspaceId,
        query: "Syslog | evaluate bag_unpack(x)",
        timespan: { duration: "PT1H" },
      },
    ]);
    expect(results[0]).toMatchObject({ status: LogsQueryResultStatus.Success });
    if (results[0]?.status === LogsQueryResultStatus.Success)
      expect(results[0].tables[0]?.rows).toEqual([
        ["err", 1],
        ["info", 1],
      ]);
    expect(JSON.stringify(results[1])).toContain("'evaluate'");
  });

  it("an injected 503 is retried by the SDK", async () => {
    const client = new LogsQueryClient(new SandboxTokenCredential(), {
      endpoint: api.endpoint,
      credentials: { scopes: ["https://api.loganalytics.io/.default"] },
      tlsOptions: { ca: tls.caPem },
      retryOptions: { maxRetries: 3, retryDelayInMs: 10 },
    });
    api.injectFault({ status: 503, count: 2, retryAfterSeconds: 0 });
    const before = api.queries;
    const result = await client.queryWorkspace(api.workspaceId, "Syslog | count", { duration: "PT1H" });
    expect(result.status).toBe(LogsQueryResultStatus.Success);
    expect(api.queries - before).toBe(3);
  });
});
