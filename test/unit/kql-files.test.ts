import { describe, expect, it } from "vitest";
import { analyzeKql, normalizeKustoType } from "../../sandbox/azure/logs/kusto.js";
import { LogStore } from "../../sandbox/azure/logs/store.js";
import { KQL_QUERIES, listKqlFiles, loadKql } from "../../shared/kql/index.js";
import { debugHidden, readServerLogLevel } from "../../shared/kql/server-log-level.js";
import { LOG_TABLES } from "../../shared/kql/tables.js";

const MIN = 60_000;
const ago = (ms: number) => new Date(Date.now() - ms);

function signed(spiffeId: string, minutesAgo: number, serial: string, agent?: string): string {
  const t = ago(minutesAgo * MIN);
  return JSON.stringify({
    ...(agent ? { caller_id: agent, entry_id: `entry-${spiffeId.split("/").pop()}` } : {}),
    expiration: new Date(t.getTime() + 60 * MIN).toISOString(),
    level: "debug",
    msg: "Signed X509 SVID",
    serial_num: serial,
    spiffe_id: spiffeId,
    subsystem_name: agent ? "api" : "svid_rotator",
    time: t.toISOString(),
  });
}

function sampleStore(): LogStore {
  const store = new LogStore();
  const agent = "spiffe://td/spire/agent/join_token/7b1c";
  for (const line of [
    signed("spiffe://td/workload/app1", 50, "11", agent),
    signed("spiffe://td/workload/app1", 20, "12", agent),
    signed("spiffe://td/workload/app2", 30, "21", agent),
    signed("spiffe://td/spire/server", 40, "1"),
    JSON.stringify({
      level: "info",
      msg: "Renewing agent SVID",
      caller_id: agent,
      time: ago(10 * MIN).toISOString(),
    }),
    // Mentions the message but is not a signing: the JSON check must drop it.
    JSON.stringify({
      level: "info",
      msg: "Failed to sign: see Signed X509 SVID",
      time: ago(5 * MIN).toISOString(),
    }),
  ]) {
    store.ingestSyslog(line);
  }
  const replica = {
    app: "app1",
    revision: "app1--r2",
    replica: "app1--r2-abc",
    container: "spire-agent",
    stream: "stderr" as const,
  };
  const spent =
    '{"error":"failed to receive attestation response: rpc error: code = InvalidArgument desc = failed to attest: join token does not exist or has already been used","level":"warning","msg":"Failed to retrieve attestation result"}';
  store.ingestConsole({ ...replica, log: spent, time: ago(4 * MIN) });
  store.ingestConsole({ ...replica, log: spent, time: ago(3 * MIN) });
  store.ingestConsole({
    ...replica,
    log: '{"level":"error","msg":"Agent crashed","error":"..."}',
    time: ago(2 * MIN),
  });
  store.ingestConsole({
    ...replica,
    app: "app2",
    revision: "app2--r1",
    log: '{"level":"info","msg":"Renewing X509-SVID"}',
  });
  return store;
}

