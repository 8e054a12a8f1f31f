/*
 * Names and input/output shapes of the activities. Orchestrations import only this file (names and
 * types), never an activity's implementation, so they stay free of I/O.
 *
 * Secrets never cross this boundary: a join token is created and applied inside one activity and
 * only its SHA-256 comes back; agents are referred to by the SHA-256 of their join-token agent ID
 * (which embeds the token).
 */

// Type-only: erased at build, so an orchestration importing this file still imports no I/O.
import type { RotationAction } from "../shared/trust/decision.js";
import type { RotationRecord } from "../shared/trust/ledger.js";
import type { ServerBundleSummary } from "../shared/trust/summary.js";
import type { VaultBundleState } from "../shared/trust/vault.js";

export const Activities = {
  reattestPrepare: "reattestPrepare",
  reattestApplyToken: "reattestApplyToken",
  reattestRevisionState: "reattestRevisionState",
  reattestVerify: "reattestVerify",
  reattestEvictOld: "reattestEvictOld",
  reattestRetireRevisions: "reattestRetireRevisions",
  ledgerRecord: "ledgerRecord",
  bundleReadVault: "bundleReadVault",
  bundleSync: "bundleSync",
  bundleRecord: "bundleRecord",
  adminSvidEnsure: "adminSvidEnsure",
} as const;

/** Activities return failures they know are permanent instead of throwing them, so retries only
 * ever repeat transient errors (throttling, 5xx, role propagation 403s). */
export type ActivityResult<T> =
  | { ok: true; value: T }
  | { ok: false; error: { code: string; message: string } };

export interface PrepareInput {
  app: string;
  /** A deploy in run-command mode does the SPIRE work: list no alias entries (previousAgents []). */
  skipSpire?: boolean;
}
export interface PrepareOutput {
  app: string;
  alias: string;
  workloadId: string;
  /** The agents currently holding the app's alias, each named by the SHA-256 of its join token. */
  previousAgents: string[];
}

export interface ApplyTokenInput {
  app: string;
  runId: string;
  /**
   * A deploy's pre-created token: the Key Vault secret (versioned URL) holding it and its SHA-256.
   * The app's secret then references the vault instead of carrying the value, and no token is made.
   */
  token?: { secretUrl: string; tokenSha256: string };
  /** Container → new image, in the same PUT (a deploy). */
  images?: Record<string, string>;
}
export interface ApplyTokenOutput {
  tokenSha256: string;
  revisionName: string;
  /** True when a retried activity found its revision already applied and changed nothing. */
  alreadyApplied: boolean;
}

export interface RevisionStateInput {
  app: string;
  revisionName: string;
}
export interface RevisionStateOutput {
  /** Running: its replicas run; Failed: it will not come up; Pending: still provisioning/starting. */
  state: "Running" | "Failed" | "Pending";
  /** Why, naming the states Azure reported (an unrecognised one included). */
  detail: string;
  /** The revision's runningState as Azure reported it, when it reported one. */
  runningState?: string;
}

export interface VerifyInput {
  app: string;
  alias: string;
  workloadId: string;
  tokenSha256: string;
  /** ISO time the run began: the workload SVID must be signed after it. */
  since: string;
}
export interface VerifyOutput {
  agentAttested: boolean;
  /**
   * Undefined when no Log Analytics workspace is configured (the check is skipped); "unknown" when
   * the SPIRE server's log level hides the signings (svidNote says so and what to change).
   */
  svidSigned?: boolean | "unknown";
  /** Why svidSigned is "unknown", for the run's status and output. */
  svidNote?: string;
}

export interface EvictInput {
  app: string;
  alias: string;
  keepTokenSha256: string;
}
export interface EvictOutput {
  evicted: number;
  remaining: number;
}

export interface RetireInput {
  app: string;
  /** The re-attestation's new revision: never deactivated. */
  keepRevision: string;
}
export interface RetireOutput {
  mode: "Single" | "Multiple";
  /** Old revisions this call deactivated (a retry finds them inactive and lists none). */
  retired: string[];
  /** Old revisions left active because traffic or a label still points at them. */
  keptWithTraffic: string[];
  /** Revisions created after the kept one (someone else's deploy), left alone. */
  keptNewer: string[];
  /** What was done and why, for a person. */
  detail: string;
}

export type ReattestTrigger = "http" | "alert" | "sweep" | "deploy";

export interface LedgerRecordInput {
  app: string;
  runId: string;
  trigger: ReattestTrigger;
  reason?: string;
  startedAt: string;
  finishedAt: string;
  outcome: "succeeded" | "failed";
  failure?: string;
  /** A succeeded run that left something for a person (e.g. a revision kept because it takes traffic). */
  warning?: string;
  stepSeconds: Record<string, number>;
  previousAgents: number;
  newAgentSha256?: string;
}

