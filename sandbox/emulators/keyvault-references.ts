/**
 * Container Apps' Key Vault-referenced secrets ({name, keyVaultUrl, identity}): the platform
 * fetches the value with the app's managed identity. A versioned URL pins that version; a
 * versionless one follows the latest version but the platform only refreshes it every 30 minutes
 * (on the sandbox clock, so a time-scaled run sees it sooner), and a running replica keeps what it
 * started with until a new revision or a restart. The Container Apps simulator calls
 * `resolve()` whenever it starts a replica.
 */
import type { TokenCredential } from "@azure/core-auth";
import { SecretClient } from "@azure/keyvault-secrets";
import { SandboxTokenCredential } from "../azure/credential.js";
import { REAL_TIME, type ScaledClock } from "../azure/logs/clock.js";

export const KEY_VAULT_REFRESH_MS = 30 * 60_000;

export interface KeyVaultSecretReference {
  /** https://<vault>/secrets/<name>[/<version>] */
  keyVaultUrl: string;
  /** "system" or a user-assigned identity's resource id. */
  identity: string;
}

export interface ResolvedSecret {
  value: string;
  /** The version the value came from. */
  version: string;
  /** Whether the URL named a version (then the value never changes). */
  pinned: boolean;
  /** Sandbox-clock ms when the platform fetched it. */
  fetchedAt: number;
}

export type KeyVaultReferenceErrorCode =
  | "InvalidKeyVaultUrl"
  | "UnknownVault"
  | "IdentityNotAuthorized"
  | "SecretNotFound"
  | "SecretDisabled"
  | "FetchFailed";

export class KeyVaultReferenceError extends Error {
  override readonly name = "KeyVaultReferenceError";
  constructor(
    readonly code: KeyVaultReferenceErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface VaultEndpoint {
  /** The vault URL the sandbox serves, e.g. https://127.0.0.1:8443/ */
  url: string;
  /** Other host names that mean this vault (e.g. myvault.vault.azure.net). */
  aliases?: readonly string[];
}

export interface KeyVaultReferenceResolverOptions {
  vaults: readonly VaultEndpoint[];
  /** PEM of the CA the vault's certificate chains to. */
  caPem: string;
  clock?: ScaledClock;
  /** Platform refresh interval of versionless references (default 30 minutes, sandbox clock). */
  refreshIntervalMs?: number;
  /** Which identities may read secrets (default: any). A refusal fails like a missing role assignment. */
  isAuthorized?: (identity: string, vaultUrl: string) => boolean;
  /** The credential the platform uses for an identity (default: the sandbox credential). */
  credentialFor?: (identity: string) => TokenCredential;
}

interface ParsedReference {
  vaultUrl: string;
  name: string;
  version: string | undefined;
}

const USER_ASSIGNED =
  /^\/subscriptions\/[^/]+\/resourcegroups\/[^/]+\/providers\/microsoft\.managedidentity\/userassignedidentities\/[^/]+$/i;

export class KeyVaultReferenceResolver {
  private readonly clock: ScaledClock;
  private readonly refreshMs: number;
  private readonly cache = new Map<string, ResolvedSecret>();
  private readonly clients = new Map<string, SecretClient>();
  private fetches = 0;

  constructor(private readonly options: KeyVaultReferenceResolverOptions) {
    this.clock = options.clock ?? REAL_TIME;
    this.refreshMs = options.refreshIntervalMs ?? KEY_VAULT_REFRESH_MS;
  }

  /** How many times a value was fetched from the vault (cache misses and refreshes). */
  get fetchCount(): number {
    return this.fetches;
  }

  parse(keyVaultUrl: string): ParsedReference {
    let url: URL;
    try {
      url = new URL(keyVaultUrl);
    } catch {
      throw new KeyVaultReferenceError("InvalidKeyVaultUrl", `'${keyVaultUrl}' is not a URL`);
    }
    const m = /^\/secrets\/([0-9A-Za-z-]{1,127})(?:\/([0-9a-f]{32}))?\/?$/.exec(url.pathname);
    if (url.protocol !== "https:" || !m || url.search !== "") {
      throw new KeyVaultReferenceError(
        "InvalidKeyVaultUrl",
        `'${keyVaultUrl}' is not a Key Vault secret URL (https://<vault>/secrets/<name>[/<version>])`,
      );
    }
    const vault = this.options.vaults.find((v) => {
      const own = new URL(v.url);
      return own.host === url.host || (v.aliases ?? []).some((a) => a === url.host || a === url.hostname);
    });
    if (!vault) throw new KeyVaultReferenceError("UnknownVault", `no vault at ${url.host} in the sandbox`);
    return { vaultUrl: vault.url, name: m[1] ?? "", version: m[2] };
  }

  private client(vaultUrl: string, identity: string): SecretClient {
    const id = `${vaultUrl}|${identity}`;
    let c = this.clients.get(id);
    if (!c) {
      const credential =
        this.options.credentialFor?.(identity) ?? new SandboxTokenCredential({ subject: identity });
      c = new SecretClient(vaultUrl, credential, {
        tlsOptions: { ca: this.options.caPem },
        disableChallengeResourceVerification: true,
        retryOptions: { maxRetries: 2 },
      });
      this.clients.set(id, c);
    }
    return c;
  }

  /** The value a replica started now would get for this reference. */
  async resolve(ref: KeyVaultSecretReference): Promise<ResolvedSecret> {
    const identity = ref.identity.trim();
    if (identity !== "system" && !USER_ASSIGNED.test(identity)) {
      throw new KeyVaultReferenceError(
        "IdentityNotAuthorized",
        `identity '${ref.identity}' is neither "system" nor a user-assigned identity resource id`,
      );
    }
    const parsed = this.parse(ref.keyVaultUrl);
    const cacheKey = `${parsed.vaultUrl}|${parsed.name}|${parsed.version ?? ""}|${identity}`;
    const now = this.clock.now();
    const cached = this.cache.get(cacheKey);
    if (cached && (cached.pinned || now - cached.fetchedAt < this.refreshMs)) return cached;

    if (this.options.isAuthorized && !this.options.isAuthorized(identity, parsed.vaultUrl)) {
      throw new KeyVaultReferenceError(
        "IdentityNotAuthorized",
        `Unable to get value using Managed identity ${identity} for secret ${parsed.name}: the identity has no access to the vault`,
      );
    }
    this.fetches += 1;
    let secret: Awaited<ReturnType<SecretClient["getSecret"]>>;
    try {
      secret = await this.client(parsed.vaultUrl, identity).getSecret(parsed.name, {
        version: parsed.version,
      });
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      const code: KeyVaultReferenceErrorCode =
        status === 404 ? "SecretNotFound" : status === 403 ? "SecretDisabled" : "FetchFailed";
      throw new KeyVaultReferenceError(
        code,
        `Unable to get value using Managed identity ${identity} for secret ${parsed.name}${parsed.version ? `/${parsed.version}` : ""}: ${(err as Error).message}`,
      );
    }
    const resolved: ResolvedSecret = {
      value: secret.value ?? "",
      version: secret.properties.version ?? "",
      pinned: parsed.version !== undefined,
      fetchedAt: now,
    };
    this.cache.set(cacheKey, resolved);
    return resolved;
  }

  /** Forgets every cached value (as if the platform refreshed everything now). */
  clear(): void {
    this.cache.clear();
  }
}
