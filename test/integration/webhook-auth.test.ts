/**
 * The secure webhook's token check against the sandbox's Entra stand-in over HTTPS (its own CA):
 * what it accepts, what it refuses, and how often it goes to the authority for signing keys.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  SECURE_WEBHOOK_ROLE,
  startTokenIssuer,
  type TokenIssuer,
} from "../../sandbox/azure/alerts/issuer.js";
import { type LoopbackTls, makeLoopbackTls } from "../../sandbox/azure/tls.js";
import { acceptedAudiences, createWebhookAuthenticator } from "../../shared/webhookAuth.js";

const TENANT = "7d0c1f00-0000-4000-8000-0000000000bb";
const CLIENT_ID = "3f2b1a09-8c7d-4e6f-9a0b-1c2d3e4f5a6b";
const APP_ID_URI = `api://${CLIENT_ID}`;

let tls: LoopbackTls;
let issuer: TokenIssuer;

beforeAll(async () => {
  tls = await makeLoopbackTls();
  issuer = await startTokenIssuer({ tls });
});

afterAll(async () => {
  await issuer?.close();
});

const authenticator = (audience = APP_ID_URI) =>
  createWebhookAuthenticator({
    tenantId: TENANT,
    audience,
    authorityHost: issuer.url,
    authorityCa: tls.caPem,
  });

function claims(over: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return {
    aud: APP_ID_URI,
    iss: `https://sts.windows.net/${TENANT}/`,
    iat: now,
    nbf: now,
    exp: now + 3600,
    sub: "f0e2a3c4-0000-4000-8000-00000000a9a9",
    roles: [SECURE_WEBHOOK_ROLE],
    ...over,
  };
}

const bearer = (t: string) => `Bearer ${t}`;

describe("acceptedAudiences", () => {
  it.each([
    [APP_ID_URI, [APP_ID_URI, CLIENT_ID]],
    [CLIENT_ID, [CLIENT_ID, APP_ID_URI]],
    ["api://spire-autopilot", ["api://spire-autopilot"]],
    [`api://spire-autopilot,${CLIENT_ID}`, ["api://spire-autopilot", CLIENT_ID, APP_ID_URI]],
  ])("%s admits %j", (setting, expected) => {
    expect(acceptedAudiences(setting).sort()).toEqual([...expected].sort());
  });
});

describe("webhook bearer tokens", () => {
  let auth: ReturnType<typeof authenticator>;
  beforeAll(() => {
    auth = authenticator();
  });

  it.each([
    ["a v1 token for the Application ID URI", claims()],
    [
      "a v2 token for the client id",
      claims({ aud: CLIENT_ID, iss: `https://login.microsoftonline.com/${TENANT}/v2.0` }),
    ],
  ])("accepts %s", async (_what, c) => {
    expect(await auth(bearer(issuer.sign(c)))).toMatchObject({ ok: true });
  });

  it("accepts the issuer's own webhook token", async () => {
    const t = issuer.webhookToken({ tenantId: TENANT, audience: APP_ID_URI });
    expect(await auth(bearer(t))).toMatchObject({ ok: true });
  });

  const now = () => Math.floor(Date.now() / 1000);
  it.each([
    ["no exp", () => issuer.sign(claims({ exp: undefined })), /"exp" claim/],
    ["RS384 under the same key", () => issuer.sign(claims(), { alg: "RS384" }), /alg/i],
    ["RS512 under the same key", () => issuer.sign(claims(), { alg: "RS512" }), /alg/i],
    [
      "alg none",
      () =>
        `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${Buffer.from(JSON.stringify(claims())).toString("base64url")}.`,
      /alg|JWS|Invalid/i,
    ],
    ["an expired token", () => issuer.sign(claims({ exp: now() - 600 })), /exp/],
    ["another audience", () => issuer.sign(claims({ aud: "api://someone-else" })), /aud/],
    [
      "another tenant's issuer",
      () => issuer.sign(claims({ iss: `https://sts.windows.net/${randomUUID()}/` })),
      /iss/,
    ],
    ["an unknown kid", () => issuer.sign(claims(), { kid: "not-a-key" }), /no applicable key|matching key/i],
    ["no role", () => issuer.sign(claims({ roles: [] })), /lacks the ActionGroupsSecureWebhook role/],
  ])("refuses %s", async (_what, make, message) => {
    const r = await auth(bearer(make()));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problem).toMatch(message);
  });

  it("accepts only the App ID URI when the setting is a custom URI", async () => {
    const custom = authenticator("api://spire-autopilot");
    expect(await custom(bearer(issuer.sign(claims({ aud: "api://spire-autopilot" }))))).toMatchObject({
      ok: true,
    });
    expect(await custom(bearer(issuer.sign(claims({ aud: CLIENT_ID }))))).toMatchObject({ ok: false });
  });
});

describe("signing key fetches", () => {
  it("one fetch serves concurrent requests on a cold cache", async () => {
    const auth = authenticator();
    const before = issuer.keysFetches();
    const results = await Promise.all(Array.from({ length: 20 }, () => auth(bearer(issuer.sign(claims())))));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(issuer.keysFetches() - before).toBe(1);
  });

  it("a flood of tokens with unknown kids does not fetch once per request", async () => {
    const auth = authenticator();
    const before = issuer.keysFetches();
    const forged = () => issuer.sign(claims(), { kid: randomBytes(16).toString("base64url") });
    // Concurrent, then one after the other: neither may turn each request into a fetch.
    const burst = await Promise.all(Array.from({ length: 25 }, () => auth(bearer(forged()))));
    const serial = [];
    for (let i = 0; i < 25; i++) serial.push(await auth(bearer(forged())));
    expect([...burst, ...serial].every((r) => !r.ok)).toBe(true);
    const fetches = issuer.keysFetches() - before;
    console.log(JSON.stringify({ forgedTokens: 50, jwksFetches: fetches }));
    expect(fetches).toBeLessThanOrEqual(2);
    // A genuine token still passes right after the flood.
    expect(await auth(bearer(issuer.sign(claims())))).toMatchObject({ ok: true });
  });
});

describe("an authority that cannot be reached", () => {
  it("is reported as unavailable (503), not as a refused token", async () => {
    const down = createWebhookAuthenticator({
      tenantId: TENANT,
      audience: APP_ID_URI,
      authorityHost: "https://127.0.0.1:1",
      authorityCa: tls.caPem,
    });
    const r = await down(bearer(issuer.sign(claims())));
    expect(r).toMatchObject({
      ok: false,
      unavailable: true,
      problem: expect.stringMatching(/could not be fetched/),
    });
    // A token that is not a JWT is refused without any fetch.
    expect(await down(bearer("not-a-jwt"))).toMatchObject({
      ok: false,
      problem: expect.stringMatching(/refused/),
    });
  });
});
