import { createHash } from "node:crypto";
import type { LogsTable } from "@azure/monitor-query-logs";
import { listAppsForSweep, replicaRestarts } from "../containerapp/sweep-list.js";
import { loadKql } from "../kql/index.js";
import type { Services } from "../services.js";
import { parseJoinTokenAgentId } from "../spiffe/ids.js";
import type { SpireServer } from "../spire/types.js";
import { summarizeServerBundle } from "../trust/summary.js";
import { readVaultBundle } from "../trust/vault.js";
import type { SweepPolicy } from "./policy.js";
import type { ServerProbe, SnapshotAgent, SnapshotEntry, SnapshotLogs, SweepSnapshot } from "./snapshot.js";

/*
 * Gathers one sweep's snapshot with a fixed number of calls: the Logs query, the server's health
 * and bundle, one paged ListAgents, one paged ListEntries, one paged list of the apps, Key Vault's
 * bundle; plus one replica listing per app whose sidecar failed in the window (so calls grow with
 * sick apps, never with the fleet). A failed call leaves its part undefined: the classifier then
 * says `unknown` where that part was needed, rather than guessing.
 */

/**
 * How long the server's health check may take before the server counts as hung. The gRPC health
 * check answers in milliseconds; 10 s rides out a loaded VM. Over run-commands a call is a whole
 * run-command, bounded by its own timeout.
 */
export const GRPC_PROBE_TIMEOUT_SECONDS = 10;

export type SweepCalls = Record<
  | "logsQuery"
  | "serverHealth"
  | "getBundle"
  | "listAgents"
  | "listEntries"
  | "listAppsPages"
  | "keyVaultRead"
  | "replicaLists",
  number
>;

/** What activities call agentRef: the SHA-256 of the join token a join-token agent ID embeds. */
export function agentRefOf(agentId: string): string {
  let basis = agentId;
  try {
    basis = parseJoinTokenAgentId(agentId).token;
  } catch {
    // Not a join-token agent: its ID is not a secret, but it is named the same way.
  }
  return createHash("sha256").update(basis).digest("hex");
}

const isAgentId = (id: string) => id.includes("/spire/agent/");

class Timeout extends Error {}

function within<T>(promise: Promise<T>, seconds: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Timeout(`${what} did not answer within ${seconds} s`)),
      seconds * 1000,
    );
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

const firstLine = (err: unknown) => ((err as Error)?.message ?? String(err)).split("\n")[0]!.slice(0, 300);

export function probeTimeoutSeconds(config: Services["config"]): number {
  return config.spire.api === "run-command"
    ? config.spire.runCommand.timeoutSeconds
    : GRPC_PROBE_TIMEOUT_SECONDS;
}

/** The server's health within the probe timeout, and its bundle's fingerprints when healthy. */
export async function probeServer(
  spire: () => Promise<SpireServer>,
  timeoutSeconds: number,
  calls: Pick<SweepCalls, "serverHealth" | "getBundle">,
): Promise<ServerProbe> {
  try {
    calls.serverHealth++;
    const server = await within(spire(), timeoutSeconds, "the SPIRE client");
    const health = await within(server.health(), timeoutSeconds, "the SPIRE server's health check");
    if (!health.healthy) {
      return /deadline|DEADLINE_EXCEEDED/i.test(health.detail)
        ? { state: "timeout", detail: health.detail }
        : { state: "unreachable", detail: health.detail };
    }
    calls.getBundle++;
    const bundle = summarizeServerBundle(await within(server.getBundle(), timeoutSeconds, "GetBundle"));
    return { state: "healthy", bundleFingerprints: bundle.fingerprints };
  } catch (err) {
    return err instanceof Timeout || /deadline/i.test(firstLine(err))
      ? { state: "timeout", detail: firstLine(err) }
      : { state: "unreachable", detail: firstLine(err) };
  }
}

function cell(table: LogsTable, row: unknown[], name: string): unknown {
  return row[table.columnDescriptors.findIndex((c) => c.name === name)];
}

const asDate = (v: unknown) => {
  const d = v instanceof Date ? v : typeof v === "string" ? new Date(v) : undefined;
  return d && !Number.isNaN(d.getTime()) ? d : undefined;
};

/** The health-sweep query's rows as snapshot facts; agent IDs hashed on the way in. */
export function readSweepFacts(table: LogsTable | undefined): Omit<SnapshotLogs, "complete" | "problem"> {
  const facts: Omit<SnapshotLogs, "complete" | "problem"> = {
    signings: new Map(),
    renewals: new Map(),
    failures: new Map(),
  };
  for (const row of table?.rows ?? []) {
    const lastAt = asDate(cell(table!, row, "last_at"));
    if (!lastAt) continue;
    const key = String(cell(table!, row, "key") ?? "");
    const n = Number(cell(table!, row, "n") ?? 0);
    switch (cell(table!, row, "fact")) {
      case "workload-signed":
        facts.signings.set(key, { lastAt, count: n });
        break;
      case "agent-renewed":
        facts.renewals.set(agentRefOf(key), lastAt);
        break;
      case "agent-failures":
        facts.failures.set(key, { count: n, lastAt, revision: String(cell(table!, row, "detail") ?? "") });
        break;
      case "server-log":
        facts.serverLastLineAt = lastAt;
        break;
    }
  }
  return facts;
}

