import { HttpRequest, InvocationContext } from "@azure/functions";
import type { LogsTable } from "@azure/monitor-query-logs";
import type { DurableClient } from "durable-functions";
import { describe, expect, it } from "vitest";
import { agentRef } from "../../activities/run.js";
import { sweepHttpHandler } from "../../functions/sweep.js";
import { HEALTH_SWEEP_INSTANCE_ID, HEALTH_SWEEP_ORCHESTRATION } from "../../orchestrations/healthSweep.js";
import { agentRefOf, readSweepFacts } from "../../shared/health/gather.js";

const TOKEN = "7b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d";
const AGENT = `spiffe://td/spire/agent/join_token/${TOKEN}`;

describe("the sweep's Logs facts", () => {
  const table = {
    name: "PrimaryResult",
    columnDescriptors: ["fact", "key", "last_at", "n", "detail"].map((name) => ({ name })),
    rows: [
      ["workload-signed", "spiffe://td/w/a", "2026-12-01T12:00:00Z", 3, ""],
      ["agent-renewed", AGENT, new Date("2026-12-01T11:59:00Z"), 2, ""],
      ["agent-failures", "a", "2026-12-01T11:58:00Z", 4, "a--r2"],
      ["server-log", "", "2026-12-01T12:00:01Z", 99, ""],
      ["workload-signed", "spiffe://td/w/b", "not a time", 1, ""],
    ],
  } as unknown as LogsTable;

  it("keys agents by the SHA-256 of their join token, as the activities name them, never by the ID", () => {
    const facts = readSweepFacts(table);
    expect([...facts.renewals.keys()]).toEqual([agentRef(AGENT)]);
    expect(agentRefOf(AGENT)).toBe(agentRef(AGENT));
    expect(JSON.stringify([...facts.renewals.keys()])).not.toContain(TOKEN);
  });

  it("reads signings, failures with their revision and the server's last line; drops rows without a time", () => {
    const facts = readSweepFacts(table);
    expect(facts.signings.get("spiffe://td/w/a")).toEqual({
      lastAt: new Date("2026-12-01T12:00:00Z"),
      count: 3,
    });
    expect(facts.signings.has("spiffe://td/w/b")).toBe(false);
    expect(facts.failures.get("a")).toMatchObject({ count: 4, revision: "a--r2" });
    expect(facts.serverLastLineAt).toEqual(new Date("2026-12-01T12:00:01Z"));
  });
});

describe("POST /api/sweep", () => {
  const config = {
    reattest: { revisionTimeoutSeconds: 600, verifyTimeoutSeconds: 300 },
    deploy: { attestSpacingMs: 1000 },
    sweep: { mode: "repair" as const, agentSvidTtlSeconds: 3600, logIngestionDelaySeconds: 300 },
  };
  function fakeClient() {
    const started: Array<{ name: string; options: unknown }> = [];
    const client = {
      getStatus: async () => {
        throw new Error("The operation failed: the task hub replied with HTTP 404 response");
      },
      startNew: async (name: string, options: unknown) => {
        started.push({ name, options });
        return HEALTH_SWEEP_INSTANCE_ID;
      },
      createCheckStatusResponse: () => ({ headers: new Headers({ location: "http://x/status" }) }),
      createHttpManagementPayload: (id: string) => ({ id }),
    } as unknown as DurableClient;
    return { client, started };
  }
  const request = (body: string) =>
    new HttpRequest({
      method: "POST",
      url: "http://localhost/api/sweep",
      body: { string: body },
      headers: { "content-type": "application/json" },
    });

  it.each([
    ['{"mode":"fix"}', /mode/],
    ['{"mode":"observe","extra":1}', /extra|Unrecognized/i],
    ["not json", /JSON/i],
  ])("%s → 400 naming the problem, nothing started", async (body, problem) => {
    const { client, started } = fakeClient();
    const res = await sweepHttpHandler(config)(request(body), client, new InvocationContext());
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.jsonBody ?? res.body)).toMatch(problem);
    expect(started).toEqual([]);
  });

  it.each([
    ['{"mode":"observe"}', "observe"],
    ["{}", "repair"],
  ])("%s starts the singleton in mode %s, settings passed in its input", async (body, mode) => {
    const { client, started } = fakeClient();
    const res = await sweepHttpHandler(config)(request(body), client, new InvocationContext());
    expect(res.status).toBe(202);
    expect(started).toHaveLength(1);
    expect(started[0]).toMatchObject({
      name: HEALTH_SWEEP_ORCHESTRATION,
      options: {
        instanceId: HEALTH_SWEEP_INSTANCE_ID,
        input: { mode, trigger: "http", paceSeconds: 1, reattestTiming: { revisionTimeoutSeconds: 600 } },
      },
    });
  });
});
