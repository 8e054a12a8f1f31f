/*
 * Names and shapes of the deploy's own activities (the re-attestation's are in ./contracts.ts).
 * A separate file so the deploy adds no lines to the shared one. No secrets cross it: a token is
 * named by its Key Vault secret URL and its SHA-256.
 */
import type { DeployTarget, Selection } from "../shared/deploy/selection.js";
import type { EntryDiff } from "../shared/spire/entry-reconcile.js";
import type { BundleSyncOutput } from "./contracts.js";

export const DeployActivities = {
  deployDiscover: "deployDiscover",
  deployServerHealth: "deployServerHealth",
  deployEntriesAndTokens: "deployEntriesAndTokens",
  deployProbe: "deployProbe",
  deployStartServer: "deployStartServer",
  deployRollover: "deployRollover",
  deployRecord: "deployRecord",
  deploySvidCheck: "deploySvidCheck",
} as const;

export type { DeployTarget };

export interface DiscoverInput {
  apps?: string[];
  images?: Record<string, Record<string, string>>;
}
export type DiscoverOutput = Selection & { armPages: number };

export interface ServerHealthOutput {
  healthy: boolean;
  detail: string;
}

export interface EntriesAndTokensInput {
  /** The deploy's run id: tags its tokens' Key Vault secrets so a retried activity reuses them. */
  runId: string;
  targets: Array<Omit<DeployTarget, "images">>;
  keep: string[];
  /** Run-command mode: the diff deployProbe computed, so this activity lists no entries itself. */
  diff?: Omit<EntryDiff, "providedByUnowned"> & { providedByUnowned?: string[] };
}

/*
 * Run-command mode (issue 11: at most 3 run-commands per deploy, however many apps). deployProbe
 * is run-command #1: healthcheck, bundle and every entry in one script; it syncs the bundle to Key
 * Vault itself (so the PEM never enters history) and returns the entry diff. deployEntriesAndTokens
 * with that diff is #2. deployRollover is #3: for every app, wait for its new agent and evict the
 * old ones, the SPIRE work the re-attestation children skip when a deploy starts them.
 */
export interface ProbeInput {
  targets: Array<Omit<DeployTarget, "images">>;
  keep: string[];
}
export interface ProbeOutput {
  healthy: boolean;
  detail: string;
  /** The server's container, when the server did not answer because it is not running. */
  container?: "stopped" | "missing";
  /** The bundle sync (as bundleSync reports it) and the version it compared with. */
  trust?: BundleSyncOutput & { previousVersion?: string; vaultFingerprints: string[] };
  diff?: EntryDiff;
}

export interface StartServerOutput {
  started: boolean;
  detail: string;
}

export interface RolloverInput {
  apps: Array<{ app: string; alias: string; workloadId: string; tokenSha256: string }>;
  /** On the VM, bounded: how long to wait for each new agent. */
  waitSeconds: number;
  /** ISO time the deploy began: each workload SVID must be signed after it (when logs exist). */
  since: string;
}
export interface RolloverOutput {
  apps: Array<{
    app: string;
    agentAttested: boolean;
    evicted: number;
    stale: number;
    svidSigned?: boolean | "unknown";
    svidNote?: string;
    detail?: string;
  }>;
}

export interface DeployToken {
  app: string;
  /** Versioned Key Vault secret URL holding the token. */
  secretUrl: string;
  tokenSha256: string;
  /** True when a retried activity found this run's token in Key Vault and made none. */
  reused: boolean;
}

export interface EntriesAndTokensOutput {
  entries: {
    created: number;
    existed: number;
    updated: number;
    deleted: number;
    providedByUnowned: string[];
    failures: string[];
  };
  tokens: DeployToken[];
}

/** A deploy's counts: its output's and its ledger row's. */
export interface DeployTotals {
  apps: number;
  succeeded: number;
  failed: number;
  skipped: number;
  entriesCreated: number;
  entriesUpdated: number;
  entriesDeleted: number;
  /** Join tokens made by this run (named so the operations API's redaction lets it through). */
  tokenCount: number;
  imagesChanged: number;
}

/** The deploy's own ledger row (activities/deploy-ledger.ts): no secrets, only outcomes and counts. */
export interface DeployRecordInput {
  runId: string;
  reason?: string;
  startedAt: string;
  finishedAt: string;
  outcome: "succeeded" | "partial" | "failed";
  failure?: string;
  spireAccess: "grpc" | "run-command";
  totals: DeployTotals;
  stepSeconds: Record<string, number>;
  apps: Array<{ app: string; outcome: "succeeded" | "failed" | "skipped"; reason: string }>;
}

/** Run-command mode: the workload SVID check alone (Log Analytics, no SPIRE), polled after the rollover. */
export interface SvidCheckInput {
  apps: Array<{ app: string; workloadId: string }>;
  since: string;
}
export interface SvidCheckOutput {
  apps: Array<{ app: string; svidSigned?: boolean | "unknown"; svidNote?: string }>;
}