describe("the product's .kql files", () => {
  it("are all known to the loader", () => {
    expect(listKqlFiles()).toEqual([...KQL_QUERIES].sort());
  });

  for (const name of KQL_QUERIES) {
    it(`${name}: Microsoft's Kusto analyzer accepts it against the real table schemas`, () => {
      const analysis = analyzeKql(loadKql(name), LOG_TABLES);
      expect(analysis.diagnostics.filter((d) => d.severity === "Error")).toEqual([]);
      expect(analysis.resultColumns.length).toBeGreaterThan(0);
    });

    it(`${name}: the engine answers with the columns Kusto infers`, () => {
      const result = sampleStore().query(loadKql(name));
      const expected = analyzeKql(loadKql(name), LOG_TABLES).resultColumns.map((c) => ({
        name: c.name,
        type: normalizeKustoType(c.type),
      }));
      expect(result.columns).toEqual(expected);
    });
  }

  it("workload-svid-signed: the last signing per SPIFFE ID", () => {
    const result = sampleStore().query(loadKql("workload-svid-signed"));
    const rows = result.rows.map((r) => Object.fromEntries(result.columns.map((c, i) => [c.name, r[i]])));
    expect(rows.map((r) => [r.spiffe_id, r.serial_num, r.signings])).toEqual([
      ["spiffe://td/spire/server", "1", 1],
      ["spiffe://td/workload/app1", "12", 2],
      ["spiffe://td/workload/app2", "21", 1],
    ]);
    const app1 = rows[1] as Record<string, unknown>;
    expect((app1.last_signed as Date).getTime()).toBeCloseTo(Date.now() - 20 * MIN, -4);
    expect(app1.agent_id).toBe("spiffe://td/spire/agent/join_token/7b1c");
    expect(app1.expires_at).toBeInstanceOf(Date);
  });

  it("agent-attestation-failures: failures per app, with the last reason", () => {
    const result = sampleStore().query(loadKql("agent-attestation-failures"));
    const rows = result.rows.map((r) => Object.fromEntries(result.columns.map((c, i) => [c.name, r[i]])));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      ContainerAppName: "app1",
      failures: 3,
      revisions: 1,
      last_revision: "app1--r2",
      last_reason: "agent-crashed",
    });
  });

  it("spire-server-log-level: a DEBUG server shows debug lines and signings", () => {
    const result = sampleStore().query(loadKql("spire-server-log-level"));
    const rows = result.rows.map((r) => Object.fromEntries(result.columns.map((c, i) => [c.name, r[i]])));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ lines: 6, debug_lines: 4, info_lines: 2, signings: 4, attestations: 0 });
  });

  it("spire-server-log-level: an INFO server shows attestations and renewals but no debug line", () => {
    const store = new LogStore();
    for (const [msg, minutesAgo] of [
      ["Agent attestation request completed", 3],
      ["Renewing agent SVID", 2],
    ] as const) {
      store.ingestSyslog(JSON.stringify({ level: "info", msg, time: ago(minutesAgo * MIN).toISOString() }));
    }
    const result = store.query(loadKql("spire-server-log-level"));
    const rows = result.rows.map((r) => Object.fromEntries(result.columns.map((c, i) => [c.name, r[i]])));
    expect(rows[0]).toMatchObject({ lines: 2, debug_lines: 0, info_lines: 2, signings: 0, attestations: 1 });
    const columnDescriptors = result.columns.map((c) => ({ name: c.name, type: c.type }));
    const summary = readServerLogLevel({ name: "t", columnDescriptors, rows: result.rows } as never);
    expect(summary).toMatchObject({ lines: 2, debugLines: 0, infoLines: 2, signings: 0 });
    expect(debugHidden(summary, ago(10 * MIN))).toBe(true);
    expect(debugHidden(summary, ago(1 * MIN))).toBe(false);
  });
});

describe("health-sweep.kql", () => {
  const rowsOf = (store: LogStore) => {
    const result = store.query(loadKql("health-sweep"));
    return result.rows.map((r) => Object.fromEntries(result.columns.map((c, i) => [c.name, r[i]])));
  };

  it("one row per fact: signings per workload, renewals per agent, failures per app, the server's last line", () => {
    const rows = rowsOf(sampleStore());
    const facts = rows.map((r) => [r.fact, r.key, r.n]);
    expect(facts).toEqual(
      expect.arrayContaining([
        ["workload-signed", "spiffe://td/workload/app1", 2],
        ["workload-signed", "spiffe://td/workload/app2", 1],
        ["agent-renewed", "spiffe://td/spire/agent/join_token/7b1c", 1],
        ["agent-failures", "app1", 3],
        ["server-log", "", 6],
      ]),
    );
    expect(rows.filter((r) => r.fact === "workload-signed")).toHaveLength(3);
    const app1 = rows.find((r) => r.key === "spiffe://td/workload/app1")!;
    expect((app1.last_at as Date).getTime()).toBeCloseTo(Date.now() - 20 * MIN, -4);
    expect(rows.find((r) => r.fact === "agent-failures")?.detail).toBe("app1--r2");
  });

  it("an empty workspace answers no rows at all (no server-log row from an empty summarize)", () => {
    expect(rowsOf(new LogStore())).toEqual([]);
  });
});
