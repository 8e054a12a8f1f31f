/**
 * Key Vault secrets (the data-plane subset the product and Container Apps use) over HTTPS with
 * Key Vault's challenge authentication, for @azure/keyvault-secrets.
 *
 * Lowkey Vault would be the first choice, but its application jar is not published to Maven
 * Central (only lowkey-vault-client and lowkey-vault-testcontainers are; the app ships through
 * GitHub Packages and Docker Hub), and neither those nor Gradle's distribution server can be
 * reached from these machines. So the sandbox serves the secrets API itself:
 *   PUT /secrets/{name}                     new version (value, contentType, tags, attributes)
 *   GET /secrets/{name}[/{version}]         latest or a given version
 *   PATCH /secrets/{name}/{version}         contentType, tags, attributes of one version
 *   GET /secrets, GET /secrets/{name}/versions
 *   DELETE /secrets/{name} (soft delete), GET/DELETE /deletedsecrets/{name}, POST .../recover
 * Limits as Azure's: names 1-127 of [0-9A-Za-z-], value <= 25 KiB, contentType <= 255 chars,
 * <= 15 tags. Times come from the sandbox clock, so time-scaled runs see scaled ages.
 *
 * Key Vault's Event Grid events (Microsoft Learn, "Azure Key Vault as Event Grid source"), published
 * on the vault's system topic (eventgrid.ts delivers them to webhook subscriptions):
 *   SecretNewVersionCreated   on every new version;
 *   SecretNearExpiry          30 days before the current version's exp (at once when that is
 *                             already past: short-lived material gets it on creation);
 *   SecretExpired             at the current version's exp.
 * Only the current (newest) version's expiry counts; a newer version cancels the older one's.
 * data: {Id, VaultName, ObjectType: "Secret", ObjectName, Version, NBF, EXP} — never the value.
 */
import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { isIP } from "node:net";
import { SANDBOX_TOKEN_PREFIX } from "../azure/credential.js";
import { REAL_TIME, realDelay, type ScaledClock } from "../azure/logs/clock.js";
import {
  bearerToken,
  type RunningServer,
  type ServerTls,
  sendJson,
  startHttpsServer,
} from "../azure/logs/https.js";
import {
  type EventGridEvent,
  EventGridTopic,
  type EventSubscription,
  type EventSubscriptionOptions,
} from "./eventgrid.js";

export const SANDBOX_TENANT_ID = "72f988bf-0000-4000-8000-00000000aaaa";

export interface SecretAttributes {
  enabled: boolean;
  /** Unix seconds. */
  nbf?: number;
  exp?: number;
  created: number;
  updated: number;
}

interface SecretVersion {
  version: string;
  value: string;
  contentType?: string;
  tags?: Record<string, string>;
  attributes: SecretAttributes;
}

interface SecretRecord {
  name: string;
  /** Oldest first. */
  versions: SecretVersion[];
}

interface DeletedRecord {
  record: SecretRecord;
  deletedDate: number;
  scheduledPurgeDate: number;
}

export type KeyVaultSecretEventType =
  | "Microsoft.KeyVault.SecretNewVersionCreated"
  | "Microsoft.KeyVault.SecretNearExpiry"
  | "Microsoft.KeyVault.SecretExpired";

/** A Key Vault event in the Event Grid event schema, as the vault's system topic delivers it. */
export interface KeyVaultEvent extends EventGridEvent {
  eventType: KeyVaultSecretEventType;
  data: {
    Id: string;
    VaultName: string;
    ObjectType: "Secret";
    ObjectName: string;
    Version: string;
    NBF: number | null;
    EXP: number | null;
  };
}

/** SecretNearExpiry comes this long before the current version's exp. */
export const NEAR_EXPIRY_MS = 30 * 86_400_000;

export interface KeyVaultServerOptions {
  tls: ServerTls;
  port?: number;
  clock?: ScaledClock;
  tenantId?: string;
  /** Which bearer tokens to accept; default: the sandbox credential's tokens. */
  acceptToken?: (token: string) => boolean;
  /** Soft-delete retention (default 90 days, Azure's default). */
  retentionDays?: number;
  /** The vault's ARM resource id parts, for its Event Grid topic. */
  subscriptionId?: string;
  resourceGroup?: string;
  log?: (line: string) => void;
}

