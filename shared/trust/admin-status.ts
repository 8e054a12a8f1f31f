import type { AppConfig } from "../config.js";
import type { SpireServer } from "../spire/types.js";
import { decideAdminSvid } from "./admin-svid-decision.js";
import type { AdminSecretRead } from "./admin-vault.js";

/*
 * The admin SVID as GET /api/bundle shows it: Key Vault's current version, when it renews, how it
 * was last minted (from its tags) and what the next rotation will do about it, and why.
 */

export interface AdminSvidStatus {
  version?: string;
  spiffeId?: string;
  expiresAt?: string;
  renewAt?: string;
  /** How the current version was minted: rotate (over the API) or bootstrap (via the VM); unknown when not ours. */
  lastAction?: "rotate" | "bootstrap" | "unknown";
  /** The run that wrote it (its tags). */
  writtenBy?: string;
  /** What the next rotation does: keep, rotate or bootstrap. */
  next: "keep" | "rotate" | "bootstrap";
  reason: string;
  /** Whether this worker's mTLS client authenticates as admin right now (an admin-only call). */
  clientCheck?: { ok: boolean; error?: string };
}

/** One admin-only call (list the entries of the admin ID: one small page) through `spire`. */
export async function checkAdminClient(
  spire: () => Promise<Pick<SpireServer, "listEntries">>,
  spiffeId: string,
): Promise<{ ok: boolean; error?: string }> {
  try {
    await (await spire()).listEntries({ bySpiffeId: spiffeId });
    return { ok: true };
  } catch (err) {
    return { ok: false, error: (err instanceof Error ? err.message : String(err)).split("\n")[0] ?? "" };
  }
}

/** null (with why) when the app does not use the Server API over TCP. */
export function adminSvidStatus(
  config: Pick<AppConfig, "spire">,
  read: AdminSecretRead | undefined,
  now: Date,
): { adminSvid: AdminSvidStatus | null; reason?: string } {
  const { spire } = config;
  const tcpMode = spire.api === "grpc" && spire.grpc.transport === "tcp";
  const decision = decideAdminSvid({
    tcpMode,
    state: read?.state ?? { kind: "missing" },
    now,
    spiffeId: spire.admin.spiffeId,
    ttlSeconds: spire.admin.svidTtlSeconds,
  });
  if (decision.action === "none") return { adminSvid: null, reason: decision.reason };
  const f = read?.facts;
  const lastAction =
    f?.minted === "api" ? "rotate" : f?.minted === "run-command+api" ? "bootstrap" : "unknown";
  return {
    adminSvid: {
      ...(f
        ? {
            version: f.version,
            spiffeId: f.spiffeId,
            expiresAt: f.expiresAt,
            lastAction,
            ...(f.writtenBy ? { writtenBy: f.writtenBy } : {}),
          }
        : {}),
      ...(decision.renewAt ? { renewAt: decision.renewAt.toISOString() } : {}),
      next: decision.action,
      reason: decision.reason,
    },
  };
}