// ---- trust bundle rotation

export type { RotationAction, RotationRecord, ServerBundleSummary, VaultBundleState };

/** bundleReadVault takes no input; its output is the current version, or null when there is none. */
export type BundleReadVaultOutput = VaultBundleState | null;

export interface BundleSyncInput {
  /** The version the run compares with (from bundleReadVault), null when there was none. */
  vault: Pick<VaultBundleState, "version" | "fingerprints" | "source"> | null;
}
export interface BundleSyncOutput {
  server: ServerBundleSummary;
  action: RotationAction;
  written: boolean;
  /** The Key Vault version current after the step (the new one when written). */
  version?: string;
  /** True when a retried step found its version already written and wrote nothing more. */
  alreadyWritten?: boolean;
  /** Roots the server has that the compared version lacked, and the reverse. */
  added: string[];
  removed: string[];
}

export type BundleRecordInput = RotationRecord;

// ---- the admin SVID (TCP/mTLS mode)

export interface AdminSvidEnsureInput {
  /** Tags the version this run writes, so a retried attempt recognises its own. */
  runId: string;
}
/** Non-secret facts only: never the key or the certificate. */
export interface AdminSvidEnsureOutput {
  /** none: not TCP mode; keep: nothing minted; rotate: over the API; bootstrap: via the VM. */
  lastAction: "none" | "keep" | "rotate" | "bootstrap";
  reason: string;
  minted: "none" | "api" | "run-command+api";
  version?: string;
  spiffeId?: string;
  notBefore?: string;
  expiresAt?: string;
  renewAt?: string;
  serial?: string;
  /** True when a retried attempt found this run's version already written. */
  alreadyWritten?: boolean;
  /** Seconds from reading the bundle to holding the new SVID. */
  mintSeconds?: number;
  /** Where the server's bundle (to verify it) came from. */
  bundleVia?: "api" | "run-command";
  note?: string;
}

// ---- health sweep

export const SweepActivities = {
  sweepObserve: "sweepObserve",
  sweepProbeServer: "sweepProbeServer",
  sweepRestartServer: "sweepRestartServer",
  sweepRecord: "sweepRecord",
} as const;

export type SweepModeName = "repair" | "observe";
export type SweepServerVerdict = "healthy" | "unreachable" | "hung" | "ca-reset";
export type SweepServerAction = "none" | "restart-server" | "rotate-and-reattest-all";

export interface SweepObserveInput {
  sweepId: string;
  mode: SweepModeName;
}

/** One sweep's findings, compact: verdict counts and the plan, never the whole snapshot. */
export interface SweepObserveOutput {
  takenAt: string;
  server: { verdict: SweepServerVerdict; reason: string };
  /** The server's root fingerprints before anything was done: from this probe, else the last sweep's. */
  knownFingerprints: string[];
  appsListed: boolean;
  managedApps: number;
  counts: Record<string, number>;
  /** Calls made to gather the snapshot, by kind. */
  calls: Record<string, number>;
  problems: string[];
  plan: {
    serverAction: SweepServerAction;
    reattest: Array<{ app: string; verdict: string }>;
    /** Apps that needed a repair and were left alone, counted by why. */
    deferred: Record<string, number>;
  };
  /** Verdict changes since the last sweep (also written as events). */
  changes: number;
}

export interface SweepProbeOutput {
  state: "healthy" | "unreachable" | "timeout";
  detail: string;
  fingerprints: string[];
}

export interface SweepRestartInput {
  sweepId: string;
}
export interface SweepRestartOutput {
  /** The run-command's outcome: restarted means `docker restart` exited 0. */
  restarted: boolean;
  detail: string;
}

export interface SweepAction {
  app: string;
  action: "reattest";
  verdict: string;
  /** succeeded / failed (the re-attestation's outcome) or not-started (its instance was busy). */
  outcome: string;
  svidSigned?: boolean | "unknown";
  failure?: string;
}

export interface SweepRecordInput {
  sweepId: string;
  trigger: string;
  mode: SweepModeName;
  startedAt: string;
  finishedAt: string;
  server: { verdict: SweepServerVerdict; reason: string };
  serverAction: SweepServerAction;
  serverActionOutcome?: string;
  /** The server's roots after the sweep (what the next sweep compares a restart with). */
  serverFingerprints?: string[];
  counts: Record<string, number>;
  calls: Record<string, number>;
  actions: SweepAction[];
}
