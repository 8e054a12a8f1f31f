import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AzureSimulator, startAzureSimulator } from "../../sandbox/azure/index.js";
import { type AzureServices, startAzureServices } from "../../sandbox/emulators/index.js";
import { sandboxSettings } from "../../sandbox/environment.js";
import { type HostProcess, startHostProcess } from "../../sandbox/host/process.js";
import { appSpec } from "./azure-fixtures.js";

/*
 * The re-attestation HTTP surface on the real product app under the local host, against the ARM
 * simulator: every bad input gets a 4xx naming the problem and starts nothing.
 */

const PRODUCT_APP = resolve(import.meta.dirname, "../../functions/index.ts");
const RG = "rg-sandbox-apps";
const BP = "11111111-2222-4333-8444-555555555555";
const AID = "66666666-7777-4888-8999-000000000000";

let dir: string;
let sim: AzureSimulator;
let services: AzureServices;
let host: HostProcess;
let entraHost: HostProcess;
let key: string;

async function createApp(name: string, tags: Record<string, string>, withSidecar = true) {
  const spec = appSpec(sim, name);
  spec.tags = tags;
  if (!withSidecar) spec.template!.containers = [spec.template!.containers![0]!];
  await sim.clients().containerApps.containerApps.createOrUpdate(RG, name, spec);
}

async function instances(h: HostProcess): Promise<Array<{ instanceId: string }>> {
  const res = await fetch(`${h.url}/runtime/webhooks/durabletask/instances/?code=${h.keys.masterKey}`);
  return (await res.json()) as Array<{ instanceId: string }>;
}

function alert(condition: "Fired" | "Resolved", app?: string) {
  return {
    schemaId: "azureMonitorCommonAlertSchema",
    data: {
      essentials: {
        alertId: "/subscriptions/s/providers/Microsoft.AlertsManagement/alerts/1",
        alertRule: "spire-agent-attestation-failures",
        severity: "Sev1",
        signalType: "Log",
        monitorCondition: condition,
        monitoringService: "Log Alerts V2",
        firedDateTime: new Date().toISOString(),
      },
      alertContext: {
        conditionType: "LogQueryCriteria",
        condition: {
          allOf: [{ dimensions: app ? [{ name: "ContainerAppName", value: app }] : [], metricValue: 3 }],
        },
      },
    },
  };
}

const post = (h: HostProcess, path: string, body: string | undefined, headers: Record<string, string> = {}) =>
  fetch(`${h.url}${path}`, { method: "POST", body, headers });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "reattest-http-"));
  sim = await startAzureSimulator({});
  services = await startAzureServices({ azurite: false, keyVault: false, startAlerts: false });
  await createApp("managed-app", {
    "spire-autopilot": "managed",
    "spiffe-blueprint-oid": BP,
    "spiffe-agent-oid": AID,
  });
  await createApp("plain-app", {});
  await createApp(
    "no-sidecar",
    { "spire-autopilot": "managed", "spiffe-blueprint-oid": BP, "spiffe-agent-oid": AID },
    false,
  );
  const settings = {
    ...sandboxSettings("/tmp/spire-autopilot-test/api.sock"),
    ...sim.settings(),
    APPS_RESOURCE_GROUP: RG,
  };
  host = await startHostProcess({ appEntry: PRODUCT_APP, stateDir: join(dir, "host"), env: settings });
  key = host.keys.functionKeys.default!;
  entraHost = await startHostProcess({
    appEntry: PRODUCT_APP,
    stateDir: join(dir, "entra"),
    env: {
      ...settings,
      ALERT_AUTH: "entra",
      ALERT_AUDIENCE: "api://spire-autopilot",
      ALERT_TENANT_ID: services.settings.ALERT_TENANT_ID!,
      AUTHORITY_HOST: services.settings.AUTHORITY_HOST!,
      AUTHORITY_CA_CERT_FILE: services.settings.AUTHORITY_CA_CERT_FILE!,
    },
  });
}, 120_000);

