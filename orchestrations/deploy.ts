/*
 * The deploy workflow's public contract (issue 11): the HTTP body, the dry-run plan, customStatus
 * and output, then the orchestration itself. The types come first so the trigger, the CLI and the
 * sandbox's clients all agree on one shape.
 *
 *   POST /api/deploy (function key), body (all optional) DeployRequest
 *     → 202 DeployAccepted (the reattest starter's shape: durable status URLs + id)
 *     → 409 {error} naming the running deploy id; 400/404/422 {error} naming the problem; nothing started
 *     → dryRun: 200 {plan: DeployPlan}
 *   GET /api/operations/deploy → {status: DeployStatus (customStatus), output: DeployOutput}
 */

/** The deploy's one instance id: a second request while it runs gets 409 naming it. */
export const DEPLOY_INSTANCE_ID = "deploy";
export const DEPLOY_ORCHESTRATION = "deploy";

export const DEFAULT_MAX_PARALLEL = 5;
export const MAX_PARALLEL_LIMIT = 20;

export interface DeployRequest {
  /** App names; default every managed app found by tag. */
  apps?: string[];
  /** {"<app>": {"<container>": "<image ref>"}}: images to change in the same PUT as the token. */
  images?: Record<string, Record<string, string>>;
  /** 1..20, default 5: re-attestations running at once. */
  maxParallel?: number;
  dryRun?: boolean;
  reason?: string;
}

/** 202: what the reattest starter answers (createHttpManagementPayload fields) plus the deploy's own. */
export interface DeployAccepted {
  id: string;
  statusQueryGetUri: string;
  sendEventPostUri: string;
  terminatePostUri: string;
  purgeHistoryDeleteUri: string;
  /** Apps the deploy will act on (after the request's filter), in order. */
  apps: string[];
}

export interface PlanApp {
  app: string;
  included: boolean;
  /** Why it is in ("managed") or out (unmanaged, the app model's reason, not requested). */
  reason: string;
}

export interface PlanImage {
  app: string;
  container: string;
  from: string;
  to: string;
}

/** What one deploy will do and cost, computed without changing anything. */
export interface DeployPlan {
  apps: PlanApp[];
  /** Workload entries to create / update / delete (counts). */
  entries: { create: number; update: number; delete: number };
  images: PlanImage[];
  /** Join tokens to create (one per included app). */
  tokens: number;
  /** Calls the real deploy makes: ARM requests, SPIRE API calls, run-commands. */
  calls: { arm: number; spireApi: number; runCommands: number };
}

export type DeployStep =
  | "discover"
  | "server"
  | "trust"
  | "entries"
  | "tokens"
  | "reattest"
  | "verify"
  | "record"
  | "done";

/** One app's state as the deploy sees it (customStatus.apps[app]). */
export type DeployAppState = "pending" | "queued" | "reattesting" | "succeeded" | "failed" | "skipped";

export interface DeployStatus {
  step: DeployStep;
  appsDone: number;
  appsTotal: number;
  apps: Record<string, DeployAppState>;
  startedAt: string;
  stepSeconds: Record<string, number>;
}

export interface DeployAppOutcome {
  app: string;
  outcome: "succeeded" | "failed" | "skipped";
  reason: string;
  revisionName?: string;
}

export interface DeployOutput {
  outcome: "succeeded" | "partial" | "failed";
  apps: DeployAppOutcome[];
  totals: {
    apps: number;
    succeeded: number;
    failed: number;
    skipped: number;
    entriesCreated: number;
    entriesUpdated: number;
    entriesDeleted: number;
    tokens: number;
    imagesChanged: number;
  };
  stepSeconds: Record<string, number>;
  /** Why the deploy as a whole failed (server not ready, trust material), when it did. */
  failure?: string;
}
