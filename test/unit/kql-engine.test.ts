import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { SUPPORTED_OPERATORS } from "../../sandbox/azure/logs/kql/engine.js";
import { KqlError } from "../../sandbox/azure/logs/kql/errors.js";
import { AGGREGATE_NAMES, SCALAR_FUNCTIONS } from "../../sandbox/azure/logs/kql/scalar.js";
import { Timespan } from "../../sandbox/azure/logs/kql/values.js";
import { analyzeKql, normalizeKustoType } from "../../sandbox/azure/logs/kusto.js";
import { LogStore } from "../../sandbox/azure/logs/store.js";
import { LOG_TABLES } from "../../shared/kql/tables.js";

const MIN = 60_000;

function store(): LogStore {
  const s = new LogStore();
  const now = Date.now();
  const lines: [number, string, string][] = [
    [50, "spire-server", '{"level":"info","msg":"Agent attestation request completed","agent_id":"a1"}'],
    [40, "spire-server", '{"level":"debug","msg":"Signed X509 SVID","spiffe_id":"spiffe://td/w1","n":3}'],
    [
      30,
      "spire-server",
      '{"level":"error","msg":"failed to attest: join token does not exist or has already been used"}',
    ],
    [20, "sshd", "Accepted publickey for azureuser from 10.0.0.9 port 50022"],
    [10, "spire-server", '{"level":"debug","msg":"Signed X509 SVID","spiffe_id":"spiffe://td/w2","n":5}'],
  ];
  for (const [m, processName, line] of lines)
    s.ingestSyslog(line, new Date(now - m * MIN), { processName, processId: m });
  s.ingestConsole({
    app: "app1",
    revision: "app1--a",
    replica: "r1",
    container: "agent",
    stream: "stderr",
    log: "x",
  });
  s.ingestConsole({
    app: "app2",
    revision: "app2--a",
    replica: "r2",
    container: "agent",
    stream: "stdout",
    log: "y",
  });
  s.ingestSystem({
    app: "app1",
    revision: "app1--a",
    replica: "r1",
    reason: "ContainerTerminated",
    type: "Warning",
    log: "exit 1",
  });
  return s;
}

const rowsOf = (q: string, s = store()) => {
  const t = s.query(q);
  return t.rows.map((r) => Object.fromEntries(t.columns.map((c, i) => [c.name, r[i]])));
};

