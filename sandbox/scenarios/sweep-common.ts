import { SandboxCredential } from "../../shared/azure/credential.js";
import { loadConfig } from "../../shared/config.js";
import { FLEET_EVENTS_PARTITION, FLEET_STATE_PARTITION } from "../../shared/health/fleet-state.js";
import { createFleetTableClient } from "../../shared/services.js";
import { type Sandbox, startSandbox } from "../environment.js";
import { pollUntil } from "../spire/index.js";
import type { ScenarioContext } from "./types.js";

/*
 * What the health-sweep scenarios share: a sandbox whose SPIRE SVIDs live 60 s (so renewals are
 * due within seconds and a missed one shows within a minute), the product's settings matching
 * those TTLs, a way to run one sweep and wait for it, and the fleet table's per-app rows.
 */

/** SPIRE's shortest practical SVID lifetime here; the product's settings must say the same. */
export const SWEEP_SVID_TTL_SECONDS = 60;
/** No scheduled run may interleave with scripted ones: once a year, at New Year. */
export const NEVER = "0 0 0 1 1 *";

export async function startSweepSandbox(
  ctx: ScenarioContext,
  settings: Record<string, string> = {},
  ttlSeconds = SWEEP_SVID_TTL_SECONDS,
): Promise<Sandbox> {
  return startSandbox({
    stateDir: ctx.workDir,
    port: 0,
    timeScale: 1,
    echoHost: false,
    log: (m) => ctx.log(m),
    spireTtls: { defaultX509SvidTtl: `${ttlSeconds}s`, agentTtl: `${ttlSeconds}s` },
    settings: {
      HEALTH_SWEEP_SCHEDULE: NEVER,
      BUNDLE_ROTATION_SCHEDULE: NEVER,
      WORKLOAD_X509_TTL_SECONDS: String(ttlSeconds),
      SPIRE_AGENT_SVID_TTL_SECONDS: String(ttlSeconds),
      // The fast profile ingests at once; a few seconds cover the log follower's polling.
      LOG_INGESTION_DELAY_SECONDS: "5",
      ...settings,
    },
  });
}

export interface SweepRun {
  runtimeStatus: string;
  createdTime: string;
  output: {
    sweepId: string;
    server: { verdict: string; reason: string };
    counts: Record<string, number>;
    calls: Record<string, number>;
    problems: string[];
    serverAction: string;
    serverActionOutcome?: string;
    caUnchanged?: boolean;
    serverRestarts: number;
    entriesRestored?: number;
    chainsToNewCa?: boolean;
    reattestsStarted: number;
    actions: Array<{ app: string; verdict: string; outcome: string; svidSigned?: unknown; failure?: string }>;
    deferred: Record<string, number>;
    failure?: string;
  } | null;
}

const key = (sb: Sandbox) => sb.host.keys.functionKeys.default;

export async function sweepOperation(sb: Sandbox): Promise<SweepRun | undefined> {
  const res = await fetch(`${sb.host.url}/api/operations/health-sweep?code=${key(sb)}`);
  return res.status === 200 ? ((await res.json()) as SweepRun) : undefined;
}

const TERMINAL = ["Completed", "Failed", "Terminated"];

/** Waits for a sweep other than the one whose sweepId is `previous` to finish. */
export async function waitForSweep(
  sb: Sandbox,
  previous: string | undefined,
  timeoutMs: number,
  signal: AbortSignal,
) {
  return pollUntil(
    "the health sweep to finish",
    async () => {
      const op = await sweepOperation(sb);
      if (!op || !TERMINAL.includes(op.runtimeStatus)) return undefined;
      return op.output?.sweepId !== previous ? op : undefined;
    },
    { timeoutMs, intervalMs: 200, signal },
  );
}

/** POST /api/sweep and wait for that sweep's output. */
export async function sweepNow(
  sb: Sandbox,
  mode: "repair" | "observe",
  signal: AbortSignal,
  timeoutMs = 120_000,
): Promise<SweepRun> {
  const before = (await sweepOperation(sb))?.output?.sweepId;
  const res = await fetch(`${sb.host.url}/api/sweep?code=${key(sb)}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ mode }),
  });
  if (res.status !== 202) throw new Error(`POST /api/sweep answered ${res.status}: ${await res.text()}`);
  return waitForSweep(sb, before, timeoutMs, signal);
}

export interface FleetRow {
  app: string;
  verdict: string;
  verdictSince?: string;
  reason?: string;
  lastSignedAt?: string;
  agentExpiresAt?: string;
  dueAt?: string;
  lastAction?: string;
  lastActionOutcome?: string;
}

/** The sweep's per-app rows in the fleet table. */
export async function fleetRows(sb: Sandbox): Promise<Map<string, FleetRow>> {
  const table = createFleetTableClient(loadConfig(sb.settings), new SandboxCredential(), sb.settings);
  const out = new Map<string, FleetRow>();
  for await (const r of table.listEntities<Record<string, unknown>>({
    queryOptions: { filter: `PartitionKey eq '${FLEET_STATE_PARTITION}'` },
  })) {
    out.set(String(r.rowKey), { ...(r as unknown as FleetRow), app: String(r.rowKey) });
  }
  return out;
}

/** Every app's latest revision, to tell which apps a repair touched. */
export async function latestRevisions(sb: Sandbox, apps: readonly string[]): Promise<Map<string, string>> {
  const rg = sb.settings.APPS_RESOURCE_GROUP!;
  const { containerApps } = sb.azure.clients();
  const out = new Map<string, string>();
  for (const a of apps) out.set(a, (await containerApps.containerApps.get(rg, a)).latestRevisionName ?? "");
  return out;
}

export const seconds = (ms: number) => Math.round(ms / 100) / 10;

export interface VerdictEvent {
  at: string;
  app: string;
  from?: string;
  to: string;
  reason?: string;
  dueAt?: string;
}

/** Verdict changes the sweeps recorded, oldest first. */
export async function verdictEvents(sb: Sandbox): Promise<VerdictEvent[]> {
  const table = createFleetTableClient(loadConfig(sb.settings), new SandboxCredential(), sb.settings);
  const out: VerdictEvent[] = [];
  for await (const r of table.listEntities<Record<string, unknown>>({
    queryOptions: { filter: `PartitionKey eq '${FLEET_EVENTS_PARTITION}'` },
  })) {
    out.push({ ...(r as unknown as VerdictEvent), at: String(r.rowKey).split("_")[0]! });
  }
  return out.sort((a, b) => a.at.localeCompare(b.at));
}
