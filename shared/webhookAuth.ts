import { request } from "node:https";
import { createRemoteJWKSet, customFetch, errors, type FetchImplementation, jwtVerify } from "jose";

/*
 * Secure webhooks from Azure Monitor action groups carry an Entra bearer token for the app
 * registration (audience) with the ActionGroupsSecureWebhook role. Signing keys come from the
 * authority's JWKS through jose's remote key set: cached, refetched for an unknown kid at most once
 * per cooldown, one fetch in flight for any number of concurrent requests, so an anonymous caller
 * sending tokens with made-up kids cannot make us hammer the authority.
 */

export const WEBHOOK_ROLE = "ActionGroupsSecureWebhook";

/** How long a fetched key set is trusted, and the least time between fetches for an unknown kid. */
export const JWKS_CACHE_MAX_AGE_MS = 10 * 60 * 1000;
export const JWKS_COOLDOWN_MS = 30 * 1000;
const JWKS_TIMEOUT_MS = 10_000;

export interface WebhookAuthSettings {
  tenantId: string;
  /** ALERT_AUDIENCE: see acceptedAudiences. */
  audience: string;
  authorityHost: string;
  /** PEM of the CA the authority's certificate chains to (a local issuer); unset: the system CAs. */
  authorityCa?: string;
}

/** `unavailable`: the signing keys could not be fetched, so the token was not judged (answer 503). */
export type WebhookAuthResult =
  | { ok: true; subject: string }
  | { ok: false; problem: string; unavailable?: true };

/** The key set could not be fetched: not the token's fault, and the action group should retry. */
function keysUnavailable(err: unknown): boolean {
  if (!(err instanceof errors.JOSEError)) return true;
  if (err instanceof errors.JWKSTimeout) return true;
  return err.code === "ERR_JOSE_GENERIC" && /JSON Web Key Set HTTP response/.test(err.message);
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The `aud` values a webhook token may carry. Entra v1 access tokens (what action groups send)
 * carry the Application ID URI as requested; v2 tokens carry the client id. The setting names the
 * Application ID URI, the client id, or both comma-separated; the form `api://<client id>` and the
 * bare client id each admit the other, a custom URI (api://spire-autopilot) admits only itself.
 */
export function acceptedAudiences(setting: string): string[] {
  const out = new Set<string>();
  for (const item of setting.split(",").map((s) => s.trim())) {
    if (item === "") continue;
    out.add(item);
    if (GUID.test(item)) out.add(`api://${item.toLowerCase()}`);
    const uri = /^api:\/\/([^/]+)$/i.exec(item);
    if (uri?.[1] && GUID.test(uri[1])) out.add(uri[1].toLowerCase());
  }
  return [...out];
}

/** jose's fetch seam, over node:https so a private CA (the sandbox's issuer) can be trusted. */
function fetchWithCa(ca: string): FetchImplementation {
  return (url, options) =>
    new Promise<Response>((resolve, reject) => {
      const headers = Object.fromEntries(options.headers.entries());
      const req = request(url, { method: "GET", ca, headers, signal: options.signal }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const responseHeaders = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            if (typeof v === "string") responseHeaders.set(k, v);
          }
          resolve(
            new Response(Buffer.concat(chunks), { status: res.statusCode ?? 500, headers: responseHeaders }),
          );
        });
      });
      req.on("error", reject);
      req.end();
    });
}

export function createWebhookAuthenticator(settings: WebhookAuthSettings) {
  const host = settings.authorityHost.replace(/\/+$/, "");
  const keys = createRemoteJWKSet(new URL(`${host}/${settings.tenantId}/discovery/v2.0/keys`), {
    cacheMaxAge: JWKS_CACHE_MAX_AGE_MS,
    cooldownDuration: JWKS_COOLDOWN_MS,
    timeoutDuration: JWKS_TIMEOUT_MS,
    ...(settings.authorityCa ? { [customFetch]: fetchWithCa(settings.authorityCa) } : {}),
  });
  const issuers = [
    `https://sts.windows.net/${settings.tenantId}/`,
    `https://login.microsoftonline.com/${settings.tenantId}/v2.0`,
  ];
  const audience = acceptedAudiences(settings.audience);

  return async function authenticate(authorization: string | null): Promise<WebhookAuthResult> {
    const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? "");
    if (!m?.[1])
      return { ok: false, problem: "an Entra bearer token is required (Authorization: Bearer <token>)" };
    let payload: Awaited<ReturnType<typeof jwtVerify>>["payload"];
    try {
      ({ payload } = await jwtVerify(m[1], keys, {
        // Entra signs access tokens with RS256 only; anything else is not from Entra.
        algorithms: ["RS256"],
        issuer: issuers,
        audience,
        requiredClaims: ["exp"],
        clockTolerance: 60,
      }));
    } catch (err) {
      if (keysUnavailable(err)) {
        return {
          ok: false,
          unavailable: true,
          problem: `the signing keys of ${host} could not be fetched, so the token was not checked: ${(err as Error).message}`,
        };
      }
      return { ok: false, problem: `the bearer token was refused: ${(err as Error).message}` };
    }
    const roles = Array.isArray(payload.roles) ? payload.roles : [];
    if (!roles.includes(WEBHOOK_ROLE)) {
      return { ok: false, problem: `the bearer token lacks the ${WEBHOOK_ROLE} role` };
    }
    return { ok: true, subject: String(payload.sub ?? payload.oid ?? "unknown") };
  };
}