describe("KQL engine: operators", () => {
  it("where with string operators, and/or, in, not", () => {
    expect(
      rowsOf(
        'Syslog | where ProcessName == "spire-server" and SyslogMessage has "Signed X509 SVID" | project ProcessID',
      ),
    ).toEqual([{ ProcessID: 40 }, { ProcessID: 10 }]);
    expect(
      rowsOf(
        'Syslog | where SyslogMessage contains "PUBLICKEY" or ProcessID in (50, 30) | project ProcessID',
      ),
    ).toHaveLength(3);
    expect(rowsOf('Syslog | where SyslogMessage startswith "accepted" | count')).toEqual([{ Count: 1 }]);
    expect(
      rowsOf('Syslog | where ProcessName != "sshd" and not(SyslogMessage has "Signed") | count'),
    ).toEqual([{ Count: 2 }]);
    expect(rowsOf('Syslog | where ProcessName in~ ("SSHD") | count')).toEqual([{ Count: 1 }]);
    expect(rowsOf('Syslog | where ProcessName !in ("sshd") | count')).toEqual([{ Count: 4 }]);
    expect(rowsOf('Syslog | where SyslogMessage !has "attest" | count')).toEqual([{ Count: 4 }]);
  });

  it("has matches whole terms, contains any substring", () => {
    expect(rowsOf('Syslog | where SyslogMessage has "Sign" | count')).toEqual([{ Count: 0 }]);
    expect(rowsOf('Syslog | where SyslogMessage contains "Sign" | count')).toEqual([{ Count: 2 }]);
  });

  it("ago(), now(), comparisons on datetime, between", () => {
    expect(rowsOf("Syslog | where TimeGenerated > ago(35m) | count")).toEqual([{ Count: 3 }]);
    expect(rowsOf("Syslog | where TimeGenerated between (ago(45m) .. ago(15m)) | count")).toEqual([
      { Count: 3 },
    ]);
    expect(rowsOf("Syslog | where now() - TimeGenerated < 15m | count")).toEqual([{ Count: 1 }]);
  });

  it("extend with parse_json, member access, tostring, extract; project and renames", () => {
    const rows = rowsOf(
      'Syslog | where ProcessName == "spire-server" | extend e = parse_json(SyslogMessage) | extend id = tostring(e.spiffe_id), n = tolong(e["n"]), lvl = extract("\\"level\\":\\"(\\\\w+)\\"", 1, SyslogMessage) | where isnotempty(id) | project id, n, lvl, twice = n * 2',
    );
    expect(rows).toEqual([
      { id: "spiffe://td/w1", n: 3, lvl: "debug", twice: 6 },
      { id: "spiffe://td/w2", n: 5, lvl: "debug", twice: 10 },
    ]);
  });

  it("parse with typed columns", () => {
    expect(
      rowsOf(
        'Syslog | where ProcessName == "sshd" | parse SyslogMessage with * "from " ip " port " port:long | project ip, port',
      ),
    ).toEqual([{ ip: "10.0.0.9", port: 50022 }]);
  });

  it("summarize count/max/min/dcount/arg_max by columns and bin()", () => {
    const rows = rowsOf(
      "Syslog | summarize n = count(), latest = max(TimeGenerated), lowest = min(ProcessID), kinds = dcount(SeverityLevel), arg_max(TimeGenerated, SyslogMessage) by ProcessName | order by ProcessName asc",
    );
    expect(rows.map((r) => [r.ProcessName, r.n, r.lowest, r.kinds])).toEqual([
      ["spire-server", 4, 10, 3],
      ["sshd", 1, 20, 1],
    ]);
    expect(String(rows[0]?.SyslogMessage)).toContain("spiffe://td/w2");
    const binned = rowsOf("Syslog | summarize count() by bin(TimeGenerated, 1d)");
    expect(binned).toHaveLength(
      Math.floor(Date.now() / 86_400_000) === Math.floor((Date.now() - 50 * MIN) / 86_400_000) ? 1 : 2,
    );
  });

  it("summarize with no rows and no by-columns gives one row", () => {
    expect(rowsOf('Syslog | where ProcessName == "none" | summarize count(), max(TimeGenerated)')).toEqual([
      { count_: 0, max_TimeGenerated: null },
    ]);
  });

  it("order by, take, limit, top, distinct", () => {
    expect(rowsOf("Syslog | order by ProcessID asc | take 2 | project ProcessID")).toEqual([
      { ProcessID: 10 },
      { ProcessID: 20 },
    ]);
    expect(rowsOf("Syslog | sort by ProcessID | limit 1 | project ProcessID")).toEqual([{ ProcessID: 50 }]);
    expect(rowsOf("Syslog | top 2 by ProcessID asc | project ProcessID")).toEqual([
      { ProcessID: 10 },
      { ProcessID: 20 },
    ]);
    expect(rowsOf("Syslog | distinct ProcessName | order by ProcessName asc")).toEqual([
      { ProcessName: "spire-server" },
      { ProcessName: "sshd" },
    ]);
  });

  it("join kind=leftouter on one key, and on $left/$right", () => {
    const rows = rowsOf(
      "ContainerAppConsoleLogs | project ContainerAppName, Stream | join kind=leftouter (ContainerAppSystemLogs | project ContainerAppName, Reason) on ContainerAppName | order by ContainerAppName asc",
    );
    expect(rows).toEqual([
      {
        ContainerAppName: "app1",
        Stream: "stderr",
        ContainerAppName1: "app1",
        Reason: "ContainerTerminated",
      },
      { ContainerAppName: "app2", Stream: "stdout", ContainerAppName1: null, Reason: null },
    ]);
    const inner = rowsOf(
      "ContainerAppConsoleLogs | join kind=inner (ContainerAppSystemLogs) on $left.ContainerGroupName == $right.ReplicaName | project ContainerAppName, Reason",
    );
    expect(inner).toEqual([{ ContainerAppName: "app1", Reason: "ContainerTerminated" }]);
  });

  it("let statements, scalar and tabular", () => {
    expect(
      rowsOf(
        'let p = "sshd"; let window = 1h; let T = Syslog | where TimeGenerated > ago(window); T | where ProcessName == p | count',
      ),
    ).toEqual([{ Count: 1 }]);
  });

  it("the _CL tables carry the suffixed columns", () => {
    expect(
      rowsOf('ContainerAppConsoleLogs_CL | where ContainerAppName_s == "app1" | project Log_s, Stream_s'),
    ).toEqual([{ Log_s: "x", Stream_s: "stderr" }]);
    expect(rowsOf("ContainerAppSystemLogs_CL | project Reason_s, Type_s")).toEqual([
      { Reason_s: "ContainerTerminated", Type_s: "Warning" },
    ]);
  });

  it("union of the resource-specific and _CL tables, and print", () => {
    const rows = rowsOf(
      "union withsource = T ContainerAppConsoleLogs, ContainerAppConsoleLogs_CL | extend app = coalesce(ContainerAppName, ContainerAppName_s) | summarize n = count() by T, app | order by T asc, app asc",
    );
    expect(rows).toEqual([
      { T: "ContainerAppConsoleLogs", app: "app1", n: 1 },
      { T: "ContainerAppConsoleLogs", app: "app2", n: 1 },
      { T: "ContainerAppConsoleLogs_CL", app: "app1", n: 1 },
      { T: "ContainerAppConsoleLogs_CL", app: "app2", n: 1 },
    ]);
    expect(rowsOf('print a = 1 + 1, "x"')).toEqual([{ a: 2, print_1: "x" }]);
  });

  it("timespan arithmetic", () => {
    const [row] = rowsOf(
      "Syslog | take 1 | project a = 1h / 1m, b = 90s * 2, c = TimeGenerated - TimeGenerated",
    );
    expect(row?.a).toBe(60);
    expect((row?.b as Timespan | undefined)?.ms).toBe(180_000);
    expect(row?.c).toBeInstanceOf(Timespan);
  });
});

