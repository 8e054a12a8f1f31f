/**
 * The Logs query API over HTTPS, called through the real @azure/monitor-query-logs client, over
 * what a real spire-server logged while real agents attested and fetched workload SVIDs.
 */
import { LogsQueryClient, LogsQueryResultStatus } from "@azure/monitor-query-logs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SandboxTokenCredential } from "../../sandbox/azure/credential.js";
import { type FileFollower, followSpireServerLog } from "../../sandbox/azure/logs/follow.js";
import { type LogsApi, startLogsApi } from "../../sandbox/azure/logs/server.js";
import { LogStore } from "../../sandbox/azure/logs/store.js";
import { type LoopbackTls, makeLoopbackTls } from "../../sandbox/azure/tls.js";
import {
  type SpireAgentHandle,
  type SpireServerHandle,
  startSpireAgent,
  startSpireServer,
} from "../../sandbox/spire/index.js";
import { loadKql } from "../../shared/kql/index.js";

const TD = "logs.test";
const APPS = ["app-a", "app-b"];
const SCOPES = ["https://api.loganalytics.io/.default"];

let tls: LoopbackTls;
let store: LogStore;
let api: LogsApi;
let server: SpireServerHandle | undefined;
let follower: FileFollower | undefined;
const agents: SpireAgentHandle[] = [];
let client: LogsQueryClient;

async function joinToken(s: SpireServerHandle, spiffeId: string): Promise<string> {
  const res = await s.cli(["token", "generate", "-spiffeID", spiffeId, "-output", "json"]);
  if (res.code !== 0) throw new Error(`token generate failed: ${res.stderr}`);
  return (JSON.parse(res.stdout) as { value: string }).value;
}

beforeAll(async () => {
  tls = await makeLoopbackTls();
  store = new LogStore();
  api = await startLogsApi({ store, tls });
  client = new LogsQueryClient(new SandboxTokenCredential(), {
    endpoint: api.endpoint,
    credentials: { scopes: SCOPES },
    tlsOptions: { ca: tls.caPem },
    retryOptions: { maxRetries: 0 },
  });

  server = await startSpireServer({ trustDomain: TD });
  follower = await followSpireServerLog(server.logFile, store, { pollMs: 100, processId: server.pid });
  const bundle = `${server.dir}/bundle.pem`;
  await server.writeBundle(bundle);
  for (const app of APPS) {
    const agentId = `spiffe://${TD}/agent/${app}`;
    const entry = await server.cli([
      "entry",
      "create",
      "-parentID",
      agentId,
      "-spiffeID",
      `spiffe://${TD}/workload/${app}`,
      "-selector",
      "unix:uid:0",
    ]);
    if (entry.code !== 0) throw new Error(`entry create failed: ${entry.stderr}`);
    const token = await joinToken(server, agentId);
    agents.push(
      await startSpireAgent({
        serverAddress: server.bindAddress,
        serverPort: server.port,
        trustDomain: TD,
        trustBundlePath: bundle,
        joinToken: token,
        name: app,
      }),
    );
  }
  // The agents sync their entries a few seconds after attesting; wait for both signings.
  for (const app of APPS) {
    await server.waitForLog(
      (l) => l.msg === "Signed X509 SVID" && l.json?.spiffe_id === `spiffe://${TD}/workload/${app}`,
      {
        timeoutMs: 45_000,
        what: `the signing of ${app}'s workload SVID`,
      },
    );
  }
  await follower.flush();
}, 120_000);

afterAll(async () => {
  await follower?.stop();
  await Promise.all(agents.map((a) => a.dispose()));
  await server?.dispose();
  await api?.close();
});

