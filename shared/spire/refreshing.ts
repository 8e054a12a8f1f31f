import type { SpireServer } from "./types.js";

/*
 * The TCP/mTLS client is built from two Key Vault secrets: the admin X509-SVID (chain + key) and
 * the trust bundle. Both change under a long-lived worker: the SVID is renewed before it expires,
 * and the bundle gains the next CA's root before that CA signs the server's certificate. A client
 * built once per process would present an expired SVID, or fail to verify a server whose CA
 * rotated. So the client is rebuilt whenever either secret has a new version, checked at most
 * every `checkIntervalMs`, and at every call once the SVID it holds is close to its expiry.
 */

/** The Key Vault versions a client was built from (undefined: the secret carries no version). */
export interface CredentialVersions {
  adminVersion?: string;
  bundleVersion?: string;
}

export interface CredentialState extends CredentialVersions {
  /** The admin SVID's notAfter. */
  notAfter: Date;
}

/** Whether the secrets in Key Vault are not the ones the client was built from. */
export function credentialsChanged(built: CredentialVersions, current: CredentialVersions): boolean {
  return built.adminVersion !== current.adminVersion || built.bundleVersion !== current.bundleVersion;
}

/** Whether to look at Key Vault again before this call. */
export function credentialCheckDue(input: {
  built: CredentialState;
  lastCheckMs: number;
  nowMs: number;
  checkIntervalMs: number;
  /** Within this of the SVID's expiry, every call checks. */
  expiryMarginMs: number;
}): boolean {
  if (input.built.notAfter.getTime() - input.nowMs <= input.expiryMarginMs) return true;
  return input.nowMs - input.lastCheckMs >= input.checkIntervalMs;
}

export interface RefreshingSpireOptions<V extends CredentialVersions> {
  /** Reads both secrets (values and versions). */
  read(): Promise<V>;
  /** Builds a client from what `read` returned, with the SVID's notAfter. */
  build(values: V): Promise<{ server: SpireServer; notAfter: Date }>;
  checkIntervalMs?: number;
  expiryMarginMs?: number;
  /** How long a replaced client stays open for calls already under way. */
  closeDelayMs?: number;
  now?: () => number;
  /** Told when a rebuild happens, or when a check failed and the current client is kept. */
  onEvent?: (
    event: { kind: "rebuilt"; versions: CredentialVersions } | { kind: "checkFailed"; error: unknown },
  ) => void;
}

export interface RefreshingSpire {
  get(): Promise<SpireServer>;
  /** How many clients have been built (the first included). */
  readonly builds: number;
  close(): Promise<void>;
}

export function refreshingSpire<V extends CredentialVersions>(
  options: RefreshingSpireOptions<V>,
): RefreshingSpire {
  const now = options.now ?? Date.now;
  const checkIntervalMs = options.checkIntervalMs ?? 60_000;
  const expiryMarginMs = options.expiryMarginMs ?? 5 * 60_000;
  const closeDelayMs = options.closeDelayMs ?? 30_000;
  let current: { server: SpireServer; state: CredentialState; checkedAt: number } | undefined;
  let pending: Promise<SpireServer> | undefined;
  let builds = 0;
  const retired = new Set<SpireServer>();

  async function buildFrom(values: V): Promise<SpireServer> {
    const { server, notAfter } = await options.build(values);
    builds++;
    const previous = current?.server;
    current = {
      server,
      state: { adminVersion: values.adminVersion, bundleVersion: values.bundleVersion, notAfter },
      checkedAt: now(),
    };
    if (previous) {
      retired.add(previous);
      const timer = setTimeout(() => {
        retired.delete(previous);
        void previous.close().catch(() => undefined);
      }, closeDelayMs);
      timer.unref?.();
      options.onEvent?.({ kind: "rebuilt", versions: { ...current.state } });
    }
    return server;
  }

  async function refresh(): Promise<SpireServer> {
    if (!current) return buildFrom(await options.read());
    const held = current;
    let values: V;
    try {
      values = await options.read();
    } catch (error) {
      // Key Vault unreachable: the client in hand may still work; try again next call.
      options.onEvent?.({ kind: "checkFailed", error });
      return held.server;
    }
    if (!credentialsChanged(held.state, values)) {
      held.checkedAt = now();
      return held.server;
    }
    return buildFrom(values);
  }

  return {
    get() {
      if (
        current &&
        !credentialCheckDue({
          built: current.state,
          lastCheckMs: current.checkedAt,
          nowMs: now(),
          checkIntervalMs,
          expiryMarginMs,
        })
      ) {
        return Promise.resolve(current.server);
      }
      pending ??= refresh().finally(() => {
        pending = undefined;
      });
      return pending;
    },
    get builds() {
      return builds;
    },
    async close() {
      const all = [current?.server, ...retired].filter((s): s is SpireServer => s !== undefined);
      retired.clear();
      current = undefined;
      await Promise.all(all.map((s) => s.close().catch(() => undefined)));
    },
  };
}
