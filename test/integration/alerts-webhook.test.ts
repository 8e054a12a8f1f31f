/**
 * The re-attestation alert end to end on real processes: a replica whose spire-agent restarts with
 * its spent join token crash-loops; its console lines reach ContainerAppConsoleLogs; the rule from
 * shared/kql/alert-rules.json fires ONE alert for that app, delivered (with retries) to a
 * function-key webhook and to an Entra-secured one; when the replica stops failing it resolves.
 */
import { createPublicKey, verify } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { get } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AlertEngine, type CommonAlertPayload } from "../../sandbox/azure/alerts/engine.js";
import {
  SECURE_WEBHOOK_ROLE,
  startTokenIssuer,
  type TokenIssuer,
} from "../../sandbox/azure/alerts/issuer.js";
import { loadAlertRules, parseAlertRule } from "../../sandbox/azure/alerts/rules.js";
import { scaledClock } from "../../sandbox/azure/logs/clock.js";
import { type FileFollower, followContainerOutput } from "../../sandbox/azure/logs/follow.js";
import { LogStore } from "../../sandbox/azure/logs/store.js";
import { type LoopbackTls, makeLoopbackTls } from "../../sandbox/azure/tls.js";
import {
  type SpireAgentHandle,
  type SpireServerHandle,
  startSpireAgent,
  startSpireServer,
} from "../../sandbox/spire/index.js";
import { parseCommonAlert } from "../../shared/alerts.js";

const TD = "alerts.test";
const KEY = "test-function-key";
const TENANT = "7d0c1f00-0000-4000-8000-0000000000aa";
const AUDIENCE = "api://spire-autopilot-test";
// 60x: the rule's 1-minute frequency is 1 s real; its window (15 minutes here) 15 s real, three
// times the agent's 5 s attestation retry, so a slow machine cannot make the alert flap.
const clock = scaledClock(60);

interface Received {
  path: string;
  status: number;
  payload: CommonAlertPayload;
  authorization?: string;
}

let tls: LoopbackTls;
let issuer: TokenIssuer;
let receiver: Server;
let receiverUrl = "";
const received: Received[] = [];
let spire: SpireServerHandle | undefined;
let good: SpireAgentHandle | undefined;
let looping: SpireAgentHandle | undefined;
let follower: FileFollower | undefined;
let engine: AlertEngine | undefined;
const store = new LogStore({ clock });

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