export interface KeyVaultServer extends RunningServer {
  /** The vault URL for SecretClient (and the product's KEY_VAULT_URL): https://127.0.0.1:<port>/ */
  vaultUrl: string;
  tenantId: string;
  /** Reads a secret without HTTP (for the Key Vault reference resolver and tests). */
  read(name: string, version?: string): { value: string; version: string; enabled: boolean } | undefined;
  /** The vault's name as its events spell it (a loopback vault's host stands for it). */
  vaultName: string;
  /** The vault's resource id: its Event Grid system topic. */
  resourceId: string;
  onEvent(listener: (e: KeyVaultEvent) => void): () => void;
  /**
   * An Event Grid webhook subscription on the vault's system topic; rejects when the endpoint fails
   * the validation handshake (the subscription then does not exist and receives nothing).
   */
  subscribeEventGrid(options: EventSubscriptionOptions): Promise<EventSubscription>;
  /** The next `count` authenticated requests fail with `status` (e.g. 429 throttling, 503). */
  injectFault(fault: { status: number; count?: number; retryAfterSeconds?: number }): void;
  /** Requests answered, by the first path segment (secrets, deletedsecrets). */
  readonly requests: number;
}

const NAME = /^[0-9A-Za-z-]{1,127}$/;
const MAX_VALUE_CHARS = 25 * 1024;

