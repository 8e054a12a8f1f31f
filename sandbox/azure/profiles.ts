/**
 * How long Azure takes. `fast` keeps tests to seconds; `azure` uses typical documented latencies
 * (an app revision ~30-60 s, a run-command create-to-done ~20-40 s), divided by `timeScale` so a
 * benchmark can run Azure-shaped timings faster than real time.
 */
export interface LatencyProfile {
  name: string;
  /** Retry-After (seconds) on long-running operations. core-lro ignores 0 and then waits 2 s. */
  retryAfterSeconds: number;
  /** ARM request overhead before any answer. */
  requestMs: number;
  /**
   * An operation-status poll of an operation still in progress waits up to this long for it to
   * finish before answering (like a slow request): SDK pollers then finish on their first poll
   * instead of sleeping Retry-After. 0 answers at once.
   */
  pollHoldMs: number;

  // Container Apps
  /** PUT/PATCH accepted → the new revision is provisioned and its replicas scheduled (LRO done). */
  revisionProvisionMs: number;
  /** A configuration-only update (no new revision) completes after this. */
  configUpdateMs: number;
  /** A simulated (non-sidecar) container starts and turns ready after this. */
  containerStartMs: number;
  /** Single revision mode: the old revision is deactivated this long after the new one is ready. */
  deactivateOldRevisionMs: number;
  appDeleteMs: number;
  /** The sidecar entrypoint gives its spire-agent this long to open the Workload API, else the container exits. */
  sidecarAgentStartTimeoutMs: number;
  /** The entrypoint's monitor loop notices a dead agent process after this (the seed polls every 10 s). */
  sidecarMonitorIntervalMs: number;
  /** Container restart backoff (CrashLoopBackOff): first delay, doubling up to max. */
  crashBackoffInitialMs: number;
  crashBackoffMaxMs: number;

  // Managed run-commands
  /** Create → the guest agent picks the script up (executionState Pending → Running). */
  runCommandPickupMs: number;
  /** Script finished (executionState terminal) → ARM provisioningState terminal: the lag of learning #20. */
  provisioningLagMs: number;
  runCommandDeleteMs: number;
  /** Legacy POST runCommand: extension overhead before and after the script. */
  legacyRunCommandOverheadMs: number;
  /** A VM counts as fresh (guest agent still settling, learning #34) this long after it starts. */
  vmFreshMs: number;
  /** On a fresh VM, creating a run-command within this long after a delete completed wedges the agent. */
  wedgeCooldownMs: number;
  /** VM deallocate/start/restart operations. */
  vmPowerOpMs: number;

  // Log Analytics
  /**
   * Ingestion latency of a log row, drawn from [min, max]. Unlike the fields above this is on the
   * sandbox's scaled clock (the log store and the alert engine run on it), so it is NOT divided by
   * the time scale: it is what Azure takes, in Azure time.
   */
  logIngestionDelayMs: { min: number; max: number };
}

export const FAST_PROFILE: LatencyProfile = {
  name: "fast",
  retryAfterSeconds: 1,
  requestMs: 0,
  pollHoldMs: 800,
  revisionProvisionMs: 150,
  configUpdateMs: 100,
  containerStartMs: 50,
  deactivateOldRevisionMs: 100,
  appDeleteMs: 100,
  sidecarAgentStartTimeoutMs: 4000,
  sidecarMonitorIntervalMs: 200,
  crashBackoffInitialMs: 300,
  crashBackoffMaxMs: 3000,
  runCommandPickupMs: 100,
  provisioningLagMs: 400,
  runCommandDeleteMs: 100,
  legacyRunCommandOverheadMs: 100,
  vmFreshMs: 3000,
  wedgeCooldownMs: 500,
  vmPowerOpMs: 200,
  logIngestionDelayMs: { min: 0, max: 0 },
};

/** Typical Azure latencies in real seconds; `azureProfile(timeScale)` divides them. */
const AZURE_SECONDS = {
  revisionProvision: 45,
  configUpdate: 10,
  containerStart: 8,
  deactivateOldRevision: 30,
  appDelete: 20,
  sidecarAgentStartTimeout: 60,
  sidecarMonitorInterval: 10,
  crashBackoffInitial: 10,
  crashBackoffMax: 300,
  runCommandPickup: 12,
  provisioningLag: 15,
  runCommandDelete: 10,
  legacyRunCommandOverhead: 20,
  vmFresh: 600,
  wedgeCooldown: 8,
  vmPowerOp: 60,
  // Microsoft Learn, "Log data ingestion time in Azure Monitor": typically 20 s to 3 minutes.
  logIngestionMin: 20,
  logIngestionMax: 180,
} as const;

export function azureProfile(timeScale = 1): LatencyProfile {
  if (!(timeScale > 0)) throw new Error(`timeScale must be positive, got ${timeScale}`);
  const ms = (seconds: number) => Math.max(1, Math.round((seconds * 1000) / timeScale));
  return {
    name: timeScale === 1 ? "azure" : `azure/${timeScale}`,
    // Poll as often as the scaled latencies need, but never below core-lro's 1 s floor.
    retryAfterSeconds: Math.max(1, Math.round(10 / timeScale)),
    requestMs: Math.round(100 / timeScale),
    pollHoldMs: 0,
    revisionProvisionMs: ms(AZURE_SECONDS.revisionProvision),
    configUpdateMs: ms(AZURE_SECONDS.configUpdate),
    containerStartMs: ms(AZURE_SECONDS.containerStart),
    deactivateOldRevisionMs: ms(AZURE_SECONDS.deactivateOldRevision),
    appDeleteMs: ms(AZURE_SECONDS.appDelete),
    sidecarAgentStartTimeoutMs: ms(AZURE_SECONDS.sidecarAgentStartTimeout),
    sidecarMonitorIntervalMs: ms(AZURE_SECONDS.sidecarMonitorInterval),
    crashBackoffInitialMs: ms(AZURE_SECONDS.crashBackoffInitial),
    crashBackoffMaxMs: ms(AZURE_SECONDS.crashBackoffMax),
    runCommandPickupMs: ms(AZURE_SECONDS.runCommandPickup),
    provisioningLagMs: ms(AZURE_SECONDS.provisioningLag),
    runCommandDeleteMs: ms(AZURE_SECONDS.runCommandDelete),
    legacyRunCommandOverheadMs: ms(AZURE_SECONDS.legacyRunCommandOverhead),
    vmFreshMs: ms(AZURE_SECONDS.vmFresh),
    wedgeCooldownMs: ms(AZURE_SECONDS.wedgeCooldown),
    vmPowerOpMs: ms(AZURE_SECONDS.vmPowerOp),
    logIngestionDelayMs: {
      min: AZURE_SECONDS.logIngestionMin * 1000,
      max: AZURE_SECONDS.logIngestionMax * 1000,
    },
  };
}

export type ProfileName = "fast" | "azure";

export function resolveProfile(
  profile: ProfileName | LatencyProfile | undefined,
  timeScale?: number,
): LatencyProfile {
  if (profile === undefined || profile === "fast") return { ...FAST_PROFILE };
  if (profile === "azure") return azureProfile(timeScale ?? 1);
  return { ...profile };
}
