/**
 * Figures for SPIRE in the loop (not a test; prints one JSON object on stdout, progress on stderr):
 *   - install time with a warm tools cache (and, with --fresh-install, from an empty tools cache
 *     and an empty Go build cache: what a fresh CI machine pays, minus module downloads);
 *   - gRPC call latency (median, p95) over the admin unix socket and over TCP with mTLS;
 *   - time from agent start to the first workload SVID (entry registered before the agent starts,
 *     and registered after it attested).
 *
 *   npx tsx test/bench/spire-bench.ts [--calls 200] [--agents 3] [--fresh-install]
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  mintAdminSvid,
  type SpireServerHandle,
  startSpireAgent,
  startSpireServer,
} from "../../sandbox/spire/index.js";
import { ensureSpire, type SpireBinaries } from "../../scripts/install-spire.js";
import { agentAliasId, workloadId } from "../../shared/spiffe/index.js";
import { GrpcSpireServer } from "../../shared/spire/grpc.js";
import type { SpireServer } from "../../shared/spire/types.js";

const TD = "bench.example";
const log = (m: string) => process.stderr.write(`[bench] ${m}\n`);
const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

async function latency(
  name: string,
  n: number,
  call: () => Promise<unknown>,
): Promise<{ p50Ms: number; p95Ms: number }> {
  for (let i = 0; i < 10; i++) await call(); // warm-up: connection, TLS, caches
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await call();
    samples.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  samples.sort((a, b) => a - b);
  const res = { p50Ms: round(percentile(samples, 50)), p95Ms: round(percentile(samples, 95)) };
  log(`${name}: median ${res.p50Ms} ms, p95 ${res.p95Ms} ms (${n} calls)`);
  return res;
}

const repoRoot = resolve(import.meta.dirname, "../..");

function installViaCli(extraArgs: string[], env: NodeJS.ProcessEnv): number {
  const started = Date.now();
  const res = spawnSync(
    join(repoRoot, "node_modules/.bin/tsx"),
    [join(repoRoot, "scripts/install-spire.ts"), ...extraArgs],
    {
      env,
      stdio: ["ignore", "pipe", "inherit"],
      encoding: "utf8",
      timeout: 60 * 60_000,
    },
  );
  if (res.status !== 0) throw new Error(`install-spire failed (exit ${res.status})`);
  return round((Date.now() - started) / 1000, 1);
}

async function agentToSvid(
  server: SpireServerHandle,
  api: SpireServer,
  bins: SpireBinaries,
  i: number,
  entryFirst: boolean,
) {
  const app = `bench-${entryFirst ? "pre" : "post"}-${i}`;
  const wid = workloadId(
    TD,
    "1a2b3c4d-0000-4000-8000-0000000000bb",
    `1a2b3c4d-0000-4000-8000-${String(i).padStart(12, "0")}`,
  );
  const spec = {
    spiffeId: wid,
    parentId: agentAliasId(TD, app),
    selectors: [{ type: "unix", value: `uid:${process.getuid?.() ?? 0}` }],
  };
  const [token] = await api.createJoinTokens([agentAliasId(TD, app)], 600);
  if (!token) throw new Error("no token");
  if (entryFirst) await api.createEntries([spec]);
  const mark = server.logs.mark();
  const agent = await startSpireAgent({
    serverAddress: server.bindAddress,
    serverPort: server.port,
    trustDomain: TD,
    trustBundlePath: join(server.dir, "bundle.pem"),
    joinToken: token.value,
    bins,
    name: app,
  });
  try {
    await agent.waitHealthy(60_000);
    const attestedMs = Date.now() - agent.startedAt;
    if (!entryFirst) await api.createEntries([spec]);
    const registeredAt = Date.now();
    const signed = await server.waitForLog((l) => l.msg === "Signed X509 SVID" && l.json?.spiffe_id === wid, {
      since: mark,
      timeoutMs: 60_000,
    });
    await agent.waitForWorkloadSvid(wid, { timeoutMs: 60_000 });
    const servedAt = Date.now();
    return {
      attestedSeconds: round(attestedMs / 1000),
      signedSeconds: round((signed.seenAt - (entryFirst ? agent.startedAt : registeredAt)) / 1000),
      servedSeconds: round((servedAt - (entryFirst ? agent.startedAt : registeredAt)) / 1000),
    };
  } finally {
    await agent.dispose();
  }
}

const median = (xs: number[]) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );

async function main() {
  const { values } = parseArgs({
    options: {
      calls: { type: "string", default: "200" },
      agents: { type: "string", default: "3" },
      "fresh-install": { type: "boolean", default: false },
    },
  });
  const calls = Number(values.calls);
  const agentRuns = Number(values.agents);
  const figures: Record<string, unknown> = {};

  const bins = await ensureSpire();
  figures.spireVersion = bins.version;
  figures.installCachedSeconds = installViaCli([], process.env);
  log(`install with a warm cache (CLI, incl. tsx start): ${figures.installCachedSeconds} s`);

  if (values["fresh-install"]) {
    const tools = mkdtempSync(join(tmpdir(), "spire-fresh-tools-"));
    const gocache = mkdtempSync(join(tmpdir(), "spire-fresh-gocache-"));
    try {
      log("install from an empty tools cache and an empty Go build cache (minutes)...");
      figures.installFreshSeconds = installViaCli(["--tools-dir", tools, "--no-path"], {
        ...process.env,
        GOCACHE: gocache,
      });
      log(`fresh install: ${figures.installFreshSeconds} s`);
    } finally {
      rmSync(tools, { recursive: true, force: true });
      spawnSync("chmod", ["-R", "u+w", gocache]);
      rmSync(gocache, { recursive: true, force: true });
    }
  }

  const adminId = `spiffe://${TD}/bench/admin`;
  const server = await startSpireServer({ trustDomain: TD, bins, adminIds: [adminId] });
  const api = server.client();
  try {
    await server.writeBundle(join(server.dir, "bundle.pem"));
    const [seed] = await api.createJoinTokens([agentAliasId(TD, "latency")], 600);
    const unix: Record<string, unknown> = {};
    unix.getBundle = await latency("unix GetBundle", calls, () => api.getBundle());
    unix.listAgents = await latency("unix ListAgents", calls, () => api.listAgents());
    unix.listEntriesByParent = await latency("unix ListEntries", calls, () =>
      api.listEntries({ byParentId: seed?.agentId }),
    );
    unix.createJoinToken = await latency("unix CreateJoinToken", calls, () =>
      api.createJoinTokens([agentAliasId(TD, "latency")], 60),
    );
    figures.grpcUnixSocket = unix;

    const bundle = await api.getBundle();
    const admin = await mintAdminSvid(api, adminId, 3600);
    const tcp = new GrpcSpireServer({
      trustDomain: TD,
      target: {
        kind: "tcp",
        host: server.bindAddress,
        port: server.port,
        trustBundlePem: bundle.pem,
        clientCertChainPem: admin.certChainPem,
        clientKeyPem: admin.keyPem,
      },
    });
    try {
      const t: Record<string, unknown> = {};
      t.getBundle = await latency("tcp+mTLS GetBundle", calls, () => tcp.getBundle());
      t.listAgents = await latency("tcp+mTLS ListAgents", calls, () => tcp.listAgents());
      t.listEntriesByParent = await latency("tcp+mTLS ListEntries", calls, () =>
        tcp.listEntries({ byParentId: seed?.agentId }),
      );
      figures.grpcTcpMtls = t;
    } finally {
      await tcp.close();
    }

    for (const entryFirst of [true, false]) {
      const runs = [];
      for (let i = 0; i < agentRuns; i++) runs.push(await agentToSvid(server, api, bins, i, entryFirst));
      const key = entryFirst
        ? "agentStartToFirstSvid_entryRegisteredFirst"
        : "entryToSvid_entryRegisteredAfterAttestation";
      figures[key] = {
        runs,
        medianAttestedSeconds: median(runs.map((r) => r.attestedSeconds)),
        medianSignedSeconds: median(runs.map((r) => r.signedSeconds)),
        medianServedSeconds: median(runs.map((r) => r.servedSeconds)),
      };
      log(`${key}: ${JSON.stringify(figures[key])}`);
    }
  } finally {
    await api.close();
    await server.dispose();
  }
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exitCode = 1;
});
