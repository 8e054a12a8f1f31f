/*
 * What one health sweep sees of the fleet, gathered in a handful of paged calls (one Logs query,
 * the server's health and bundle, ListAgents, ListEntries, the managed apps, Key Vault's roots).
 * Agents are named by `agentRef` (the SHA-256 of their join token): a join-token agent's SPIFFE ID
 * embeds the token, so the raw ID never enters a snapshot, a log line or durable history.
 */

/** A Container App as the app model and ARM see it. */
export type SnapshotApp =
  | {
      name: string;
      managed: true;
      /** spiffe://<td>/agent/<app>: the node alias its join token creates. */
      alias: string;
      workloadId: string;
      latestRevision?: string;
      /** Restarts of the latest revision's replicas, summed (a crash loop shows here first). */
      restartCount: number;
    }
  | { name: string; managed: false; reason: string };

export interface SnapshotAgent {
  /** SHA-256 of the agent's join token (agentRef). */
  ref: string;
  /** The agent's own SVID expiry: SPIRE's only liveness signal. */
  expiresAt?: Date;
  banned: boolean;
}

export interface SnapshotEntry {
  spiffeId: string;
  /** The parent: an agentRef for an alias entry (parented to a join-token agent), else the ID. */
  parent: string;
  /** Seconds; 0 = the server's default. */
  x509SvidTtl: number;
  createdAt?: Date;
}

export interface SnapshotLogs {
  /** False when the query failed or answered PartialError: nothing log-based may be concluded. */
  complete: boolean;
  /** Why not complete (the error's code and first line). */
  problem?: string;
  /** Per workload SPIFFE ID: its last signing in the window and how many. */
  signings: Map<string, { lastAt: Date; count: number }>;
  /** Per agentRef: its last "Renewing agent SVID" in the window. */
  renewals: Map<string, Date>;
  /** Per app: sidecar attestation failures and crashes in the window. */
  failures: Map<string, { count: number; lastAt: Date; revision: string }>;
  /** The server's last log line of any kind in the window (undefined: none). */
  serverLastLineAt?: Date;
}

export type ServerProbe =
  | { state: "healthy"; bundleFingerprints: string[] }
  /** The API refused or failed the call (connection refused, unhealthy answer). */
  | { state: "unreachable"; detail: string }
  /** The API did not answer within its deadline: a frozen process keeps its socket open. */
  | { state: "timeout"; detail: string };

export interface SweepSnapshot {
  /** Undefined when listing the apps failed: no app can be classified. */
  apps?: SnapshotApp[];
  /** Undefined when ListAgents failed. */
  agents?: SnapshotAgent[];
  /** Undefined when ListEntries failed. */
  entries?: SnapshotEntry[];
  /** Undefined when no workspace is configured. */
  logs?: SnapshotLogs;
  server: ServerProbe;
  /** SHA-256 fingerprints of the roots in Key Vault's current bundle; undefined when unreadable or absent. */
  vaultFingerprints?: string[];
}
