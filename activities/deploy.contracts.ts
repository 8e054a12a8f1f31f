/*
 * Names and shapes of the deploy's own activities (the re-attestation's are in ./contracts.ts).
 * A separate file so the deploy adds no lines to the shared one. No secrets cross it: a token is
 * named by its Key Vault secret URL and its SHA-256.
 */
import type { DeployTarget, Selection } from "../shared/deploy/selection.js";

export const DeployActivities = {
  deployDiscover: "deployDiscover",
  deployServerHealth: "deployServerHealth",
  deployEntriesAndTokens: "deployEntriesAndTokens",
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
