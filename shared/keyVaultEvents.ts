import { isIP } from "node:net";
import { z } from "zod";
import type { AppConfig } from "./config.js";

/*
 * Key Vault's Event Grid events (Event Grid event schema), judged against the one vault and the
 * secrets this app keeps. Facts (Microsoft Learn, "Azure Key Vault as Event Grid source" and
 * "Azure Event Grid event schema"; the event data models of Azure.Messaging.EventGrid):
 *  - envelope: id, topic (the vault's resource id,
 *    /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{name}), subject
 *    (the object's name), eventType, eventTime, data, dataVersion, metadataVersion ("1");
 *  - data: Id (https://{vault}.vault.azure.net/secrets/{name}/{version}), VaultName, ObjectType
 *    ("Secret"), ObjectName, Version, NBF and EXP (Unix seconds, or null). The docs' own sample
 *    writes "ObjectName " with a trailing space, a Version with a leading space and NBF/EXP as
 *    strings, so keys and values are trimmed and the numbers may come as text. Never the value.
 *  - SecretNearExpiry is raised 30 days before the current version's expiry, so for short-lived
 *    material it comes at once: every accepted event is a nudge to check now, never a deadline.
 * CloudEvents 1.0 deliveries are refused: the subscription must use the Event Grid schema.
 */

export const SECRET_EVENT_TYPES = [
  "Microsoft.KeyVault.SecretNewVersionCreated",
  "Microsoft.KeyVault.SecretNearExpiry",
  "Microsoft.KeyVault.SecretExpired",
] as const;

export type SecretEventType = (typeof SECRET_EVENT_TYPES)[number];

export interface KeyVaultEventScope {
  /** KEY_VAULT_URL. */
  vaultUrl: string;
  /** The secrets whose events nudge a rotation (the trust bundle; the admin SVID when used). */
  secretNames: readonly string[];
}

export type KeyVaultEventVerdict =
  | {
      kind: "rotate";
      eventId: string;
      eventType: SecretEventType;
      /** When Key Vault raised it (an Event Grid retry keeps the first time). */
      eventTime: string;
      secret: string;
      version: string;
      /** EXP of the version the event is about, when it has one. */
      expiresOn?: string;
    }
  | { kind: "ignore"; eventId: string; reason: string }
  | { kind: "reject"; problem: string };

const envelope = z.object({
  id: z.string().min(1),
  topic: z.string().min(1),
  subject: z.string(),
  eventType: z.string().min(1),
  eventTime: z.string().refine((t) => !Number.isNaN(Date.parse(t)), "not a date-time"),
  data: z.unknown(),
  dataVersion: z.string(),
  metadataVersion: z.literal("1"),
});

const unixSeconds = z
  .union([
    z.number(),
    z
      .string()
      .trim()
      .regex(/^\d+(\.\d+)?$/),
    z.null(),
  ])
  .optional()
  .transform((v) => (v === null || v === undefined ? undefined : Number(v)));

const secretData = z.object({
  id: z.string().trim().min(1),
  vaultname: z.string().trim().min(1),
  objecttype: z
    .string()
    .trim()
    .refine((t) => t.toLowerCase() === "secret", 'must be "Secret"'),
  objectname: z.string().trim().min(1),
  version: z.string().trim().min(1),
  nbf: unixSeconds,
  exp: unixSeconds,
});

const VAULT_TOPIC =
  /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.KeyVault\/vaults\/([^/]+)$/i;

/**
 * The vault's name as Key Vault's events spell it: the first label of the vault's DNS name
 * (myvault.vault.azure.net → myvault). A loopback emulator has no DNS name; its whole host stands
 * for the name.
 */
export function vaultNameOf(vaultUrl: string): string {
  const host = new URL(vaultUrl).hostname.toLowerCase().replace(/^\[|\]$/g, "");
  if (isIP(host) !== 0 || host === "localhost") return host;
  return host.split(".")[0] ?? host;
}

const issue = (error: z.ZodError, prefix: string): string => {
  const first = error.issues[0];
  const where = first?.path.length
    ? `${prefix}${first.path.join(".")}`
    : prefix.replace(/\.$/, "") || "event";
  return `${where}: ${first?.message ?? "invalid"}`;
};

/** Keys trimmed and lower-cased, so the docs' "ObjectName " and any casing of "Id" both read. */
function normalizeKeys(data: unknown): unknown {
  if (data === null || typeof data !== "object" || Array.isArray(data)) return data;
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k.trim().toLowerCase(), v]));
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** A value from the event, quoted and cut short: problem texts go to logs and HTTP answers. */
const q = (value: string): string => JSON.stringify(value.length > 120 ? `${value.slice(0, 120)}…` : value);