class VaultError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const notFound = (name: string, version = "") =>
  new VaultError(
    404,
    "SecretNotFound",
    `A secret with (name/id) ${name}${version ? `/${version}` : ""} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
  );

function newVersion(): string {
  return randomBytes(16).toString("hex");
}

interface SetBody {
  value?: unknown;
  contentType?: unknown;
  tags?: unknown;
  attributes?: { enabled?: unknown; nbf?: unknown; exp?: unknown };
}

function validTags(tags: unknown): Record<string, string> | undefined {
  if (tags === undefined || tags === null) return undefined;
  if (typeof tags !== "object" || Array.isArray(tags))
    throw new VaultError(400, "BadParameter", "tags must be an object");
  const entries = Object.entries(tags as Record<string, unknown>);
  if (entries.length > 15) throw new VaultError(400, "BadParameter", "A maximum of 15 tags is allowed");
  for (const [k, v] of entries) {
    if (typeof v !== "string") throw new VaultError(400, "BadParameter", `tag '${k}' must be a string`);
    if (k.length > 512 || v.length > 256)
      throw new VaultError(400, "BadParameter", "Tag names are limited to 512 and values to 256 characters");
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

function validContentType(ct: unknown): string | undefined {
  if (ct === undefined || ct === null) return undefined;
  if (typeof ct !== "string") throw new VaultError(400, "BadParameter", "contentType must be a string");
  if (ct.length > 255)
    throw new VaultError(400, "BadParameter", "contentType must be at most 255 characters");
  return ct;
}

const optionalSeconds = (v: unknown): number | undefined =>
  typeof v === "number" && Number.isFinite(v) ? Math.trunc(v) : undefined;

export async function startKeyVault(options: KeyVaultServerOptions): Promise<KeyVaultServer> {
  const clock = options.clock ?? REAL_TIME;
  const tenantId = options.tenantId ?? SANDBOX_TENANT_ID;
  const accept = options.acceptToken ?? ((t: string) => t.startsWith(SANDBOX_TOKEN_PREFIX));
  const retentionSeconds = (options.retentionDays ?? 90) * 86_400;
  const secrets = new Map<string, SecretRecord>();
  const deleted = new Map<string, DeletedRecord>();
  const listeners = new Set<(e: KeyVaultEvent) => void>();
  const faults: { status: number; count: number; retryAfterSeconds?: number }[] = [];
  let requests = 0;
  let vaultUrl = "";
  const nowSeconds = () => Math.floor(clock.now() / 1000);

  const key = (name: string) => name.toLowerCase(); // Key Vault names are case-insensitive
  const base = (req: IncomingMessage) => `https://${req.headers.host ?? new URL(vaultUrl).host}`;

  const findVersion = (name: string, version: string): SecretVersion => {
    const record = secrets.get(key(name));
    if (!record) throw notFound(name, version);
    const v =
      version === ""
        ? record.versions[record.versions.length - 1]
        : record.versions.find((x) => x.version === version);
    if (!v) throw notFound(name, version);
    return v;
  };

  const bundle = (origin: string, name: string, v: SecretVersion, withValue: boolean) => ({
    ...(withValue ? { value: v.value } : {}),
    id: `${origin}/secrets/${name}/${v.version}`,
    ...(v.contentType !== undefined ? { contentType: v.contentType } : {}),
    ...(v.tags !== undefined ? { tags: v.tags } : {}),
    attributes: {
      ...v.attributes,
      recoveryLevel: "Recoverable+Purgeable",
      recoverableDays: retentionSeconds / 86_400,
    },
  });

  const item = (origin: string, name: string, v: SecretVersion, withVersion: boolean) => ({
    id: `${origin}/secrets/${name}${withVersion ? `/${v.version}` : ""}`,
    ...(v.contentType !== undefined ? { contentType: v.contentType } : {}),
    ...(v.tags !== undefined ? { tags: v.tags } : {}),
    attributes: {
      ...v.attributes,
      recoveryLevel: "Recoverable+Purgeable",
      recoverableDays: retentionSeconds / 86_400,
    },
  });

  const deletedBundle = (origin: string, d: DeletedRecord, withValue: boolean) => {
    const latest = d.record.versions[d.record.versions.length - 1] as SecretVersion;
    return {
      ...bundle(origin, d.record.name, latest, withValue),
      recoveryId: `${origin}/deletedsecrets/${d.record.name}`,
      deletedDate: d.deletedDate,
      scheduledPurgeDate: d.scheduledPurgeDate,
    };
  };

  const setSecret = (origin: string, name: string, body: SetBody) => {
    if (!NAME.test(name))
      throw new VaultError(
        400,
        "BadParameter",
        "The request URI contains an invalid name: secret names are 1-127 characters of 0-9, a-z, A-Z and -",
      );
    if (deleted.has(key(name))) {
      throw new VaultError(
        409,
        "Conflict",
        `Secret ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.`,
      );
    }
    if (typeof body.value !== "string")
      throw new VaultError(400, "BadParameter", "Property value is required");
    if (body.value.length > MAX_VALUE_CHARS)
      throw new VaultError(400, "BadParameter", "Secret value is too large: the limit is 25 KB");
    const now = nowSeconds();
    const v: SecretVersion = {
      version: newVersion(),
      value: body.value,
      contentType: validContentType(body.contentType),
      tags: validTags(body.tags),
      attributes: {
        enabled: body.attributes?.enabled !== false,
        nbf: optionalSeconds(body.attributes?.nbf),
        exp: optionalSeconds(body.attributes?.exp),
        created: now,
        updated: now,
      },
    };
    const record = secrets.get(key(name)) ?? { name, versions: [] };
    record.versions.push(v);
    secrets.set(key(name), record);
    publish("Microsoft.KeyVault.SecretNewVersionCreated", record, v);
    armExpiry(record);
    return bundle(origin, record.name, v, true);
  };

  // ---- Event Grid: the vault's system topic, and the expiry events of each current version
  let topic: EventGridTopic | undefined;
  let vaultName = "";
  const expiryTimers = new Map<string, NodeJS.Timeout[]>();
  let closing = false;

  const publish = (eventType: KeyVaultSecretEventType, record: SecretRecord, v: SecretVersion) => {
    const event = {
      subject: record.name,
      eventType,
      eventTime: new Date(clock.now()).toISOString(),
      data: {
        // The vault's own DNS name, whatever host the client called it by.
        Id: `${vaultUrl}secrets/${record.name}/${v.version}`,
        VaultName: vaultName,
        ObjectType: "Secret" as const,
        ObjectName: record.name,
        Version: v.version,
        NBF: v.attributes.nbf ?? null,
        EXP: v.attributes.exp ?? null,
      },
      dataVersion: "1",
    };
    const full = topic?.publish(event);
    if (full) for (const l of listeners) l(full as KeyVaultEvent);
  };

  const disarmExpiry = (name: string) => {
    for (const t of expiryTimers.get(key(name)) ?? []) clearTimeout(t);
    expiryTimers.delete(key(name));
  };

  /** setTimeout on the sandbox clock, in steps a Node timer can hold. */
  const at = (simMs: number, fire: () => void): NodeJS.Timeout => {
    const wait = Math.min(realDelay(clock, simMs - clock.now()), 2 ** 31 - 1);
    const t = setTimeout(() => {
      if (clock.now() >= simMs) fire();
      else replace(t, at(simMs, fire));
    }, wait);
    t.unref();
    return t;
  };
  const replace = (old: NodeJS.Timeout, next: NodeJS.Timeout) => {
    for (const list of expiryTimers.values()) {
      const i = list.indexOf(old);
      if (i >= 0) list[i] = next;
    }
  };

  /** (Re)arms the near-expiry and expired events of the record's current version. */
  const armExpiry = (record: SecretRecord) => {
    disarmExpiry(record.name);
    const v = record.versions[record.versions.length - 1];
    if (!v || v.attributes.exp === undefined || closing) return;
    const expMs = v.attributes.exp * 1000;
    const stillCurrent = () =>
      !closing &&
      secrets.get(key(record.name)) === record &&
      record.versions[record.versions.length - 1] === v &&
      (v.attributes.exp ?? Number.NaN) * 1000 === expMs;
    const timers = [
      at(expMs - NEAR_EXPIRY_MS, () => {
        if (stillCurrent()) publish("Microsoft.KeyVault.SecretNearExpiry", record, v);
      }),
      at(expMs, () => {
        if (stillCurrent()) publish("Microsoft.KeyVault.SecretExpired", record, v);
      }),
    ];
    expiryTimers.set(key(record.name), timers);
  };

  const parseJson = (raw: Buffer): Record<string, unknown> => {
    if (raw.length === 0) return {};
    try {
      const parsed: unknown = JSON.parse(raw.toString("utf8"));
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed))
        return parsed as Record<string, unknown>;
    } catch {
      // fall through
    }
    throw new VaultError(400, "BadParameter", "The request body is not valid JSON");
  };

  const route = (req: IncomingMessage, raw: Buffer): { status: number; body?: unknown } => {
    const url = new URL(req.url ?? "/", "https://localhost");
    if (!url.searchParams.get("api-version"))
      throw new VaultError(
        400,
        "MissingApiVersionParameter",
        "The api-version query parameter (?api-version=) is required for all requests.",
      );
    // "/secrets/name/" (the latest version, as the SDK asks for it) leaves an empty third segment.
    const [collection, name = "", third, fourth] = url.pathname.split("/").slice(1).map(decodeURIComponent);
    const origin = base(req);
    const method = req.method ?? "GET";

    if (collection === "secrets") {
      if (name === "" && method === "GET") {
        const value = [...secrets.values()].map((r) =>
          item(origin, r.name, r.versions[r.versions.length - 1] as SecretVersion, false),
        );
        return { status: 200, body: { value, nextLink: null } };
      }
      if (third === "versions" && method === "GET") {
        const record = secrets.get(key(name));
        if (!record) throw notFound(name);
        return {
          status: 200,
          body: { value: record.versions.map((v) => item(origin, record.name, v, true)), nextLink: null },
        };
      }
      if (third === undefined && method === "PUT")
        return { status: 200, body: setSecret(origin, name, parseJson(raw) as SetBody) };
      if (third === undefined && method === "DELETE") {
        const record = secrets.get(key(name));
        if (!record) throw notFound(name);
        secrets.delete(key(name));
        disarmExpiry(record.name);
        const now = nowSeconds();
        const d: DeletedRecord = { record, deletedDate: now, scheduledPurgeDate: now + retentionSeconds };
        deleted.set(key(name), d);
        return { status: 200, body: deletedBundle(origin, d, false) };
      }
      if (fourth === undefined && (method === "GET" || method === "PATCH")) {
        const version = third ?? "";
        const v = findVersion(name, version);
        const recordName = secrets.get(key(name))?.name ?? name;
        if (method === "GET") {
          if (!v.attributes.enabled)
            throw new VaultError(403, "Forbidden", "Operation get is not allowed on a disabled secret.");
          return { status: 200, body: bundle(origin, recordName, v, true) };
        }
        const patch = parseJson(raw) as SetBody;
        if (patch.contentType !== undefined) v.contentType = validContentType(patch.contentType);
        if (patch.tags !== undefined) v.tags = validTags(patch.tags);
        if (patch.attributes) {
          if (typeof patch.attributes.enabled === "boolean") v.attributes.enabled = patch.attributes.enabled;
          if (patch.attributes.nbf !== undefined) v.attributes.nbf = optionalSeconds(patch.attributes.nbf);
          if (patch.attributes.exp !== undefined) v.attributes.exp = optionalSeconds(patch.attributes.exp);
        }
        v.attributes.updated = nowSeconds();
        const record = secrets.get(key(name));
        if (record && patch.attributes?.exp !== undefined) armExpiry(record);
        return { status: 200, body: bundle(origin, recordName, v, false) };
      }
    }
    if (collection === "deletedsecrets") {
      if (name === "" && method === "GET") {
        return {
          status: 200,
          body: { value: [...deleted.values()].map((d) => deletedBundle(origin, d, false)), nextLink: null },
        };
      }
      const d = deleted.get(key(name));
      if (!d) throw new VaultError(404, "SecretNotFound", `Deleted Secret not found: ${name}`);
      if (third === undefined && method === "GET")
        return { status: 200, body: deletedBundle(origin, d, false) };
      if (third === undefined && method === "DELETE") {
        deleted.delete(key(name));
        return { status: 204 };
      }
      if (third === "recover" && method === "POST") {
        deleted.delete(key(name));
        secrets.set(key(name), d.record);
        armExpiry(d.record);
        return {
          status: 200,
          body: bundle(
            origin,
            d.record.name,
            d.record.versions[d.record.versions.length - 1] as SecretVersion,
            false,
          ),
        };
      }
    }
    throw new VaultError(400, "BadParameter", `Unsupported request: ${method} ${url.pathname}`);
  };

  const handler = (req: IncomingMessage, res: ServerResponse, raw: Buffer) => {
    requests += 1;
    const token = bearerToken(req);
    if (!token) {
      // Key Vault's challenge: the SDK learns the tenant and resource from it, then retries with a token.
      sendJson(
        res,
        401,
        { error: { code: "Unauthorized", message: "AKV10000: Request is missing a Bearer or PoP token." } },
        {
          "www-authenticate": `Bearer authorization="https://login.microsoftonline.com/${tenantId}", resource="https://vault.azure.net"`,
        },
      );
      return;
    }
    if (!accept(token)) {
      sendJson(res, 401, { error: { code: "Unauthorized", message: "AKV10032: Invalid issuer." } });
      return;
    }
    const fault = faults[0];
    if (fault) {
      fault.count -= 1;
      if (fault.count <= 0) faults.shift();
      const code = fault.status === 429 ? "Throttled" : "ServiceUnavailable";
      const headers: Record<string, string> =
        fault.retryAfterSeconds !== undefined ? { "retry-after": String(fault.retryAfterSeconds) } : {};
      sendJson(res, fault.status, { error: { code, message: "injected fault" } }, headers);
      return;
    }
    try {
      const { status, body } = route(req, raw);
      if (status === 204) {
        res.writeHead(204);
        res.end();
      } else sendJson(res, status, body);
    } catch (err) {
      if (err instanceof VaultError)
        sendJson(res, err.status, { error: { code: err.code, message: err.message } });
      else throw err;
    }
  };

  const server = await startHttpsServer(options.tls, handler, options.port);
  vaultUrl = `${server.url}/`;
  // A vault's name is the first label of its DNS name; a loopback vault has none, so its host.
  const host = new URL(vaultUrl).hostname.replace(/^\[|\]$/g, "");
  vaultName = isIP(host) !== 0 || host === "localhost" ? host : (host.split(".")[0] ?? host);
  const resourceId = `/subscriptions/${options.subscriptionId ?? "00000000-0000-4000-8000-000000000000"}/resourceGroups/${
    options.resourceGroup ?? "rg-sandbox"
  }/providers/Microsoft.KeyVault/vaults/${vaultName}`;
  topic = new EventGridTopic(resourceId, clock, options.log);
  return {
    ...server,
    async close() {
      closing = true;
      for (const name of [...expiryTimers.keys()]) disarmExpiry(name);
      topic?.close();
      await server.close();
    },
    vaultUrl,
    vaultName,
    resourceId,
    subscribeEventGrid: (o) => (topic as EventGridTopic).subscribe(o),
    tenantId,
    read(name, version = "") {
      try {
        const v = findVersion(name, version);
        return { value: v.value, version: v.version, enabled: v.attributes.enabled };
      } catch {
        return undefined;
      }
    },
    onEvent(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    injectFault(fault) {
      faults.push({
        status: fault.status,
        count: fault.count ?? 1,
        retryAfterSeconds: fault.retryAfterSeconds,
      });
    },
    get requests() {
      return requests;
    },
  };
}
