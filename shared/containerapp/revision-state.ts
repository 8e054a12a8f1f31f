/*
 * What a revision's reported states mean for a re-attestation waiting on it. Azure reports running
 * states its REST spec omits (the spec's enum: Running, Processing, Stopped, Degraded, Failed,
 * Unknown): ActivationFailed and RunningAtMaxScale (Azure/azure-rest-api-specs#29102), Activating
 * and ScaledToZero (microsoft/vscode-azurecontainerapps PR #1088). A crash-looping new revision
 * reads ActivationFailed, so every state is mapped here explicitly, and one we do not know is
 * waited on but named, so the run's status says what Azure reported.
 */

export type RevisionPhase = "Running" | "Failed" | "Pending";

export interface ReportedRevision {
  provisioningState?: string;
  runningState?: string;
  healthState?: string;
  replicas?: number;
  provisioningError?: string;
}

export interface RevisionVerdict {
  state: RevisionPhase;
  /** Why, in words for the run's status and failure message. */
  detail: string;
}

/** Running states and what they mean for a revision of a managed (1..1) app. */
const RUNNING_STATES: Record<string, { phase: RevisionPhase; why: string }> = {
  Running: { phase: "Running", why: "its replicas run" },
  RunningAtMaxScale: { phase: "Running", why: "its replicas run (at maximum scale)" },
  Processing: { phase: "Pending", why: "Azure is still processing it" },
  Activating: { phase: "Pending", why: "its replicas are starting" },
  Provisioning: { phase: "Pending", why: "it is still provisioning" },
  Unknown: { phase: "Pending", why: "Azure reports its state as Unknown for now" },
  Failed: { phase: "Failed", why: "it failed" },
  Degraded: { phase: "Failed", why: "its replicas are failing" },
  ActivationFailed: { phase: "Failed", why: "its containers never started (ActivationFailed)" },
  // A managed app runs exactly one replica (minReplicas = 1): a revision at zero replicas, or
  // stopped, will run no agent, however long we wait.
  ScaledToZero: {
    phase: "Failed",
    why: "it scaled to zero replicas, so no agent runs; the app must keep minReplicas = 1",
  },
  Stopped: { phase: "Failed", why: "it is stopped (inactive, or the app was stopped), so no agent runs" },
};

const PROVISIONING_STATES: Record<string, { phase: RevisionPhase | "byRunningState"; why: string }> = {
  Provisioning: { phase: "Pending", why: "it is still provisioning" },
  Provisioned: { phase: "byRunningState", why: "" },
  Failed: { phase: "Failed", why: "it failed to provision" },
  Deprovisioning: { phase: "Failed", why: "it is being deprovisioned (superseded by another revision?)" },
  Deprovisioned: { phase: "Failed", why: "it was deprovisioned (superseded by another revision?)" },
};

function describe(r: ReportedRevision): string {
  return [
    `provisioning ${r.provisioningState ?? "unknown"}`,
    `running ${r.runningState ?? "unknown"}`,
    `health ${r.healthState ?? "unknown"}`,
    `${r.replicas ?? 0} replica(s)`,
    ...(r.provisioningError ? [r.provisioningError] : []),
  ].join(", ");
}

/** Whether the revision runs, never will, or may still come up; states we do not know mean wait. */
export function classifyRevision(r: ReportedRevision): RevisionVerdict {
  const facts = describe(r);
  const provisioning =
    r.provisioningState === undefined ? undefined : PROVISIONING_STATES[r.provisioningState];
  const running = r.runningState === undefined ? undefined : RUNNING_STATES[r.runningState];

  if (provisioning?.phase === "Failed") return { state: "Failed", detail: `${provisioning.why}: ${facts}` };
  // A failing running state is final even while provisioning still reads Provisioning.
  if (running?.phase === "Failed") return { state: "Failed", detail: `${running.why}: ${facts}` };
  if (provisioning === undefined) {
    const why =
      r.provisioningState === undefined
        ? "no provisioning state reported yet"
        : `unrecognised provisioning state "${r.provisioningState}", still waiting`;
    return { state: "Pending", detail: `${why}: ${facts}` };
  }
  if (provisioning.phase === "Pending") return { state: "Pending", detail: `${provisioning.why}: ${facts}` };
  if (running === undefined) {
    const why =
      r.runningState === undefined
        ? "no running state reported yet"
        : `unrecognised running state "${r.runningState}", still waiting`;
    return { state: "Pending", detail: `${why}: ${facts}` };
  }
  return { state: running.phase, detail: `${running.why}: ${facts}` };
}
