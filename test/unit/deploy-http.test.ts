import { createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import type { ContainerApp } from "@azure/arm-appcontainers";
import { HttpRequest, InvocationContext } from "@azure/functions";
import type { DurableClient } from "durable-functions";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { deployHttpHandler } from "../../functions/deploy.js";
import { classifyApp } from "../../shared/containerapp/apps.js";
import type { Discovered } from "../../shared/containerapp/discover.js";

/*
 * POST /api/deploy against durable-functions' real DurableClient talking to a scripted task hub on
 * loopback, discovery stubbed: bad bodies and unusable apps are refused with nothing started.
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
    name: "deploy",
    instanceId: "deploy",
    runtimeStatus: "Running",
    input: null,
    customStatus: null,
    output: null,
    createdTime: "2026-12-01T20:00:00Z",
    lastUpdatedTime: "2026-12-01T20:00:01Z",
  },
});
const notFound = (): Reply => ({ status: 404 });
const started = (): Reply => ({ status: 202, body: { id: "deploy" } });

const settings = {
  trustDomain: "td.example",
  apps: {
    resourceGroup: "rg",
    managedTag: { name: "spire-autopilot", value: "managed" },
    blueprintOidTag: "spiffe-blueprint-oid",
    agentOidTag: "spiffe-agent-oid",
    workloadSelectors: [{ type: "unix", value: "uid:0" }],
    workloadX509TtlSeconds: 3600,
  },
};
const TAGS = {
  "spire-autopilot": "managed",
  "spiffe-blueprint-oid": "11111111-1111-4111-8111-111111111111",
  "spiffe-agent-oid": "22222222-2222-4222-8222-222222222222",
};
const app = (name: string, tags: Record<string, string>): ContainerApp => ({
  name,
  location: "westeurope",
  tags,
  template: {
    containers: [
      { name: "main", image: "acr.example/app:1" },
      { name: "agent", image: "acr.example/agent:1", env: [{ name: "JOIN_TOKEN", secretRef: "t" }] },
    ],
    scale: { minReplicas: 1, maxReplicas: 1 },
  },
});
const fleet = [app("alpha", TAGS), app("plain", {}), app("broken", { "spire-autopilot": "managed" })];
const discovered = async (): Promise<Discovered> => {
  return {
    verdicts: fleet.map((a) => classifyApp(a, settings)),
    apps: new Map(fleet.map((a) => [a.name!, a])),
    pages: 1,
  };
};

const post = (body?: string) =>
  deployHttpHandler({
    config: {
      apps: settings.apps,
      reattest: { revisionTimeoutSeconds: 600, verifyTimeoutSeconds: 300 },
      spire: { api: "grpc" } as never,
      deploy: { attestSpacingMs: 1200 },
    },
    discover: discovered,
    listEntries: async () => [],
  })(
    new HttpRequest({
      method: "POST",
      url: "http://localhost/api/deploy",
      ...(body === undefined ? {} : { body: { string: body } }),
    }),
    client(),
    new InvocationContext({ functionName: "deployHttp" }),
  );

describe("POST /api/deploy", () => {
  it("starts the singleton deploy and answers 202 with status URLs and the apps", async () => {
    replies = [notFound, started];
    const res = await post(
      JSON.stringify({ images: { alpha: { main: "acr.example/app:2" } }, maxParallel: 3 }),
    );
    expect(res.status).toBe(202);
    expect(res.jsonBody).toMatchObject({ id: "deploy", apps: ["alpha"] });
    expect((res.jsonBody as { statusQueryGetUri: string }).statusQueryGetUri).toContain("deploy");
    const start = seen.find((s) => s.method === "POST");
    expect(start?.path).toContain("/orchestrators/deploy/deploy");
    expect(JSON.parse(start!.body)).toMatchObject({
      maxParallel: 3,
      images: { alpha: { main: "acr.example/app:2" } },
    });
  });

  it("answers 409 naming the running deploy, starting nothing", async () => {
    replies = [running];
    const res = await post("{}");
    expect(res.status).toBe(409);
    expect((res.jsonBody as { error: string }).error).toMatch(/"deploy"/);
    expect(seen.filter((s) => s.method === "POST")).toHaveLength(0);
  });

  it.each([
    { body: "not json", status: 400, error: /JSON/ },
    { body: JSON.stringify({ maxParallel: 21 }), status: 400, error: /at most 20/ },
    { body: JSON.stringify({ maxParallel: 0 }), status: 400, error: /at least 1/ },
    { body: JSON.stringify({ apps: ["Bad_Name"] }), status: 400, error: /Container App name/ },
    { body: JSON.stringify({ force: true }), status: 400, error: /force|Unrecognized|unrecognized/ },
    { body: JSON.stringify({ apps: ["ghost"] }), status: 404, error: /does not exist/ },
    { body: JSON.stringify({ apps: ["plain"] }), status: 404, error: /not managed/ },
    { body: JSON.stringify({ apps: ["broken"] }), status: 422, error: /cannot be/ },
    { body: JSON.stringify({ images: { alpha: { web: "x:1" } } }), status: 422, error: /no container "web"/ },
    {
      body: JSON.stringify({ images: { alpha: { main: "NOT AN IMAGE" } } }),
      status: 422,
      error: /not an image reference/,
    },
  ])("refuses $body with $status, starting nothing", async (c) => {
    const res = await post(c.body);
    expect(res.status).toBe(c.status);
    expect((res.jsonBody as { error: string }).error).toMatch(c.error);
    expect(seen).toHaveLength(0);
  });

  it("dryRun answers the plan and touches nothing", async () => {
    const res = await post(
      JSON.stringify({ dryRun: true, images: { alpha: { main: "acr.example/app:2" } } }),
    );
    expect(res.status).toBe(200);
    const plan = (res.jsonBody as { plan: Record<string, unknown> }).plan;
    expect(plan).toMatchObject({
      entries: { create: 1, update: 0, delete: 0 },
      images: [{ app: "alpha", container: "main", from: "acr.example/app:1", to: "acr.example/app:2" }],
      tokens: 1,
    });
    expect((plan.apps as Array<{ app: string; included: boolean }>).map((a) => [a.app, a.included])).toEqual([
      ["alpha", true],
      ["plain", false],
      ["broken", false],
    ]);
    expect(seen).toHaveLength(0);
  });
});
