import { CronExpressionParser } from "cron-parser";

/*
 * The thresholds the health classifier applies, each derived from a lifetime or delay in play, so
 * none is a magic number: a pure function of the settings.
 *
 * SPIRE (v1.15.3) renews an X509-SVID, the agent's own and every workload's, once its remaining
 * lifetime falls to half, with ±10 % jitter; the agent checks every 5 s (shared notes,
 * spire-facts.md "Timing"). The LATEST a healthy renewal happens is therefore at
 * issue + (1/2 + 1/10) of the TTL, plus one sync period. Anything later is overdue.
 */

/** SPIRE's rotate-at-half rule and its jitter, as fractions of the SVID's lifetime. */
export const SPIRE_ROTATE_AT = 0.5;
export const SPIRE_ROTATE_JITTER = 0.1;
/** The agent's sync loop: how often it checks whether its SVIDs are due. */
export const SPIRE_AGENT_SYNC_SECONDS = 5;
/**
 * Renewals a healthy agent makes late at most: a renewal is one RPC, retried at the next sync
 * when it fails, so two missed syncs in a row separate "slow" from "not renewing".
 */
export const MISSED_SYNCS_TOLERATED = 2;
/** SWEEP_MAX_REPAIRS' default: a fifth of the fleet, so one bad sweep never touches everyone. */
export const DEFAULT_REPAIR_FRACTION = 0.2;
/**
 * "Many were due" for a hang seen in the logs: at least this many workloads overdue, and at least
 * half of the attested ones (one stalled app is that app's problem; most of them, the server's).
 */
export const HUNG_MIN_OVERDUE = 2;
export const HUNG_OVERDUE_FRACTION = 0.5;

export interface PolicySettings {
  /** WORKLOAD_X509_TTL_SECONDS: the TTL of entries that set none (x509SvidTtl 0). */
  workloadX509TtlSeconds: number;
  /** SPIRE_AGENT_SVID_TTL_SECONDS: the server's agent_ttl. */
  agentSvidTtlSeconds: number;
  /** LOG_INGESTION_DELAY_SECONDS: how late a log line may reach the workspace. */
  logIngestionDelaySeconds: number;
  /** HEALTH_SWEEP_SCHEDULE (NCRONTAB). */
  healthSweepSchedule: string;
  /** SWEEP_MAX_REPAIRS; undefined: a fifth of the fleet. */
  maxRepairs?: number;
  /** ALERT_COOLDOWN_SECONDS: an app re-attested this recently is left alone. */
  cooldownSeconds: number;
}

export interface SweepPolicy {
  workloadTtlSeconds: number;
  agentTtlSeconds: number;
  ingestionDelaySeconds: number;
  sweepIntervalSeconds: number;
  /** Fraction of the TTL after issue by which a healthy renewal has happened. */
  latestRenewalFraction: number;
  /** Seconds a healthy renewal may lag its latest due time (sync periods). */
  renewalGraceSeconds: number;
  /**
   * The Logs query's window: long enough that every healthy workload was signed in it at least
   * once (its latest renewal interval, plus the ingestion delay, plus a sweep interval so that
   * consecutive sweeps overlap).
   */
  windowSeconds: number;
  maxRepairs?: number;
  cooldownSeconds: number;
}

/** The longest gap between consecutive firings of an NCRONTAB schedule (over a day of them). */
export function scheduleIntervalSeconds(ncrontab: string): number {
  const it = CronExpressionParser.parse(ncrontab, { tz: "UTC", currentDate: new Date(0) });
  let prev = it.next().getTime();
  let longest = 0;
  const dayLater = prev + 86_400_000;
  for (let i = 0; i < 2000 && prev < dayLater; i++) {
    const next = it.next().getTime();
    longest = Math.max(longest, next - prev);
    prev = next;
  }
  return Math.round(longest / 1000);
}

export function sweepPolicy(s: PolicySettings): SweepPolicy {
  const latestRenewalFraction = SPIRE_ROTATE_AT + SPIRE_ROTATE_JITTER;
  const renewalGraceSeconds = SPIRE_AGENT_SYNC_SECONDS * MISSED_SYNCS_TOLERATED;
  const sweepIntervalSeconds = scheduleIntervalSeconds(s.healthSweepSchedule);
  return {
    workloadTtlSeconds: s.workloadX509TtlSeconds,
    agentTtlSeconds: s.agentSvidTtlSeconds,
    ingestionDelaySeconds: s.logIngestionDelaySeconds,
    sweepIntervalSeconds,
    latestRenewalFraction,
    renewalGraceSeconds,
    windowSeconds: Math.ceil(
      s.workloadX509TtlSeconds * latestRenewalFraction +
        renewalGraceSeconds +
        s.logIngestionDelaySeconds +
        sweepIntervalSeconds,
    ),
    ...(s.maxRepairs !== undefined ? { maxRepairs: s.maxRepairs } : {}),
    cooldownSeconds: s.cooldownSeconds,
  };
}

/** How many apps one sweep may re-attest: SWEEP_MAX_REPAIRS, else a fifth of the fleet, at least 1. */
export function repairBudget(policy: Pick<SweepPolicy, "maxRepairs">, fleetSize: number): number {
  if (policy.maxRepairs !== undefined) return policy.maxRepairs;
  return Math.max(1, Math.floor(fleetSize * DEFAULT_REPAIR_FRACTION));
}
