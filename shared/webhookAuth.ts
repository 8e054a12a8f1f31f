import { request } from "node:https";
import { createLocalJWKSet, type JSONWebKeySet, jwtVerify } from "jose";

/*
 * Secure webhooks from Azure Monitor action groups carry an Entra bearer token for the app
 * registration (audience) with the ActionGroupsSecureWebhook role. Signing keys come from the
 * authority's JWKS, fetched with the configured CA (a local issuer in the sandbox) and cached.
 */

export const WEBHOOK_ROLE = "ActionGroupsSecureWebhook";
const KEYS_TTL_MS = 10 * 60 * 1000;

export interface WebhookAuthSettings {
  tenantId: string;
  audience: string;
  authorityHost: string;
  authorityCa?: string;
}

export type WebhookAuthResult = { ok: true; subject: string } | { ok: false; problem: string };

function getJson(url: string, ca: string | undefined): Promise<JSONWebKeySet> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "GET", ca, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        if (res.statusCode !== 200) return reject(new Error(`GET ${url} answered ${res.statusCode}`));
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")) as JSONWebKeySet);
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on("error", reject);
    req.end();
  });
}

export function createWebhookAuthenticator(settings: WebhookAuthSettings) {
  const host = settings.authorityHost.replace(/\/+$/, "");
  const keysUrl = `${host}/${settings.tenantId}/discovery/v2.0/keys`;
  let cached: { at: number; keys: ReturnType<typeof createLocalJWKSet> } | undefined;
  const keys = async (refresh: boolean) => {
    if (!cached || refresh || Date.now() - cached.at > KEYS_TTL_MS) {
      cached = { at: Date.now(), keys: createLocalJWKSet(await getJson(keysUrl, settings.authorityCa)) };
    }
    return cached.keys;
  };
  const issuers = [
    `https://sts.windows.net/${settings.tenantId}/`,
    `https://login.microsoftonline.com/${settings.tenantId}/v2.0`,
  ];

  return async function authenticate(authorization: string | null): Promise<WebhookAuthResult> {
    const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? "");
    if (!m?.[1])
      return { ok: false, problem: "an Entra bearer token is required (Authorization: Bearer <token>)" };
    const verify = async (refresh: boolean) =>
      jwtVerify(m[1]!, await keys(refresh), {
        issuer: issuers,
        audience: settings.audience,
        clockTolerance: 60,
      });
    let payload: Awaited<ReturnType<typeof verify>>["payload"];
    try {
      try {
        payload = (await verify(false)).payload;
      } catch (err) {
        // A key rotated since we cached the set: fetch it once more before refusing.
        if ((err as { code?: string }).code !== "ERR_JWKS_NO_MATCHING_KEY") throw err;
        payload = (await verify(true)).payload;
      }
    } catch (err) {
      return { ok: false, problem: `the bearer token was refused: ${(err as Error).message}` };
    }
    const roles = Array.isArray(payload.roles) ? payload.roles : [];
    if (!roles.includes(WEBHOOK_ROLE)) {
      return { ok: false, problem: `the bearer token lacks the ${WEBHOOK_ROLE} role` };
    }
    return { ok: true, subject: String(payload.sub ?? payload.oid ?? "unknown") };
  };
}