beforeAll(async () => {
  tls = await makeLoopbackTls();
  issuer = await startTokenIssuer({ tls });
  const seen = new Set<string>();
  receiver = createServer((req, res) => {
    void readBody(req).then((text) => {
      const payload = JSON.parse(text) as CommonAlertPayload;
      const url = new URL(req.url ?? "/", "http://localhost");
      // The first call for each notification is answered 503: the sender must retry.
      const first = `${url.pathname}|${payload.data.essentials.alertId}|${payload.data.essentials.monitorCondition}`;
      let status = seen.has(first) ? 200 : 503;
      seen.add(first);
      if (url.pathname === "/api/alerts" && url.searchParams.get("code") !== KEY) status = 401;
      received.push({ path: url.pathname, status, payload, authorization: req.headers.authorization });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

  spire = await startSpireServer({ trustDomain: TD });
  const bundle = join(spire.dir, "bundle.pem");
  await spire.writeBundle(bundle);
  const tokenOut = await spire.cli([
    "token",
    "generate",
    "-spiffeID",
    `spiffe://${TD}/agent/app-a`,
    "-output",
    "json",
  ]);
  const token = (JSON.parse(tokenOut.stdout) as { value: string }).value;
  const agentOptions = {
    serverAddress: spire.bindAddress,
    serverPort: spire.port,
    trustDomain: TD,
    trustBundlePath: bundle,
    joinToken: token,
  };
  // The first replica attests and spends the token...
  good = await startSpireAgent({ ...agentOptions, name: "app-a-r1" });
  await good.waitHealthy(30_000);
  await good.dispose();
  // ...then the replica restarts with a fresh filesystem and the same token from the app's secret.
  looping = await startSpireAgent({ ...agentOptions, name: "app-a-r2" });
  follower = await followContainerOutput(
    looping.logFile,
    store,
    {
      app: "app-a",
      revision: "app-a--0000001",
      replica: "app-a--0000001-7d9f-x2",
      container: "spire-agent",
      stream: "stderr",
    },
    { pollMs: 100 },
  );
}, 90_000);

afterAll(async () => {
  await engine?.stop();
  await follower?.stop();
  await looping?.dispose();
  await good?.dispose();
  await spire?.dispose();
  await issuer?.close();
  await new Promise<void>((r) => (receiver ? receiver.close(() => r()) : r()));
});

async function waitFor(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function verifyJwt(token: string, jwks: { keys: { kid: string }[] }): Record<string, unknown> {
  const [h, b, s] = token.split(".");
  const header = JSON.parse(Buffer.from(h ?? "", "base64url").toString()) as { kid: string; alg: string };
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  if (!jwk || header.alg !== "RS256") throw new Error("no matching key");
  const ok = verify(
    "sha256",
    Buffer.from(`${h}.${b}`),
    createPublicKey({ key: jwk, format: "jwk" }),
    Buffer.from(s ?? "", "base64url"),
  );
  if (!ok) throw new Error("bad signature");
  return JSON.parse(Buffer.from(b ?? "", "base64url").toString()) as Record<string, unknown>;
}

function getJson(url: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    get(url, { ca: tls.caPem }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve(JSON.parse(Buffer.concat(chunks).toString("utf8"))));
    }).on("error", reject);
  });
}

describe("log search alert on a crash-looping agent replica", () => {
  it("the product's rule file parses", () => {
    const [rule] = loadAlertRules(join(import.meta.dirname, "../../shared/kql/alert-rules.json"));
    expect(rule).toMatchObject({
      name: "spire-agent-attestation-failures",
      timeAggregation: "Total",
      metricMeasureColumn: "failures",
    });
    expect(() => parseAlertRule({ ...rule, severity: 9 })).toThrow(/severity/);
  });

  it("fires once for the app, with retries and both credentials, then resolves", async () => {
    const [product] = loadAlertRules(join(import.meta.dirname, "../../shared/kql/alert-rules.json"));
    const rule = { ...(product as NonNullable<typeof product>), windowSize: "PT15M", windowSizeMs: 900_000 };
    engine = new AlertEngine({
      store,
      rules: [rule],
      clock,
      issuer,
      retryDelaysMs: [3_000, 3_000, 3_000, 3_000, 3_000],
      receivers: [
        {
          name: "function-key",
          serviceUri: `${receiverUrl}/api/alerts?code=${KEY}`,
          auth: { kind: "function-key" },
        },
        {
          name: "secure",
          serviceUri: `${receiverUrl}/api/alerts-secure`,
          auth: { kind: "entra", tenantId: TENANT, audience: AUDIENCE },
        },
      ],
    });
    engine.start();

    await waitFor(
      "the Fired notification",
      () => engine?.notifications.some((n) => n.monitorCondition === "Fired") ?? false,
      40_000,
    );
    // Keep failing for a few more evaluations: still one alert.
    const firstFired = engine.notifications.length;
    await new Promise((r) => setTimeout(r, 3_000));
    expect(engine.notifications.length).toBe(firstFired);
    const fired = engine.notifications.filter((n) => n.monitorCondition === "Fired");
    expect(fired).toHaveLength(1);
    expect(fired[0]?.dimensions).toEqual([{ name: "ContainerAppName", value: "app-a" }]);

    // The replica is repaired (here: it stops); the failures age out of the window.
    await looping?.stop();
    await follower?.flush();
    await waitFor(
      "the Resolved notification",
      () => engine?.notifications.some((n) => n.monitorCondition === "Resolved") ?? false,
      40_000,
    );
    await engine.idle();
    await engine.stop();

    const byCondition = (c: string) => engine?.notifications.filter((n) => n.monitorCondition === c) ?? [];
    expect(byCondition("Fired")).toHaveLength(1);
    expect(byCondition("Resolved")).toHaveLength(1);
    const [f] = byCondition("Fired");
    const [r] = byCondition("Resolved");
    expect(r?.alertId).toBe(f?.alertId);

    const p = f?.payload as CommonAlertPayload;
    expect(p.schemaId).toBe("azureMonitorCommonAlertSchema");
    expect(p.data.essentials).toMatchObject({
      alertRule: "spire-agent-attestation-failures",
      severity: "Sev1",
      signalType: "Log",
      monitoringService: "Log Alerts V2",
      monitorCondition: "Fired",
    });
    const cond = p.data.alertContext.condition;
    expect(p.data.alertContext.conditionType).toBe("LogQueryCriteria");
    expect(cond.windowSize).toBe("PT15M");
    expect(cond.allOf[0]).toMatchObject({
      operator: "GreaterThan",
      threshold: "0",
      timeAggregation: "Total",
      metricMeasureColumn: "failures",
      dimensions: [{ name: "ContainerAppName", value: "app-a" }],
    });
    expect(cond.allOf[0]?.metricValue).toBeGreaterThan(0);
    expect(cond.allOf[0]?.searchQuery).toContain("ContainerAppConsoleLogs");
    expect(r?.payload.data.essentials.resolvedDateTime).toBeDefined();
    // The product's own parser (shared/alerts.ts) reads the app to repair from both.
    expect(parseCommonAlert(f?.payload)).toMatchObject({
      ok: true,
      alert: { condition: "Fired", apps: ["app-a"] },
    });
    expect(parseCommonAlert(r?.payload)).toMatchObject({
      ok: true,
      alert: { condition: "Resolved", apps: ["app-a"] },
    });

    // Each notification: 503 first, then 200, on both receivers; the key and the token check out.
    for (const n of [f, r]) {
      for (const d of n?.deliveries ?? []) {
        expect(d.attempts.map((a) => a.status)).toEqual([503, 200]);
        expect(d.delivered).toBe(true);
      }
    }
    expect(received.filter((x) => x.path === "/api/alerts").every((x) => x.status !== 401)).toBe(true);
    const secure = received.filter((x) => x.path === "/api/alerts-secure");
    expect(secure).toHaveLength(4);
    const metadata = (await getJson(`${issuer.url}/${TENANT}/.well-known/openid-configuration`)) as {
      issuer: string;
      jwks_uri: string;
    };
    const jwks = (await getJson(metadata.jwks_uri)) as { keys: { kid: string }[] };
    for (const call of secure) {
      const claims = verifyJwt((call.authorization ?? "").replace(/^Bearer /, ""), jwks);
      expect(claims).toMatchObject({
        aud: AUDIENCE,
        iss: metadata.issuer,
        tid: TENANT,
        roles: [SECURE_WEBHOOK_ROLE],
      });
      expect(Number(claims.exp)).toBeGreaterThan(Date.now() / 1000);
    }
  }, 100_000);
});
