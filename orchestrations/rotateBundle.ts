import type { OrchestrationContext, OrchestrationHandler } from "durable-functions";
import {
  Activities,
  type AdminSvidEnsureOutput,
  type BundleReadVaultOutput,
  type BundleRecordInput,
  type BundleSyncOutput,
  type RotationAction,
  type ServerBundleSummary,
  type VaultBundleState,
} from "../activities/contracts.js";
import { call, RunFailed, stepTracker } from "./activity-call.js";
import type { RotateBundleInput } from "./rotateBundle.start.js";

/*
 * Keeps the trust bundle secret in Key Vault equal to the SPIRE server's bundle: read the current
 * version → read the server's bundle and write a new version only if its roots differ → record
 * the run (and a CA reset) in the fleet table. One instance at a time (rotateBundle.start.ts).
 * Apps are never touched: attested agents get bundle updates from the server itself, and a new
 * agent is only ever started by a re-attestation, which pins the newest version.
 */

export type RotateBundleStep = "read-vault" | "sync" | "admin-svid" | "record" | "done";

export interface RotateBundleStatus {
  step: RotateBundleStep;
  trigger: RotateBundleInput["trigger"];
  reason: string;
  startedAt: string;
  stepSeconds: Record<string, number>;
  vaultVersion?: string;
  action?: RotationAction;
}

export interface RotateBundleOutput {
  outcome: "succeeded" | "failed";
  failure?: string;
  trigger: RotateBundleInput["trigger"];
  reason: string;
  action?: RotationAction;
  /** True when this run wrote a new Key Vault version. */
  written: boolean;
  /** The Key Vault version current after the run. */
  version?: string;
  /** The version the run compared with (undefined: there was none). */
  previousVersion?: string;
  /** The compared version's roots, from its tags (or its value when untagged). */
  vault?: Omit<VaultBundleState, "version">;
  server?: ServerBundleSummary;
  /** Whether Key Vault's current version holds exactly the server's roots after the run. */
  match: boolean;
  /** Whether it did before the run. */
  matchedBefore?: boolean;
  /** Set when none of the compared version's roots was in the server's bundle. */
  caReset?: { vaultRoots: string[]; serverRoots: string[] };
  /** The admin SVID for mTLS to the server after the run; null when the app uses none (adminSvidNote says why). */
  adminSvid?: AdminSvidSummary | null;
  adminSvidNote?: string;
  stepSeconds: Record<string, number>;
}

/** Non-secret facts of the admin SVID: Key Vault's version after the run and what the run did. */
export interface AdminSvidSummary {
  version?: string;
  spiffeId?: string;
  expiresAt?: string;
  renewAt?: string;
  lastAction: AdminSvidEnsureOutput["lastAction"];
  reason: string;
  minted: AdminSvidEnsureOutput["minted"];
  mintSeconds?: number;
}

function adminSummary(a: AdminSvidEnsureOutput): AdminSvidSummary {
  return {
    ...(a.version ? { version: a.version } : {}),
    ...(a.spiffeId ? { spiffeId: a.spiffeId } : {}),
    ...(a.expiresAt ? { expiresAt: a.expiresAt } : {}),
    ...(a.renewAt ? { renewAt: a.renewAt } : {}),
    lastAction: a.lastAction,
    reason: a.reason,
    minted: a.minted,
    ...(a.mintSeconds !== undefined ? { mintSeconds: a.mintSeconds } : {}),
  };
}

export const rotateBundleOrchestrator: OrchestrationHandler = function* (context: OrchestrationContext) {
  const input = context.df.getInput() as RotateBundleInput;
  const startedAt = context.df.currentUtcDateTime;
  const runId = `${context.df.instanceId}@${startedAt.toISOString()}`;
  const status: RotateBundleStatus = {
    step: "read-vault",
    trigger: input.trigger,
    reason: input.reason,
    startedAt: startedAt.toISOString(),
    stepSeconds: {},
  };
  const enter = stepTracker<RotateBundleStep>(context, status);

  let vault: BundleReadVaultOutput = null;
  let synced: BundleSyncOutput | undefined;
  let failure: string | undefined;
  try {
    vault = yield* call<BundleReadVaultOutput>(context, Activities.bundleReadVault, null);
    status.vaultVersion = vault?.version;
    enter("sync");
    synced = yield* call<BundleSyncOutput>(context, Activities.bundleSync, {
      vault: vault
        ? { version: vault.version, fingerprints: vault.fingerprints, source: vault.source }
        : null,
    });
    status.action = synced.action;
  } catch (err) {
    if (!(err instanceof RunFailed)) throw err;
    failure = err.message;
  }
  // After the bundle, and even when its sync failed: the admin SVID lapsing would cut the app off
  // the server, and its bootstrap reads the server's bundle itself.
  enter("admin-svid");
  let admin: AdminSvidEnsureOutput | undefined;
  let adminFailure: string | undefined;
  try {
    admin = yield* call<AdminSvidEnsureOutput>(context, Activities.adminSvidEnsure, { runId });
  } catch (err) {
    if (!(err instanceof RunFailed)) throw err;
    adminFailure = `admin SVID: ${err.message}`;
    failure = [failure, adminFailure].filter(Boolean).join("; ");
  }
  enter("record");

  const vaultRoots = vault?.fingerprints ?? [];
  const serverRoots = synced?.server.fingerprints ?? [];
  const record: BundleRecordInput = {
    runId,
    trigger: input.trigger,
    reason: input.reason,
    startedAt: startedAt.toISOString(),
    finishedAt: context.df.currentUtcDateTime.toISOString(),
    action: synced?.action ?? "failed",
    version: synced?.version ?? vault?.version,
    previousVersion: vault?.version,
    written: synced?.written ?? false,
    serverFingerprints: serverRoots,
    vaultFingerprints: vaultRoots,
    ...(failure ? { failure } : {}),
  };
  try {
    yield* call(context, Activities.bundleRecord, record);
  } catch (err) {
    if (!(err instanceof RunFailed)) throw err;
    // What was written stands even if the fleet table is unavailable; say so in the output.
    failure = [failure, `fleet table not updated: ${err.message}`].filter(Boolean).join("; ");
  }
  enter("done");

  const output: RotateBundleOutput = {
    outcome: synced && !adminFailure ? "succeeded" : "failed",
    trigger: input.trigger,
    reason: input.reason,
    written: synced?.written ?? false,
    match: synced !== undefined,
    stepSeconds: status.stepSeconds,
  };
  if (failure) output.failure = failure;
  if (synced) {
    output.action = synced.action;
    output.server = synced.server;
    output.matchedBefore = synced.action === "unchanged" || synced.action === "retag";
    if (synced.version) output.version = synced.version;
    if (synced.action === "ca-reset") output.caReset = { vaultRoots, serverRoots };
  }
  if (admin) {
    if (admin.lastAction === "none") {
      output.adminSvid = null;
      output.adminSvidNote = admin.reason;
    } else output.adminSvid = adminSummary(admin);
  }
  if (vault) {
    const { version, ...rest } = vault;
    output.previousVersion = version;
    output.vault = rest;
  }
  return output;
};
