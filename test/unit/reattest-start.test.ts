import { createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { HttpRequest } from "@azure/functions";
import type { DurableClient } from "durable-functions";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { operationsHttpHandler } from "../../functions/operations.js";
import { REATTEST_ORCHESTRATION } from "../../orchestrations/reattest.js";
import { startDecision, startReattest } from "../../orchestrations/reattest.start.js";
import { isInstanceNotFound, readInstance, TaskHubUnavailable } from "../../shared/durable.js";

/*
 * The starter and the status endpoint against durable-functions' real DurableClient, talking to a
 * scripted task hub on loopback: what the client throws for a 404, a 5xx or a dead endpoint is the
 * library's, not a guess.
 */

const require = createRequire(import.meta.url);
const { DurableClient: RealDurableClient } =
  require("durable-functions/lib/src/durableClient/DurableClient.js") as {
    DurableClient: new (data: unknown) => DurableClient;
  };

type Reply = { status: number; body?: unknown };
let replies: Array<(method: string, path: string, body: string) => Reply>;
const seen: Array<{ method: string; path: string; body: string }> = [];
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      const path = new URL(req.url ?? "/", "http://x").pathname;
      seen.push({ method: req.method ?? "", path, body });
      const next = replies.shift();
      const reply = next ? next(req.method ?? "", path, body) : { status: 599 };
      res.writeHead(reply.status, { "content-type": "application/json" });
      res.end(reply.body === undefined ? "" : JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});
beforeEach(() => {
  replies = [];
  seen.length = 0;
});

function client(rpcBaseUrl = `${base}/durabletask/`): DurableClient {
  const hooks = `${base}/runtime/webhooks/durabletask`;
  return new RealDurableClient({
    taskHubName: "hub",
    creationUrls: { createNewInstancePostUri: `${hooks}/orchestrators/{functionName}[/{instanceId}]` },
    managementUrls: {
      id: "INSTANCEID",
      statusQueryGetUri: `${hooks}/instances/INSTANCEID`,
      sendEventPostUri: `${hooks}/instances/INSTANCEID/raiseEvent/{eventName}`,
      terminatePostUri: `${hooks}/instances/INSTANCEID/terminate?reason={text}`,
      rewindPostUri: `${hooks}/instances/INSTANCEID/rewind?reason={text}`,
      purgeHistoryDeleteUri: `${hooks}/instances/INSTANCEID`,
      restartPostUri: `${hooks}/instances/INSTANCEID/restart`,
      suspendPostUri: `${hooks}/instances/INSTANCEID/suspend?reason={text}`,
      resumePostUri: `${hooks}/instances/INSTANCEID/resume?reason={text}`,
    },
    baseUrl: hooks,
    requiredQueryStringParameters: "",
    rpcBaseUrl,
  });
}

const statusBody = (runtimeStatus: string, lastUpdatedTime: string, output: unknown = null) => ({
  name: REATTEST_ORCHESTRATION,
  instanceId: "reattest-budget",
  runtimeStatus,
  input: null,
  customStatus: null,
  output,
  createdTime: "2026-12-01T20:00:00Z",
  lastUpdatedTime,
});
const notFound = (): Reply => ({ status: 404 });
const storageDown = (): Reply => ({
  status: 500,
  body: {
    Message: "Something went wrong while processing your request",
    ExceptionMessage: "503 Server Busy",
  },
});
const accepted = (): Reply => ({ status: 202, body: { id: "reattest-budget" } });
const policy = { cooldownSeconds: 900, timing: { revisionTimeoutSeconds: 700, verifyTimeoutSeconds: 200 } };
const now = Date.parse("2026-12-01T20:10:00Z");

describe("reading an instance", () => {
  it("reads the client's 404 as not found, and nothing else", async () => {
    replies = [notFound];
    await expect(readInstance(client(), "x")).resolves.toBeUndefined();
    for (const reply of [
      storageDown,
      () => ({ status: 503 }),
      () => ({ status: 502, body: "bad gateway" }),
    ]) {
      replies = [reply];
      await expect(readInstance(client(), "x")).rejects.toBeInstanceOf(TaskHubUnavailable);
    }
    // Nothing listening at all.
    await expect(readInstance(client("http://127.0.0.1:1/durabletask/"), "x")).rejects.toBeInstanceOf(
      TaskHubUnavailable,
    );
  });

  it.each([
    [new Error("DurableClient error: Durable Functions extension replied with HTTP 404 response. x"), true],
    [new Error("The operation failed with an unexpected status code: 500. Details: {}"), false],
    [new Error("connect ECONNREFUSED 127.0.0.1:1"), false],
    ["HTTP 404 response", false],
  ])("isInstanceNotFound(%s) is %s", (err, expected) => {
    expect(isInstanceNotFound(err)).toBe(expected);
  });
});

