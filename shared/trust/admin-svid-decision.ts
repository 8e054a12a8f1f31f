/*
 * Whether the product's admin X509-SVID (its mTLS credential for the SPIRE Server API over TCP)
 * needs a new one, and how to get it. Pure: the Key Vault secret's state against the clock and
 * the settings. A missing or unusable SVID can only be replaced by a bootstrap on the VM (the API
 * refuses a caller without a valid admin SVID); a valid one renews itself over the API at half its
 * lifetime, so a failed renewal leaves the other half to try again before anything lapses.
 */

/** What Key Vault's current version of the admin secret holds (key material never included). */
export type AdminSecretState =
  | { kind: "missing" }
  /** A version exists but holds no usable chain + matching key (problem says what is wrong). */
  | { kind: "unreadable"; version: string; problem: string }
  | {
      kind: "present";
      version: string;
      spiffeId: string;
      notBefore: Date;
      notAfter: Date;
      /** The secret's own expiresOn, when set: the SVID is not trusted past it either. */
      expiresOn?: Date;
    };

export type AdminSvidAction =
  /** The app does not use the Server API over TCP: no admin SVID is needed. */
  | "none"
  /** No usable SVID: mint a short one on the VM (run-command), then the real one over the API. */
  | "bootstrap"
  /** A valid SVID past half its life: mint the next one over the API, authenticated by it. */
  | "rotate"
  | "keep";

export interface AdminSvidDecision {
  action: AdminSvidAction;
  reason: string;
  /** When a `keep` becomes a `rotate` (the half-life point); unset when there is no valid SVID. */
  renewAt?: Date;
}

export interface AdminSvidDecisionInput {
  /** SPIRE_API=grpc with SPIRE_SERVER_ADDRESS (TCP with mTLS). */
  tcpMode: boolean;
  state: AdminSecretState;
  now: Date;
  /** SPIRE_ADMIN_SPIFFE_ID: an SVID for another ID is not the one the server's admin_ids lists. */
  spiffeId: string;
  /** ADMIN_SVID_TTL_SECONDS (only used to explain; the SVID's own times decide). */
  ttlSeconds: number;
}

const iso = (d: Date) => d.toISOString();

/** The half-life point of [notBefore, min(notAfter, expiresOn)]. */
export function adminSvidRenewAt(state: Extract<AdminSecretState, { kind: "present" }>): Date {
  const end = effectiveExpiry(state);
  return new Date(state.notBefore.getTime() + (end.getTime() - state.notBefore.getTime()) / 2);
}

function effectiveExpiry(state: Extract<AdminSecretState, { kind: "present" }>): Date {
  return state.expiresOn && state.expiresOn < state.notAfter ? state.expiresOn : state.notAfter;
}

export function decideAdminSvid(input: AdminSvidDecisionInput): AdminSvidDecision {
  if (!input.tcpMode) {
    return { action: "none", reason: "the app does not use the Server API over TCP: no admin SVID needed" };
  }
  const { state, now } = input;
  if (state.kind === "missing") {
    return { action: "bootstrap", reason: "the admin SVID secret does not exist" };
  }
  if (state.kind === "unreadable") {
    return { action: "bootstrap", reason: `version ${state.version} is unusable: ${state.problem}` };
  }
  if (state.spiffeId !== input.spiffeId) {
    return {
      action: "bootstrap",
      reason: `version ${state.version} is for ${state.spiffeId}, not the configured ${input.spiffeId}`,
    };
  }
  const end = effectiveExpiry(state);
  if (now >= end) {
    return { action: "bootstrap", reason: `version ${state.version} expired at ${iso(end)}` };
  }
  if (now < state.notBefore) {
    // Only clock skew produces this; the server would refuse it as well.
    return {
      action: "bootstrap",
      reason: `version ${state.version} is not valid before ${iso(state.notBefore)}`,
    };
  }
  const renewAt = adminSvidRenewAt(state);
  if (now >= renewAt) {
    const why =
      end < state.notAfter
        ? `Key Vault's expiresOn ${iso(end)} is near (half of the time left to it has passed)`
        : `past half its lifetime (renew at ${iso(renewAt)}, expires ${iso(end)})`;
    return { action: "rotate", reason: `version ${state.version} is ${why}`, renewAt };
  }
  return {
    action: "keep",
    reason: `version ${state.version} is valid until ${iso(end)}; renews at ${iso(renewAt)} (ttl ${input.ttlSeconds} s)`,
    renewAt,
  };
}
