/**
 * The health classifier at fleet scale (not a test; prints one JSON object on stdout): a snapshot
 * of N apps, each with its agent, alias entry, workload entry and logs facts, a mix of verdicts
 * (every 10th agent silent, every 17th workload stalled, every 23rd app unattested), classified
 * and planned R times. Reports the median and worst wall time and the heap the classification
 * added. Target: under 100 ms for 10,000 apps.
 *
 *   npx tsx test/bench/sweep-classify-bench.ts [--apps 10000] [--runs 20]
 */
import { parseArgs } from "node:util";
import { classifyFleet } from "../../shared/health/classify.js";
import { sweepPolicy } from "../../shared/health/policy.js";
import { planRepairs } from "../../shared/health/repairs.js";
import type { SnapshotLogs, SweepSnapshot } from "../../shared/health/snapshot.js";

const { values } = parseArgs({
  options: { apps: { type: "string", default: "10000" }, runs: { type: "string", default: "20" } },
});
const APPS = Number(values.apps);
const RUNS = Number(values.runs);
const TTL = 3600;
const now = new Date();
const at = (secondsAgo: number) => new Date(now.getTime() - secondsAgo * 1000);

function fleetSnapshot(n: number): SweepSnapshot {
  const logs: SnapshotLogs = {
    complete: true,
    signings: new Map(),
    renewals: new Map(),
    failures: new Map(),
  };
  const snap: SweepSnapshot = {
    apps: [],
    agents: [],
    entries: [],
    logs,
    server: { state: "healthy", bundleFingerprints: ["a".repeat(64)] },
    vaultFingerprints: ["a".repeat(64)],
  };
  for (let i = 0; i < n; i++) {
    const name = `app-${i.toString().padStart(5, "0")}`;
    const alias = `spiffe://td/agent/${name}`;
    const workloadId = `spiffe://td/ests/bp/${i}/aid/${i}`;
    const ref = i.toString(16).padStart(64, "0");
    snap.apps!.push({
      name,
      managed: true,
      alias,
      workloadId,
      latestRevision: `${name}--v1`,
      restartCount: 0,
    });
    snap.entries!.push({ spiffeId: alias, parent: ref, x509SvidTtl: 0 });
    snap.entries!.push({ spiffeId: workloadId, parent: alias, x509SvidTtl: TTL });
    if (i % 23 !== 0) {
      const agentAge = i % 10 === 0 ? 0.7 * TTL : (i % 1800) + 1;
      snap.agents!.push({ ref, expiresAt: new Date(now.getTime() + (TTL - agentAge) * 1000), banned: false });
      logs.renewals.set(ref, at(agentAge));
    }
    logs.signings.set(workloadId, { lastAt: at(i % 17 === 0 ? TTL : (i % 1800) + 1), count: 2 });
  }
  return snap;
}

const policy = sweepPolicy({
  workloadX509TtlSeconds: TTL,
  agentSvidTtlSeconds: TTL,
  logIngestionDelaySeconds: 300,
  healthSweepSchedule: "0 */5 * * * *",
  cooldownSeconds: 900,
});
const snapshot = fleetSnapshot(APPS);
// Warm the JIT once, then measure.
planRepairs(classifyFleet(snapshot, now, policy), { mode: "repair", budget: 20, cooling: new Set() });
global.gc?.();
const heapBefore = process.memoryUsage().heapUsed;
const times: number[] = [];
let last: ReturnType<typeof classifyFleet> | undefined;
for (let r = 0; r < RUNS; r++) {
  const t0 = performance.now();
  last = classifyFleet(snapshot, now, policy);
  planRepairs(last, { mode: "repair", budget: Math.floor(APPS / 5), cooling: new Set() });
  times.push(performance.now() - t0);
}
const heapAfter = process.memoryUsage().heapUsed;
times.sort((a, b) => a - b);
const round = (n: number) => Math.round(n * 10) / 10;
const medianMs = round(times[Math.floor(times.length / 2)]!);
console.log(
  JSON.stringify({
    apps: APPS,
    agents: snapshot.agents!.length,
    entries: snapshot.entries!.length,
    runs: RUNS,
    medianMs,
    maxMs: round(times.at(-1)!),
    heapUsedMb: round(heapAfter / 2 ** 20),
    heapGrowthMb: round((heapAfter - heapBefore) / 2 ** 20),
    rssMb: round(process.memoryUsage().rss / 2 ** 20),
    counts: last?.counts,
    pass: medianMs < 100,
  }),
);