describe("KQL engine: errors", () => {
  const fails = (q: string) => {
    try {
      store().query(q);
    } catch (err) {
      expect(err).toBeInstanceOf(KqlError);
      return err as KqlError;
    }
    throw new Error(`no error for: ${q}`);
  };

  it("names the unsupported operator, function or statement", () => {
    expect(fails("Syslog | mv-expand SyslogMessage")).toMatchObject({
      kind: "UnsupportedError",
      message: expect.stringContaining("'mv-expand'"),
    });
    expect(fails("Syslog | render timechart")).toMatchObject({
      kind: "UnsupportedError",
      message: expect.stringContaining("'render'"),
    });
    expect(fails("Syslog | lookup ContainerAppConsoleLogs on Computer")).toMatchObject({
      message: expect.stringContaining("'lookup'"),
    });
    expect(fails("Syslog | summarize percentile(ProcessID, 90)")).toMatchObject({
      message: expect.stringContaining("'percentile'"),
    });
    expect(fails("Syslog | extend h = hash(Computer)")).toMatchObject({
      message: expect.stringContaining("'hash'"),
    });
    expect(fails("Syslog | join kind=fullouter (Syslog) on Computer")).toMatchObject({
      message: expect.stringContaining("fullouter"),
    });
  });

  it("reports unknown names and syntax errors", () => {
    expect(fails("Syslog | where Nope == 1")).toMatchObject({
      kind: "SemanticError",
      message: expect.stringContaining("'Nope'"),
    });
    expect(fails("NoSuchTable | take 1")).toMatchObject({
      kind: "SemanticError",
      message: expect.stringContaining("'NoSuchTable'"),
    });
    expect(fails("Syslog | where")).toMatchObject({
      kind: "SyntaxError",
      message: expect.stringContaining("line 1"),
    });
  });
});

