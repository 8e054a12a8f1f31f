import type { OrchestrationContext, OrchestrationHandler } from "durable-functions";
import {
  Activities,
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

export type RotateBundleStep = "read-vault" | "sync" | "record" | "done";

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
  /** The admin SVID for mTLS to the server (filled in by its rotation, a later step). */
  adminSvid?: { expiresAt: string; version?: string };
  stepSeconds: Record<string, number>;
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
    outcome: synced ? "succeeded" : "failed",
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
  if (vault) {
    const { version, ...rest } = vault;
    output.previousVersion = version;
    output.vault = rest;
  }
  return output;
};