async function queryLogs(
  s: Services,
  windowSeconds: number,
  calls: SweepCalls,
): Promise<SnapshotLogs | undefined> {
  if (!s.logs) return undefined;
  calls.logsQuery++;
  try {
    const result = await s.logs.client.queryWorkspace(s.logs.workspaceId, loadKql("health-sweep"), {
      duration: `PT${windowSeconds}S`,
    });
    if (result.status === "Success") return { complete: true, ...readSweepFacts(result.tables[0]) };
    // Partial rows may lack exactly the signing that proves an app healthy: none of it is used.
    return {
      complete: false,
      problem: `PartialError: ${firstLine(result.partialError)}`,
      ...readSweepFacts(undefined),
    };
  } catch (err) {
    return { complete: false, problem: firstLine(err), ...readSweepFacts(undefined) };
  }
}

export interface Gathered {
  snapshot: SweepSnapshot;
  calls: SweepCalls;
  /** Why a part is missing, for the sweep's output. */
  problems: string[];
}

export async function gatherSnapshot(s: Services, policy: SweepPolicy): Promise<Gathered> {
  const calls: SweepCalls = {
    logsQuery: 0,
    serverHealth: 0,
    getBundle: 0,
    listAgents: 0,
    listEntries: 0,
    listAppsPages: 0,
    keyVaultRead: 0,
    replicaLists: 0,
  };
  const problems: string[] = [];
  const timeout = probeTimeoutSeconds(s.config);
  const settings = { trustDomain: s.config.spire.trustDomain, apps: s.config.apps };

  const appsP = listAppsForSweep(s.containerApps, s.config.apps.resourceGroup, settings).then(
    (r) => {
      calls.listAppsPages += r.pages;
      return r.apps;
    },
    (err) => {
      calls.listAppsPages++;
      problems.push(`listing the apps: ${firstLine(err)}`);
      return undefined;
    },
  );
  const logsP = queryLogs(s, policy.windowSeconds, calls);
  const vaultP = (async () => {
    calls.keyVaultRead++;
    try {
      return (await readVaultBundle(s.secrets, s.config.keyVault.trustBundleSecretName))?.fingerprints;
    } catch (err) {
      problems.push(`reading Key Vault's bundle: ${firstLine(err)}`);
      return undefined;
    }
  })();
  const server = await probeServer(() => s.spire(), timeout, calls);

  let agents: SnapshotAgent[] | undefined;
  let entries: SnapshotEntry[] | undefined;
  if (server.state === "healthy") {
    const spire = await s.spire();
    try {
      calls.listAgents++;
      agents = (await within(spire.listAgents(), timeout, "ListAgents")).map((a) => ({
        ref: agentRefOf(a.id),
        ...(a.x509SvidExpiresAt ? { expiresAt: a.x509SvidExpiresAt } : {}),
        banned: a.banned,
      }));
      calls.listEntries++;
      entries = (await within(spire.listEntries({}), timeout, "ListEntries")).map((e) => ({
        spiffeId: e.spiffeId,
        parent: isAgentId(e.parentId) ? agentRefOf(e.parentId) : e.parentId,
        x509SvidTtl: e.x509SvidTtl,
        ...(e.createdAt ? { createdAt: e.createdAt } : {}),
      }));
    } catch (err) {
      problems.push(`listing SPIRE agents and entries: ${firstLine(err)}`);
      agents = undefined;
      entries = undefined;
    }
  }
  const [apps, logs, vaultFingerprints] = await Promise.all([appsP, logsP, vaultP]);
  if (logs && !logs.complete) problems.push(`Log Analytics: ${logs.problem}`);

  // Replica restarts only where the sidecar failed: the crash loop's second witness.
  for (const app of apps ?? []) {
    if (!app.managed || !app.latestRevision || !logs?.failures.has(app.name)) continue;
    calls.replicaLists++;
    try {
      app.restartCount = await replicaRestarts(
        s.containerApps,
        s.config.apps.resourceGroup,
        app.name,
        app.latestRevision,
      );
    } catch {
      // The logs already say it fails; the count is colour.
    }
  }
  const snapshot: SweepSnapshot = {
    server,
    ...(apps ? { apps } : {}),
    ...(agents ? { agents } : {}),
    ...(entries ? { entries } : {}),
    ...(logs ? { logs } : {}),
    ...(vaultFingerprints ? { vaultFingerprints } : {}),
  };
  return { snapshot, calls, problems };
}