afterAll(async () => {
  await host?.stop();
  await entraHost?.stop();
  await services?.stop();
  await sim?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("POST /api/apps/{app}/reattest", () => {
  it.each([
    ["no key", "managed-app", "none", undefined, 401, undefined],
    ["a wrong key", "managed-app", "?code=wrong", undefined, 401, undefined],
    ["an invalid app name", "Bad_Name", "", undefined, 400, /Container App name/],
    ["malformed JSON", "managed-app", "", "{not json", 400, /not valid JSON/],
    ["an unknown field", "managed-app", "", '{"forse": true}', 400, /Invalid body: .*forse|Unrecognized key/],
    ["a wrong type", "managed-app", "", '{"force": "yes"}', 400, /Invalid body: force/],
    [
      "an app that does not exist",
      "ghost-app",
      "",
      undefined,
      404,
      /does not exist in resource group rg-sandbox-apps/,
    ],
    [
      "an unmanaged app",
      "plain-app",
      "",
      undefined,
      404,
      /not managed by spire-autopilot: it lacks the tag spire-autopilot=managed/,
    ],
    ["a managed app without the sidecar", "no-sidecar", "", undefined, 422, /no SPIRE agent sidecar/],
  ])("refuses %s and starts nothing", async (_what, app, query, body, status, message) => {
    const q = query === "none" ? "" : query === "" ? `?code=${key}` : query;
    const res = await post(host, `/api/apps/${app}/reattest${q}`, body);
    expect(res.status).toBe(status);
    if (message) expect(((await res.json()) as { error: string }).error).toMatch(message);
    expect(await instances(host)).toEqual([]);
  });

  it("refuses a body over 256 KB", async () => {
    const res = await post(
      host,
      `/api/apps/managed-app/reattest?code=${key}`,
      JSON.stringify({ reason: "x".repeat(300_000) }),
    );
    expect(res.status).toBe(413);
    expect(await instances(host)).toEqual([]);
  });
});

describe("POST /api/alerts", () => {
  it.each([
    ["malformed JSON", "{", 400, /not valid JSON/],
    ["an empty body", "", 400, /JSON body is required/],
    [
      "a payload that is not a common alert",
      JSON.stringify({ hello: "world" }),
      400,
      /not a common alert schema payload/,
    ],
    ["an alert naming no app", JSON.stringify(alert("Fired")), 400, /names no app/],
    [
      "an alert naming an unknown app",
      JSON.stringify(alert("Fired", "ghost-app")),
      404,
      /ghost-app" does not exist/,
    ],
    ["an alert naming an unmanaged app", JSON.stringify(alert("Fired", "plain-app")), 404, /not managed/],
    [
      "an alert naming what is not a Container App name",
      JSON.stringify(alert("Fired", "../managed-app")),
      400,
      /not a Container App.*"\.\.\/managed-app"/,
    ],
  ])("refuses %s and starts nothing", async (_what, body, status, message) => {
    const res = await post(host, `/api/alerts?code=${key}`, body);
    expect(res.status).toBe(status);
    expect(((await res.json()) as { error: string }).error).toMatch(message);
    expect(await instances(host)).toEqual([]);
  });

  it("refuses a chunked body (no Content-Length) over 256 KB", async () => {
    const chunk = new TextEncoder().encode(" ".repeat(64 * 1024));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent++ >= 16) return c.close();
        c.enqueue(chunk);
      },
    });
    const res = await fetch(`${host.url}/api/alerts?code=${key}`, {
      method: "POST",
      body,
      duplex: "half",
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(await instances(host)).toEqual([]);
  });

  it("needs the function key in function-key mode", async () => {
    expect((await post(host, "/api/alerts", JSON.stringify(alert("Fired", "managed-app")))).status).toBe(401);
  });

  it("acknowledges a Resolved alert and starts nothing", async () => {
    const res = await post(host, `/api/alerts?code=${key}`, JSON.stringify(alert("Resolved", "managed-app")));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ acknowledged: true, condition: "Resolved", started: [] });
    expect(await instances(host)).toEqual([]);
  });

  describe("with Entra bearer tokens (ALERT_AUTH=entra)", () => {
    const token = (roles: string[], audience = "api://spire-autopilot") =>
      services.issuer.webhookToken({ tenantId: services.settings.ALERT_TENANT_ID!, audience, roles });

    it.each([
      ["no token", undefined, /bearer token is required/],
      ["a token without the role", () => token([]), /lacks the ActionGroupsSecureWebhook role/],
      ["a token for another audience", () => token(["ActionGroupsSecureWebhook"], "api://other"), /refused/],
      ["a token that is not a JWT", () => "not-a-jwt", /refused/],
    ])("refuses %s with 401", async (_what, make, message) => {
      const headers: Record<string, string> = make ? { authorization: `Bearer ${await make()}` } : {};
      const res = await post(
        entraHost,
        "/api/alerts",
        JSON.stringify(alert("Resolved", "managed-app")),
        headers,
      );
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: string }).error).toMatch(message);
    });

    it("a flood of tokens with unknown kids costs the authority at most 2 key fetches", async () => {
      const before = services.issuer.keysFetches();
      const now = Math.floor(Date.now() / 1000);
      const forged = () =>
        services.issuer.sign(
          {
            aud: "api://spire-autopilot",
            iss: `https://sts.windows.net/${services.settings.ALERT_TENANT_ID}/`,
            iat: now,
            exp: now + 600,
            roles: ["ActionGroupsSecureWebhook"],
          },
          { kid: randomBytes(12).toString("base64url") },
        );
      const statuses = await Promise.all(
        Array.from({ length: 50 }, async () => {
          const res = await post(entraHost, "/api/alerts", JSON.stringify(alert("Resolved", "managed-app")), {
            authorization: `Bearer ${forged()}`,
          });
          await res.body?.cancel();
          return res.status;
        }),
      );
      expect(statuses.every((s) => s === 401)).toBe(true);
      const fetches = services.issuer.keysFetches() - before;
      console.log(
        JSON.stringify({ figures: "webhook kid flood via host", requests: 50, jwksFetches: fetches }),
      );
      expect(fetches).toBeLessThanOrEqual(2);
    });

    it("accepts a valid token with the role", async () => {
      const auth = `Bearer ${await token(["ActionGroupsSecureWebhook"])}`;
      const res = await post(entraHost, "/api/alerts", JSON.stringify(alert("Resolved", "managed-app")), {
        authorization: auth,
      });
      expect(res.status).toBe(200);
    });
  });
});

describe("GET /api/operations/{id}", () => {
  it("answers 404 for an unknown operation and 400 for a malformed id", async () => {
    expect((await fetch(`${host.url}/api/operations/reattest-nothing?code=${key}`)).status).toBe(404);
    expect((await fetch(`${host.url}/api/operations/${encodeURIComponent("a b")}?code=${key}`)).status).toBe(
      400,
    );
    expect((await fetch(`${host.url}/api/operations/reattest-nothing`)).status).toBe(401);
  });

  it("reports a started re-attestation by its id, with its step", async () => {
    const res = await post(
      host,
      `/api/apps/managed-app/reattest?code=${key}`,
      JSON.stringify({ reason: "test" }),
    );
    expect(res.status).toBe(202);
    const started = (await res.json()) as { id: string; app: string; statusQueryGetUri: string };
    expect(started).toMatchObject({ id: "reattest-managed-app", app: "managed-app", alreadyRunning: false });
    expect(res.headers.get("location")).toBe(started.statusQueryGetUri);
    const op = await fetch(`${host.url}/api/operations/${started.id}?code=${key}`);
    expect(op.status).toBe(200);
    expect(await op.json()).toMatchObject({ id: "reattest-managed-app", name: "reattest" });
  });
});
