/**
 * The sandbox's stand-in for Entra ID as secure webhooks see it: an RSA signing key, the tokens
 * action groups send (v1 access tokens with the role ActionGroupsSecureWebhook), and the OpenID
 * metadata and JWKS a receiver validates them with, served over HTTPS. Point the product's
 * AUTHORITY_HOST at `url`.
 */
import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  type KeyObject,
  randomUUID,
  sign,
} from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { type RunningServer, type ServerTls, sendJson, startHttpsServer } from "../logs/https.js";

/** The first-party app Azure Monitor action groups get their secure-webhook tokens as. */
export const ACTION_GROUP_APP_ID = "461e8683-5575-4561-ac7f-899cc907d62a";
export const SECURE_WEBHOOK_ROLE = "ActionGroupsSecureWebhook";

/**
 * A signing key as Entra's discovery/v2.0/keys serves it: no `alg` member (the token header names
 * RS256), so a receiver that does not pin the algorithm would accept RS384/RS512 under the same key.
 * https://login.microsoftonline.com/common/discovery/v2.0/keys
 */
export interface Jwk {
  kty: "RSA";
  use: "sig";
  kid: string;
  x5t: string;
  n: string;
  e: string;
}

export interface TokenIssuer extends RunningServer {
  /** The v1 issuer claim for a tenant: https://sts.windows.net/<tenant>/ */
  issuerFor(tenantId: string): string;
  jwks(): { keys: Jwk[] };
  /** How many times the JWKS was fetched (any tenant, v1 or v2 path). */
  keysFetches(): number;
  /** A token as an action group sends it to a secure webhook. */
  webhookToken(opts: {
    tenantId: string;
    audience: string;
    lifetimeSeconds?: number;
    roles?: string[];
  }): string;
  /**
   * Signs arbitrary claims with the issuer's key (tests of token validation); `header` overrides
   * members of the JOSE header (a foreign kid, another RSA algorithm).
   */
  sign(claims: Record<string, unknown>, header?: { kid?: string; alg?: "RS256" | "RS384" | "RS512" }): string;
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString("base64url");

export async function startTokenIssuer(options: { tls: ServerTls; port?: number }): Promise<TokenIssuer> {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const key: KeyObject = createPrivateKey(privateKey.export({ format: "pem", type: "pkcs8" }));
  const pub = publicKey.export({ format: "jwk" }) as { n?: string; e?: string };
  const kid = b64url(
    createHash("sha1")
      .update(publicKey.export({ format: "der", type: "spki" }))
      .digest(),
  );
  const jwk: Jwk = { kty: "RSA", use: "sig", kid, x5t: kid, n: pub.n ?? "", e: pub.e ?? "" };
  let fetches = 0;

  const signClaims = (
    claims: Record<string, unknown>,
    override: { kid?: string; alg?: "RS256" | "RS384" | "RS512" } = {},
  ): string => {
    const alg = override.alg ?? "RS256";
    const header = b64url(JSON.stringify({ typ: "JWT", alg, x5t: kid, kid: override.kid ?? kid }));
    const body = b64url(JSON.stringify(claims));
    const signature = sign(`sha${alg.slice(2)}`, Buffer.from(`${header}.${body}`), key);
    return `${header}.${body}.${b64url(signature)}`;
  };
  const issuerFor = (tenantId: string) => `https://sts.windows.net/${tenantId}/`;

  let url = "";
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? "/", "https://localhost").pathname;
    if (/^\/[^/]+\/discovery(\/v2\.0)?\/keys$/.test(path)) {
      fetches++;
      sendJson(res, 200, { keys: [jwk] });
      return;
    }
    const v1 = /^\/([^/]+)\/\.well-known\/openid-configuration$/.exec(path);
    if (v1) {
      const tenant = v1[1] ?? "common";
      sendJson(res, 200, {
        issuer: issuerFor(tenant),
        jwks_uri: `${url}/${tenant}/discovery/keys`,
        token_endpoint: `${url}/${tenant}/oauth2/token`,
        authorization_endpoint: `${url}/${tenant}/oauth2/authorize`,
        id_token_signing_alg_values_supported: ["RS256"],
        response_types_supported: ["code", "id_token", "token"],
        subject_types_supported: ["pairwise"],
      });
      return;
    }
    const v2 = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/.exec(path);
    if (v2) {
      const tenant = v2[1] ?? "common";
      sendJson(res, 200, {
        issuer: `https://login.microsoftonline.com/${tenant}/v2.0`,
        jwks_uri: `${url}/${tenant}/discovery/v2.0/keys`,
        token_endpoint: `${url}/${tenant}/oauth2/v2.0/token`,
        id_token_signing_alg_values_supported: ["RS256"],
      });
      return;
    }
    sendJson(res, 404, { error: "not_found", error_description: `no such endpoint: ${path}` });
  };
  const server = await startHttpsServer(options.tls, handler, options.port);
  url = server.url;

  return {
    ...server,
    issuerFor,
    jwks: () => ({ keys: [jwk] }),
    keysFetches: () => fetches,
    sign: signClaims,
    webhookToken({ tenantId, audience, lifetimeSeconds = 3600, roles = [SECURE_WEBHOOK_ROLE] }) {
      const now = Math.floor(Date.now() / 1000);
      const oid = "f0e2a3c4-0000-4000-8000-00000000a9a9";
      return signClaims({
        aud: audience,
        iss: issuerFor(tenantId),
        iat: now,
        nbf: now,
        exp: now + lifetimeSeconds,
        appid: ACTION_GROUP_APP_ID,
        appidacr: "2",
        idp: issuerFor(tenantId),
        oid,
        sub: oid,
        roles,
        tid: tenantId,
        uti: randomUUID().replaceAll("-", ""),
        ver: "1.0",
      });
    },
  };
}
