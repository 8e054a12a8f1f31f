import { createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { HttpRequest, InvocationContext } from "@azure/functions";
import type { DurableClient } from "durable-functions";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  bundleRotateHttpHandler,
  bundleStatusHttpHandler,
  bundleTimerHandler,
} from "../../functions/bundle.js";

/*
 * The bundle triggers against durable-functions' real DurableClient talking to a scripted task hub
 * on loopback, and the status answer with its reads stubbed.
 */

const require = createRequire(import.meta.url);
const { DurableClient: RealDurableClient } =
  require("durable-functions/lib/src/durableClient/DurableClient.js") as {
    DurableClient: new (data: unknown) => DurableClient;
  };

type Reply = { status: number; body?: unknown };
let replies: Array<() => Reply>;
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
      seen.push({ method: req.method ?? "", path: new URL(req.url ?? "/", "http://x").pathname, body });
      const reply = replies.shift()?.() ?? { status: 599 };
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

function client(): DurableClient {
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
    rpcBaseUrl: `${base}/durabletask/`,
  });
}

const running = (): Reply => ({
  status: 202,
  body: {
    name: "rotateBundle",
    instanceId: "rotate-bundle",
    runtimeStatus: "Running",
    input: null,
    customStatus: null,
    output: null,
    createdTime: "2026-12-01T20:00:00Z",
    lastUpdatedTime: "2026-12-01T20:00:01Z",
  },
});
const notFound = (): Reply => ({ status: 404 });
const started = (): Reply => ({ status: 202, body: { id: "rotate-bundle" } });
const storageDown = (): Reply => ({ status: 500, body: { ExceptionMessage: "503 Server Busy" } });

const post = (body?: string) =>
  bundleRotateHttpHandler()(
    new HttpRequest({
      method: "POST",
      url: "http://localhost/api/bundle/rotate",
      ...(body === undefined ? {} : { body: { string: body } }),
    }),
    client(),
    new InvocationContext({ functionName: "bundleRotate" }),
  );

describe("POST /api/bundle/rotate", () => {
  it("starts the singleton with the operator's reason and answers 202 with status URLs", async () => {
    replies = [notFound, started];
    const res = await post(JSON.stringify({ reason: "new VM" }));
    expect(res.status).toBe(202);
    expect(res.jsonBody).toMatchObject({ id: "rotate-bundle", alreadyRunning: false });
    expect((res.jsonBody as { statusQueryGetUri: string }).statusQueryGetUri).toContain("rotate-bundle");
    const start = seen.find((s) => s.method === "POST")!;
    expect(start.path).toBe("/durabletask/orchestrators/rotateBundle/rotate-bundle");
    expect(JSON.parse(start.body)).toEqual({ trigger: "http", reason: "new VM" });
  });

  it("accepts an empty body and names the run it joins when one is running", async () => {
    replies = [running];
    const res = await post();
    expect(res.status).toBe(202);
    expect(res.jsonBody).toMatchObject({ alreadyRunning: true });
    expect(seen.filter((s) => s.method === "POST")).toHaveLength(0);
  });

  it.each([
    ["not JSON", "{", /not valid JSON/],
    ["an unknown field", JSON.stringify({ force: true }), /Unrecognized key.*force|force/],
    ["a reason that is not a string", JSON.stringify({ reason: 5 }), /reason/],
    ["an empty reason", JSON.stringify({ reason: "" }), /reason is empty/],
    ["a reason over 500 characters", JSON.stringify({ reason: "x".repeat(501) }), /at most 500/],
  ])("refuses %s with a 400 naming it, starting nothing", async (_what, body, error) => {
    const res = await post(body);
    expect(res.status).toBe(400);
    expect((res.jsonBody as { error: string }).error).toMatch(error);
    expect(seen).toHaveLength(0);
  });

  it("is 503 with Retry-After when the task hub cannot answer", async () => {
    replies = [storageDown];
    const res = await post();
    expect(res.status).toBe(503);
    expect((res.headers as Record<string, string>)["retry-after"]).toBe("30");
  });
});

describe("the rotation timer", () => {
  it("starts a check marked as the schedule's, and shrugs off a task hub outage", async () => {
    const ctx = new InvocationContext({ functionName: "bundleRotationTimer" });
    const timer = {
      isPastDue: false,
      schedule: { adjustForDST: true },
      scheduleStatus: { last: "", next: "", lastUpdated: "" },
    };
    replies = [notFound, started];
    await bundleTimerHandler()(timer, client(), ctx);
    expect(JSON.parse(seen.find((s) => s.method === "POST")!.body)).toEqual({
      trigger: "timer",
      reason: "schedule",
    });
    replies = [storageDown];
    await expect(bundleTimerHandler()(timer, client(), ctx)).resolves.toBeUndefined();
  });
});

describe("GET /api/bundle", () => {
  const fp = (n: number) => n.toString(16).padStart(64, "0");
  const serverSide = {
    fingerprints: [fp(1), fp(2)],
    roots: [],
    sequence: 3,
    earliestExpiry: "2027-01-01T00:00:00.000Z",
    latestExpiry: "2027-01-02T00:00:00.000Z",
  };
  const get = (deps: Partial<Parameters<typeof bundleStatusHttpHandler>[0]>) =>
    bundleStatusHttpHandler({
      secretName: "spire-trust-bundle",
      readServer: async () => serverSide,
      readVault: async () => ({ version: "v1", fingerprints: [fp(2), fp(1)].sort(), source: "tags" }),
      readLastRotation: async () => ({ lastRunAt: "2026-12-01T20:00:00Z", lastRunReason: "schedule" }),
      ...deps,
    })(new HttpRequest({ method: "GET", url: "http://localhost/api/bundle" }), new InvocationContext());

  it("shows both sides, whether they match, and the last rotation", async () => {
    const res = await get({});
    expect(res.status).toBe(200);
    expect(res.jsonBody).toMatchObject({
      secretName: "spire-trust-bundle",
      vault: { version: "v1" },
      server: { sequence: 3 },
      match: true,
      adminSvid: null,
      lastRotation: { lastRunReason: "schedule" },
    });
  });

  it("says no match when Key Vault lacks a root, and when there is no version", async () => {
    expect(
      (await get({ readVault: async () => ({ version: "v1", fingerprints: [fp(1)], source: "tags" }) }))
        .jsonBody,
    ).toMatchObject({ match: false });
    expect((await get({ readVault: async () => undefined })).jsonBody).toMatchObject({
      match: false,
      vault: null,
    });
  });

  it("still answers when the server is unreachable, naming the error and leaving match unknown", async () => {
    const res = await get({ readServer: async () => Promise.reject(new Error("connect ECONNREFUSED")) });
    expect(res.status).toBe(200);
    expect(res.jsonBody).toMatchObject({
      server: { error: "connect ECONNREFUSED" },
      match: null,
      vault: { version: "v1" },
    });
  });
});