/** Accept, ignore or reject one delivered event; the problem text names what is wrong. */
export function classifyKeyVaultEvent(event: unknown, scope: KeyVaultEventScope): KeyVaultEventVerdict {
  const reject = (problem: string): KeyVaultEventVerdict => ({ kind: "reject", problem });
  if (event === null || typeof event !== "object" || Array.isArray(event)) {
    return reject("the event is not a JSON object in the Event Grid event schema");
  }
  if ("specversion" in event) {
    return reject(
      "the event is in the CloudEvents 1.0 schema; this function takes the Event Grid event schema (create the subscription with --event-delivery-schema eventgridschema)",
    );
  }
  const env = envelope.safeParse(event);
  if (!env.success)
    return reject(`the event does not fit the Event Grid event schema: ${issue(env.error, "")}`);
  const e = env.data;
  if (!e.eventType.toLowerCase().startsWith("microsoft.keyvault.")) {
    return reject(`not a Key Vault event: eventType is ${q(e.eventType)} (from topic ${q(e.topic)})`);
  }
  const vault = vaultNameOf(scope.vaultUrl);
  const topicVault = VAULT_TOPIC.exec(e.topic)?.[1];
  if (topicVault === undefined) {
    return reject(
      `not a Key Vault event: topic ${q(e.topic)} is not a vault's resource id (/subscriptions/…/providers/Microsoft.KeyVault/vaults/<name>)`,
    );
  }
  if (!same(topicVault, vault)) {
    return reject(
      `the event names another vault: ${q(topicVault)}; this app's vault is "${vault}" (KEY_VAULT_URL)`,
    );
  }
  const eventType = SECRET_EVENT_TYPES.find((t) => same(t, e.eventType));
  if (!eventType) {
    return { kind: "ignore", eventId: e.id, reason: `${e.eventType} does not bear on the trust material` };
  }
  const d = secretData.safeParse(normalizeKeys(e.data));
  if (!d.success) {
    return reject(
      `the ${eventType} event's data does not fit Key Vault's schema: ${issue(d.error, "data.")}`,
    );
  }
  const data = d.data;
  if (!same(data.vaultname, vault)) {
    return reject(
      `the event names another vault: data.VaultName is ${q(data.vaultname)}; this app's vault is "${vault}" (KEY_VAULT_URL)`,
    );
  }
  const secret = scope.secretNames.find((n) => same(n, data.objectname));
  if (!secret) {
    return reject(
      `the event names another secret: ${q(data.objectname)}; this app keeps ${scope.secretNames.map((n) => `"${n}"`).join(" and ")}`,
    );
  }
  if (!same(e.subject, data.objectname)) {
    return reject(`the event's subject ${q(e.subject)} is not its data.ObjectName ${q(data.objectname)}`);
  }
  let id: URL;
  try {
    id = new URL(data.id);
  } catch {
    return reject(`data.Id ${q(data.id)} is not a secret identifier URL`);
  }
  const [collection, idName, idVersion] = id.pathname.split("/").filter(Boolean);
  if (!same(id.host, new URL(scope.vaultUrl).host)) {
    return reject(
      `the event names another vault: data.Id is on ${q(id.host)}, not ${new URL(scope.vaultUrl).host}`,
    );
  }
  if (collection !== "secrets" || !idName || !same(idName, data.objectname) || idVersion !== data.version) {
    return reject(`data.Id ${q(data.id)} is not secret ${q(data.objectname)} version ${q(data.version)}`);
  }
  return {
    kind: "rotate",
    eventId: e.id,
    eventType,
    eventTime: new Date(e.eventTime).toISOString(),
    secret,
    version: data.version,
    ...(data.exp !== undefined ? { expiresOn: new Date(data.exp * 1000).toISOString() } : {}),
  };
}

/** The secrets whose events concern this app: the bundle, and the admin SVID when mTLS uses one. */
export function keyVaultEventScope(config: Pick<AppConfig, "keyVault" | "spire">): KeyVaultEventScope {
  const grpc = config.spire.grpc;
  const admin = grpc?.transport === "tcp" ? grpc.adminSvidSecretName : undefined;
  return {
    vaultUrl: config.keyVault.url,
    secretNames: [config.keyVault.trustBundleSecretName, ...(admin ? [admin] : [])],
  };
}