describe("KQL engine: result columns agree with Microsoft's Kusto analyzer", () => {
  const corpus = [
    "Syslog | extend tostring(ProcessID), ProcessID + 1",
    "Syslog | project tostring(ProcessID), Computer, x = 1, 2",
    "Syslog | summarize count(), max(TimeGenerated), dcount(Computer), countif(ProcessID > 1), avg(ProcessID), sum(ProcessID), min(EventTime), make_set(Computer), arg_min(TimeGenerated, Computer) by bin(TimeGenerated, 1h), tolower(Computer), HostName",
    "Syslog | summarize arg_max(TimeGenerated, *) by Computer",
    "Syslog | summarize arg_max(EventTime, TimeGenerated, Computer) by Computer",
    "Syslog | join kind=leftouter (ContainerAppConsoleLogs) on $left.Computer == $right.ContainerAppName",
    "Syslog | join kind=leftouter (Syslog | project Computer, X = 1) on Computer",
    'Syslog | parse SyslogMessage with * "a=" a:long " b=" b | project a, b',
    "Syslog | count",
    'Syslog | extend d = parse_json(SyslogMessage) | extend d.msg, e = d.x.y, f = d["z"]',
    "Syslog | summarize count() by bin(ProcessID, 10)",
    "Syslog | extend x = TimeGenerated - EventTime, y = 5 / 2, z = 5.0 / 2, w = 1h / 1m, v = 1h * 2",
    "Syslog | distinct Computer, HostName",
    "Syslog | top 3 by TimeGenerated",
    "Syslog | summarize (t, c) = arg_max(TimeGenerated, Computer), n = count() by ProcessName",
    "ContainerAppSystemLogs | summarize restarts = countif(Reason == 'ContainerTerminated') by ContainerAppName, RevisionName",
    "ContainerAppConsoleLogs_CL | project-away TenantId, _ResourceId | project-rename App = ContainerAppName_s",
    "union ContainerAppConsoleLogs, ContainerAppConsoleLogs_CL",
    "ContainerAppSystemLogs | union withsource = SourceTable ContainerAppSystemLogs_CL",
    "union ContainerAppSystemLogs, (ContainerAppSystemLogs_CL | extend Count = Count_d)",
    'print x = 1, "a", now()',
  ];
  const s = store();
  for (const q of corpus) {
    it(q, () => {
      const analysis = analyzeKql(q, LOG_TABLES);
      expect(analysis.diagnostics.filter((d) => d.severity === "Error")).toEqual([]);
      const expected = analysis.resultColumns.map((c) => ({
        name: c.name,
        type: normalizeKustoType(c.type),
      }));
      expect(s.query(q).columns).toEqual(expected);
    });
  }
});

describe("KQL engine: the documented subset", () => {
  it("sandbox/azure/logs/README.md names every operator, function and aggregate the engine runs", () => {
    const readme = readFileSync(new URL("../../sandbox/azure/logs/README.md", import.meta.url), "utf8");
    const missing = [...SUPPORTED_OPERATORS, ...SCALAR_FUNCTIONS, ...AGGREGATE_NAMES].filter(
      (name) => !new RegExp(`[\\s\`(/]${name.replace("-", "\\-")}[\\s\`,.()]`).test(readme),
    );
    expect(missing).toEqual([]);
  });
});
