/*
 * What an operator sees of one orchestration instance: its kind, where it is and how it ended,
 * never its input (a reason can be long) nor anything the redactor would have to hide. Pure, so
 * the listing's rules are table-tested without a task hub.
 */

export const OPERATION_KINDS = ["deploy", "reattest", "sweep", "rotate-bundle"] as const;
export type OperationKind = (typeof OPERATION_KINDS)[number] | "other";

/** Orchestration names (DESIGN.md) to the kind an operator filters by. */
const KIND_BY_NAME: Record<string, OperationKind> = {
  deploy: "deploy",
  reattest: "reattest",
  healthSweep: "sweep",
  sweep: "sweep",
  rotateBundle: "rotate-bundle",
};

export function operationKind(name: string | undefined): OperationKind {
  return (name && KIND_BY_NAME[name]) || "other";
}

export const RUNNING_STATUSES = ["Running", "Pending", "Suspended", "ContinuedAsNew"] as const;

export function isRunning(runtimeStatus: unknown): boolean {
  return (RUNNING_STATUSES as readonly string[]).includes(String(runtimeStatus));
}

export interface InstanceLike {
  instanceId: string;
  name?: string;
  runtimeStatus: unknown;
  createdTime: Date | string;
  lastUpdatedTime: Date | string;
  input?: unknown;
  customStatus?: unknown;
  output?: unknown;
}

export interface OperationSummary {
  id: string;
  kind: OperationKind;
  name: string;
  runtimeStatus: string;
  running: boolean;
  /** The app a per-app run is about (re-attest), else null. */
  app: string | null;
  step: string | null;
  /** Apps done / total for fleet-wide runs that publish them (deploy, sweep). */
  progress: { done: number; total: number } | null;
  createdTime: string;
  lastUpdatedTime: string;
  outcome: string | null;
  failure: string | null;
}

const APP_NAME = /^[a-z][a-z0-9-]{0,30}[a-z0-9]$/;

const record = (v: unknown): Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

const iso = (t: Date | string) => new Date(t).toISOString();

const count = (v: unknown) => (typeof v === "number" && Number.isInteger(v) && v >= 0 ? v : undefined);

/** `{progress: {done, total}}`, `{appsDone, appsTotal}` or `{done, total}` in customStatus. */
export function progressOf(custom: unknown): { done: number; total: number } | null {
  const c = record(custom);
  const p = record(c.progress);
  const candidates: Array<[unknown, unknown]> = [
    [p.done, p.total],
    [c.appsDone, c.appsTotal],
    [c.done, c.total],
  ];
  for (const [d, t] of candidates) {
    const done = count(d);
    const total = count(t);
    if (done !== undefined && total !== undefined && done <= total) return { done, total };
  }
  return null;
}

export function summarizeOperation(s: InstanceLike): OperationSummary {
  const custom = record(s.customStatus);
  const output = record(s.output);
  const input = record(s.input);
  const appCandidate = typeof custom.app === "string" ? custom.app : input.app;
  const runtimeStatus = String(s.runtimeStatus);
  const failure =
    typeof output.failure === "string"
      ? output.failure
      : runtimeStatus === "Failed" && typeof s.output === "string"
        ? s.output.split("\n")[0]!
        : null;
  return {
    id: s.instanceId,
    kind: operationKind(s.name),
    name: s.name ?? "",
    runtimeStatus,
    running: isRunning(runtimeStatus),
    app: typeof appCandidate === "string" && APP_NAME.test(appCandidate) ? appCandidate : null,
    step: typeof custom.step === "string" ? custom.step : null,
    progress: progressOf(s.customStatus),
    createdTime: iso(s.createdTime),
    lastUpdatedTime: iso(s.lastUpdatedTime),
    outcome: typeof output.outcome === "string" ? output.outcome : null,
    failure: failure ? failure.slice(0, 500) : null,
  };
}