describe("Logs query API over real SPIRE logs", () => {
  it("every spire-server line is in Syslog with its own time", async () => {
    const result = await client.queryWorkspace(
      api.workspaceId,
      'Syslog | where ProcessName == "spire-server" | summarize n = count(), earliest = min(TimeGenerated), latest = max(TimeGenerated)',
      { duration: "PT1H" },
    );
    expect(result.status).toBe(LogsQueryResultStatus.Success);
    if (result.status !== LogsQueryResultStatus.Success) return;
    const [n, first, latest] = result.tables[0]?.rows[0] ?? [];
    expect(n).toBe(follower?.lines);
    expect(first).toBeInstanceOf(Date);
    expect((latest as Date).getTime()).toBeGreaterThan((first as Date).getTime());
    expect((latest as Date).getTime()).toBeLessThanOrEqual(Date.now());
  });

  it("workload-svid-signed gives the last signing per SPIFFE ID, through the SDK", async () => {
    const result = await client.queryWorkspace(api.workspaceId, loadKql("workload-svid-signed"), {
      duration: "PT1H",
    });
    expect(result.status).toBe(LogsQueryResultStatus.Success);
    if (result.status !== LogsQueryResultStatus.Success) return;
    const table = result.tables[0];
    expect(table?.columnDescriptors.map((c) => c.name)).toEqual([
      "spiffe_id",
      "last_signed",
      "expires_at",
      "entry_id",
      "agent_id",
      "serial_num",
      "signings",
    ]);
    const bySpiffeId = new Map((table?.rows ?? []).map((r) => [String(r[0]), r]));
    for (const app of APPS) {
      const row = bySpiffeId.get(`spiffe://${TD}/workload/${app}`);
      expect(row, `a row for ${app}`).toBeDefined();
      const [, lastSigned, expiresAt, entryId, agentId, serial] = row ?? [];
      expect(lastSigned).toBeInstanceOf(Date);
      expect(Date.now() - (lastSigned as Date).getTime()).toBeLessThan(120_000);
      expect((expiresAt as Date).getTime()).toBeGreaterThan((lastSigned as Date).getTime());
      expect(entryId).toMatch(/^[0-9a-f-]{36}$/);
      expect(agentId).toMatch(new RegExp(`^spiffe://${TD}/spire/agent/join_token/`));
      expect(serial).toMatch(/^[0-9]+$/);
    }
    // The server's own SVID is signed too, without an agent.
    expect(bySpiffeId.get(`spiffe://${TD}/spire/server`)?.[4]).toBe("");
  });

  it("a timespan that ends before the agents ran finds nothing", async () => {
    const endTime = new Date(Date.now() - 10 * 60_000);
    const result = await client.queryWorkspace(api.workspaceId, loadKql("workload-svid-signed"), {
      startTime: new Date(endTime.getTime() - 3_600_000),
      endTime,
    });
    expect(result.status).toBe(LogsQueryResultStatus.Success);
    if (result.status === LogsQueryResultStatus.Success) expect(result.tables[0]?.rows).toEqual([]);
  });

  it("unsupported KQL is a 400 BadArgumentError naming the operator", async () => {
    const err = await client
      .queryWorkspace(api.workspaceId, "Syslog | mv-expand SyslogMessage", { duration: "PT1H" })
      .then(
        () => undefined,
        (e: unknown) => e as { statusCode?: number; code?: string; message: string },
      );
    expect(err?.statusCode).toBe(400);
    expect(err?.code).toBe("BadArgumentError");
    expect(err?.message).toContain("'mv-expand'");
  });

  it("a result over the row limit is a PartialFailure with the rows that fit", async () => {
    const small = await startLogsApi({ store, tls, maxRows: 2 });
    try {
      const c = new LogsQueryClient(new SandboxTokenCredential(), {
        endpoint: small.endpoint,
        credentials: { scopes: SCOPES },
        tlsOptions: { ca: tls.caPem },
      });
      const result = await c.queryWorkspace(small.workspaceId, "Syslog | project TimeGenerated", {
        duration: "PT1H",
      });
      expect(result.status).toBe(LogsQueryResultStatus.PartialFailure);
      if (result.status === LogsQueryResultStatus.PartialFailure) {
        expect(result.partialTables[0]?.rows).toHaveLength(2);
        expect(result.partialError.code).toBe("PartialError");
      }
    } finally {
      await small.close();
    }
  });

  it("is HTTPS only: a client that does not trust the simulator's CA fails the handshake", async () => {
    const untrusting = new LogsQueryClient(new SandboxTokenCredential(), {
      endpoint: api.endpoint,
      credentials: { scopes: SCOPES },
      retryOptions: { maxRetries: 0 },
    });
    await expect(
      untrusting.queryWorkspace(api.workspaceId, "Syslog | count", { duration: "PT1H" }),
    ).rejects.toThrow(/certificate/i);
  });
});
