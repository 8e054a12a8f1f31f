import { createGrpcSpireServer } from "./grpc.js";
import type { SpireLogger, SpireServer, TrustBundle, X509Svid } from "./types.js";

/*
 * What TCP/mTLS mode needs before (or without) a usable admin SVID: the chicken-and-egg of an
 * API that only answers admins. SPIRE's Server API lets any caller GetBundle, so the bundle is read
 * over TLS with no client certificate, the server verified against Key Vault's bundle. When that
 * fails — no bundle in Key Vault yet, or a CA reset left Key Vault's roots unable to verify the
 * server — the bundle comes from `bundle show` on the VM (run-command), which ARM authenticates.
 * The admin SVID's bootstrap mints on the VM the same way.
 */

export interface TcpTarget {
  host: string;
  port: number;
}

/** The run-command adapter's calls this needs (RunCommandSpireServer has both). */
export interface VmSpire {
  getBundle(): Promise<TrustBundle>;
  mintX509SvidWithKey(spiffeId: string, ttlSeconds: number): Promise<X509Svid & { keyPem: string }>;
}

export interface TcpBootstrapOptions {
  target: TcpTarget;
  trustDomain: string;
  logger: SpireLogger;
  /** Key Vault's current trust bundle PEM; undefined when there is none. */
  readVaultBundle(): Promise<string | undefined>;
  /** The VM's run-command way in; undefined when no VM is configured (no fallback, no bootstrap). */
  vm?: () => Promise<VmSpire>;
  /** Per-call deadline of the TLS client (default 10 s). */
  callTimeoutMs?: number;
}

export interface TcpBootstrap {
  /**
   * The server's bundle: over TLS without a client certificate, else `bundle show` on the VM
   * (unless `vmFallback` is false: a status page polled every second must not queue run-commands).
   */
  getBundle(options?: {
    vmFallback?: boolean;
  }): Promise<{ bundle: TrustBundle; via: "api" | "run-command"; apiError?: string }>;
  /** A short-lived SVID minted on the VM (its key arrives sealed); throws when no VM is configured. */
  mintOnVm(spiffeId: string, ttlSeconds: number): Promise<X509Svid & { keyPem: string }>;
  /** An mTLS client authenticated by the given SVID; the caller closes it. */
  clientWith(svid: { certChainPem: string; keyPem: string }, bundlePem: string): SpireServer;
}

const firstLine = (err: unknown) => (err instanceof Error ? err.message : String(err)).split("\n")[0] ?? "";

export function tcpBootstrap(o: TcpBootstrapOptions): TcpBootstrap {
  const tls = (bundlePem: string, client?: { certChainPem: string; keyPem: string }) =>
    createGrpcSpireServer({
      target: {
        kind: "tcp",
        host: o.target.host,
        port: o.target.port,
        trustBundlePem: bundlePem,
        ...(client ? { clientCertChainPem: client.certChainPem, clientKeyPem: client.keyPem } : {}),
      },
      trustDomain: o.trustDomain,
      callTimeoutMs: o.callTimeoutMs ?? 10_000,
      // A verification failure is not going to pass on a retry: fall back at once.
      readAttempts: 1,
      logger: o.logger,
    });

  return {
    async getBundle(options = {}) {
      let apiError: string;
      try {
        const pem = await o.readVaultBundle();
        if (!pem) throw new Error("Key Vault holds no trust bundle to verify the server with");
        const anonymous = tls(pem);
        try {
          return { bundle: await anonymous.getBundle(), via: "api" as const };
        } finally {
          await anonymous.close().catch(() => undefined);
        }
      } catch (err) {
        apiError = firstLine(err);
      }
      if (options.vmFallback === false) throw new Error(`GetBundle over TCP failed: ${apiError}`);
      if (!o.vm) {
        throw new Error(
          `GetBundle over TCP failed (${apiError}) and no SPIRE VM is configured to fall back to`,
        );
      }
      o.logger.warn("GetBundle over TCP failed; reading the bundle on the VM instead", { error: apiError });
      return { bundle: await (await o.vm()).getBundle(), via: "run-command" as const, apiError };
    },
    async mintOnVm(spiffeId, ttlSeconds) {
      if (!o.vm) {
        throw new Error(
          "the admin SVID's bootstrap mints on the SPIRE VM: set SPIRE_VM_RESOURCE_GROUP and SPIRE_VM_NAME",
        );
      }
      return (await o.vm()).mintX509SvidWithKey(spiffeId, ttlSeconds);
    },
    clientWith: (svid, bundlePem) => tls(bundlePem, svid),
  };
}