describe("startDecision", () => {
  const finishedAt = (secondsAgo: number) => new Date(now - secondsAgo * 1000).toISOString();
  it.each([
    ["no instance", undefined, false, "start"],
    ["running", { runtimeStatus: "Running", lastUpdatedTime: finishedAt(5000) }, true, "running"],
    ["pending", { runtimeStatus: "Pending", lastUpdatedTime: finishedAt(0) }, false, "running"],
    ["suspended", { runtimeStatus: "Suspended", lastUpdatedTime: finishedAt(0) }, false, "running"],
    [
      "finished within the cooldown",
      { runtimeStatus: "Completed", lastUpdatedTime: finishedAt(60) },
      false,
      "coolingDown",
    ],
    [
      "finished within the cooldown, forced",
      { runtimeStatus: "Completed", lastUpdatedTime: finishedAt(60) },
      true,
      "start",
    ],
    ["failed long ago", { runtimeStatus: "Failed", lastUpdatedTime: finishedAt(901) }, false, "start"],
  ] as const)("%s -> %s", (_, existing, force, expected) => {
    const d = startDecision(existing, { cooldownSeconds: 900, force }, now);
    expect(d.start ? "start" : d.outcome).toBe(expected);
  });
});

describe("startReattest", () => {
  it("starts when there is no previous run, passing the timeouts from settings in the input", async () => {
    replies = [notFound, accepted];
    const out = await startReattest(client(), { app: "budget", trigger: "http" }, { ...policy, now });
    expect(out).toEqual({ kind: "started", instanceId: "reattest-budget" });
    expect(seen[1]).toMatchObject({
      method: "POST",
      path: `/durabletask/orchestrators/${REATTEST_ORCHESTRATION}/reattest-budget`,
    });
    expect(JSON.parse(seen[1]!.body)).toEqual({
      app: "budget",
      trigger: "http",
      timing: { revisionTimeoutSeconds: 700, verifyTimeoutSeconds: 200 },
    });
  });

  it("does not read a task hub outage as 'no previous run': nothing starts, the caller learns why", async () => {
    replies = [storageDown];
    const err = await startReattest(client(), { app: "budget", trigger: "alert" }, { ...policy, now }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TaskHubUnavailable);
    expect((err as Error).message).toMatch(/did not answer while reading instance reattest-budget: .*500/);
    expect(seen.filter((r) => r.method === "POST")).toHaveLength(0);
  });

  it("keeps the cooldown: a run that finished a minute ago is reported, not repeated", async () => {
    replies = [
      () => ({
        status: 200,
        body: statusBody("Completed", "2026-12-01T20:09:00Z", { outcome: "succeeded" }),
      }),
    ];
    const out = await startReattest(client(), { app: "budget", trigger: "alert" }, { ...policy, now });
    expect(out).toEqual({
      kind: "coolingDown",
      instanceId: "reattest-budget",
      lastRun: "2026-12-01T20:09:00.000Z",
      outcome: "succeeded",
    });
  });

  it("reports the run that won the race when the task hub refuses a running id", async () => {
    replies = [
      notFound,
      () => ({
        status: 500,
        body: { ExceptionType: "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException" },
      }),
      () => ({ status: 202, body: statusBody("Running", "2026-12-01T20:09:59Z") }),
    ];
    const out = await startReattest(client(), { app: "budget", trigger: "http" }, { ...policy, now });
    expect(out).toEqual({ kind: "running", instanceId: "reattest-budget" });
  });

  it("calls a failed start with no running instance an outage", async () => {
    replies = [notFound, storageDown, notFound];
    await expect(
      startReattest(client(), { app: "budget", trigger: "http" }, { ...policy, now }),
    ).rejects.toBeInstanceOf(TaskHubUnavailable);
  });
});

describe("GET /api/operations/{id}", () => {
  const call = (c: DurableClient) =>
    operationsHttpHandler()(
      new HttpRequest({
        method: "GET",
        url: "http://localhost/api/operations/reattest-budget",
        params: { id: "reattest-budget" },
      }),
      c,
    );

  it("is 404 only when the task hub says there is no such instance (and 200 for a failed one)", async () => {
    replies = [notFound];
    expect((await call(client())).status).toBe(404);
    replies = [
      () => ({
        status: 200,
        body: statusBody("Failed", "2026-12-01T20:09:00Z", "Orchestrator function 'reattest' failed: x"),
      }),
    ];
    expect((await call(client())).status).toBe(200);
  });

  it("is 503 with the reason and Retry-After when the task hub is down", async () => {
    replies = [storageDown];
    const res = await call(client());
    expect(res.status).toBe(503);
    expect((res.headers as Record<string, string>)["retry-after"]).toBe("30");
    expect((res.jsonBody as { error: string }).error).toMatch(/durable task hub did not answer/);
  });
});
