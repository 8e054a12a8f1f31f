/**
 * The Log Analytics workspace of the sandbox: what really happens (spire-server's log lines,
 * replica console output, Container Apps platform events) goes in through the ingestion API and
 * lands in the tables Azure would fill, with their real columns; queries run on the KQL engine.
 * Console and system events are written both to the resource-specific tables and to the older
 * `_CL` tables, so queries for either destination work.
 */
import {
  CONTAINER_APP_CONSOLE_LOGS,
  CONTAINER_APP_CONSOLE_LOGS_CL,
  CONTAINER_APP_SYSTEM_LOGS,
  CONTAINER_APP_SYSTEM_LOGS_CL,
  type KqlTableSchema,
  LOG_TABLES,
  SYSLOG,
} from "../../../shared/kql/tables.js";
import { REAL_TIME, type ScaledClock, simulatedTime } from "./clock.js";
import { type RunOptions, runKql, type TableSource } from "./kql/engine.js";
import type { Row, Table, Value } from "./kql/values.js";

/** A line some process wrote to syslog (e.g. spire-server's JSON log). */
export interface SyslogInput {
  line: string;
  /** When it was written (real time); default now. The tailer takes it from the line's "time". */
  time?: Date;
  processName?: string;
  processId?: number;
  /** syslog severity name: debug, info, notice, warning, err, crit; default from a JSON "level". */
  severity?: string;
  facility?: string;
  /** The VM's name; default the store's `computer`. */
  computer?: string;
}

/** One line a replica's container printed. Field names match sandbox/azure's EventLog entries. */
export interface ConsoleLogInput {
  app: string;
  revision: string;
  /** Replica name (ContainerGroupName). */
  replica?: string;
  container: string;
  stream: "stdout" | "stderr";
  log: string;
  /** Real time the line was printed; default now. */
  time?: Date;
  resourceGroup?: string;
  image?: string;
  environment?: string;
}

/** A Container Apps platform event (replica started, container crashed, revision ready...). */
export interface SystemLogInput {
  app: string;
  revision: string;
  replica?: string;
  container?: string;
  /** e.g. ReplicaStarted, ContainerTerminated, ContainerBackOff, RevisionReady, RevisionFailed. */
  reason: string;
  type: "Normal" | "Warning";
  log: string;
  count?: number;
  time?: Date;
  resourceGroup?: string;
  environment?: string;
}

/** What other sandbox parts (the Container Apps simulator's replicas, the tailer) call. */
export interface LogIngestion {
  ingestSyslog(line: string, time?: Date, extra?: Omit<SyslogInput, "line" | "time">): void;
  ingestConsole(entry: ConsoleLogInput): void;
  ingestSystem(entry: SystemLogInput): void;
}

export interface LogStoreOptions {
  clock?: ScaledClock;
  /** Workspace id (TenantId column); default a fixed sandbox GUID. */
  workspaceId?: string;
  subscriptionId?: string;
  /** Syslog Computer/HostName of the SPIRE server VM. */
  computer?: string;
  environment?: string;
  location?: string;
  /** Oldest rows drop beyond this, per table (default 200,000). */
  maxRowsPerTable?: number;
  /**
   * Ingestion latency on the store's clock: a row becomes visible to queries this long after it was
   * written, drawn uniformly from [min, max] ms. Azure Monitor documents a typical ingestion latency
   * of 20 s to 3 min ("Log data ingestion time in Azure Monitor"); default 0 (visible at once).
   */
  ingestionDelayMs?: { min: number; max: number };
  /** Source of the delay draw (tests pin it); default Math.random. */
  random?: () => number;
}

export interface TimeRange {
  /** ms since epoch, inclusive. */
  start: number;
  /** ms since epoch, inclusive. */
  end: number;
}

export const SANDBOX_WORKSPACE_ID = "5a4db0c4-6f0a-4c2e-9d55-000000000001";

const SEVERITY_OF_LEVEL: Record<string, string> = {
  trace: "debug",
  debug: "debug",
  info: "info",
  warn: "warning",
  warning: "warning",
  error: "err",
  fatal: "crit",
  panic: "emerg",
};

/** `time` and `level` of a JSON log line (logrus's json format), if it is one. */
export function jsonLogFields(line: string): { time?: Date; level?: string } {
  if (!line.trimStart().startsWith("{")) return {};
  try {
    const parsed: unknown = JSON.parse(line);
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) return {};
    const { time, level } = parsed as { time?: unknown; level?: unknown };
    const ms = typeof time === "string" ? Date.parse(time) : Number.NaN;
    return {
      time: Number.isNaN(ms) ? undefined : new Date(ms),
      level: typeof level === "string" ? level : undefined,
    };
  } catch {
    return {};
  }
}

interface StoredTable {
  schema: KqlTableSchema;
  rows: Row[];
  /** Per row of `rows`: when (store clock, ms) it becomes visible to queries. */
  visibleAt: number[];
  timeIndex: number;
  ingested: number;
}

export class LogStore implements LogIngestion {
  readonly clock: ScaledClock;
  readonly workspaceId: string;
  private readonly tables = new Map<string, StoredTable>();
  private readonly opts: Required<Omit<LogStoreOptions, "clock" | "workspaceId" | "random">>;
  private readonly random: () => number;

  constructor(options: LogStoreOptions = {}) {
    this.clock = options.clock ?? REAL_TIME;
    this.workspaceId = options.workspaceId ?? SANDBOX_WORKSPACE_ID;
    this.opts = {
      subscriptionId: options.subscriptionId ?? "00000000-0000-4000-8000-000000000000",
      computer: options.computer ?? "vm-spire-server",
      environment: options.environment ?? "cae-sandbox",
      location: options.location ?? "westeurope",
      maxRowsPerTable: options.maxRowsPerTable ?? 200_000,
      ingestionDelayMs: options.ingestionDelayMs ?? { min: 0, max: 0 },
    };
    const { min, max } = this.opts.ingestionDelayMs;
    if (!(min >= 0 && max >= min))
      throw new Error(`ingestionDelayMs needs 0 <= min <= max, got ${min}..${max}`);
    this.random = options.random ?? Math.random;
    for (const schema of LOG_TABLES) {
      this.tables.set(schema.name, {
        schema,
        rows: [],
        visibleAt: [],
        timeIndex: schema.columns.findIndex((c) => c.name === "TimeGenerated"),
        ingested: 0,
      });
    }
  }

  private time(real: Date | undefined): Date {
    return new Date(real === undefined ? this.clock.now() : simulatedTime(this.clock, real));
  }

  private append(schema: KqlTableSchema, values: Record<string, Value>): void {
    const table = this.tables.get(schema.name);
    if (!table) throw new Error(`no table ${schema.name}`);
    const row = schema.columns.map((c) => {
      const v = values[c.name];
      if (v !== undefined) return v;
      return c.type === "string" ? "" : null;
    });
    const { min, max } = this.opts.ingestionDelayMs;
    table.rows.push(row);
    table.visibleAt.push(this.clock.now() + min + Math.round(this.random() * (max - min)));
    table.ingested += 1;
    if (table.rows.length > this.opts.maxRowsPerTable) {
      const drop = table.rows.length - this.opts.maxRowsPerTable;
      table.rows.splice(0, drop);
      table.visibleAt.splice(0, drop);
    }
  }

  private resourceId(resourceGroup: string | undefined, environment: string): string {
    return `/subscriptions/${this.opts.subscriptionId}/resourceGroups/${resourceGroup ?? "rg-sandbox-apps"}/providers/Microsoft.App/managedEnvironments/${environment}`;
  }

  ingestSyslog(line: string, time?: Date, extra: Omit<SyslogInput, "line" | "time"> = {}): void {
    const fields = jsonLogFields(line);
    const at = this.time(time ?? fields.time);
    const computer = extra.computer ?? this.opts.computer;
    const severity = extra.severity ?? SEVERITY_OF_LEVEL[(fields.level ?? "").toLowerCase()] ?? "info";
    this.append(SYSLOG, {
      TimeGenerated: at,
      EventTime: at,
      Computer: computer,
      HostName: computer,
      HostIP: "127.0.0.1",
      Facility: extra.facility ?? "daemon",
      SeverityLevel: severity,
      ProcessID: extra.processId ?? null,
      ProcessName: extra.processName ?? "spire-server",
      SyslogMessage: line,
      SourceSystem: "Linux",
      TenantId: this.workspaceId,
      Type: "Syslog",
      _ResourceId: `/subscriptions/${this.opts.subscriptionId}/resourceGroups/rg-spire/providers/Microsoft.Compute/virtualMachines/${computer}`,
      _SubscriptionId: this.opts.subscriptionId,
    });
  }

  ingestConsole(entry: ConsoleLogInput): void {
    const at = this.time(entry.time);
    const environment = entry.environment ?? this.opts.environment;
    const replica = entry.replica ?? "";
    const resourceId = this.resourceId(entry.resourceGroup, environment);
    const containerId = `${replica}/${entry.container}`;
    this.append(CONTAINER_APP_CONSOLE_LOGS, {
      TimeGenerated: at,
      ContainerAppName: entry.app,
      RevisionName: entry.revision,
      ContainerName: entry.container,
      ContainerGroupName: replica,
      ContainerGroupId: replica,
      ContainerId: containerId,
      ContainerImage: entry.image ?? "",
      EnvironmentName: environment,
      Location: this.opts.location,
      Log: entry.log,
      Stream: entry.stream,
      SourceSystem: "Azure",
      TenantId: this.workspaceId,
      Type: "ContainerAppConsoleLogs",
      _ResourceId: resourceId,
      _SubscriptionId: this.opts.subscriptionId,
    });
    this.append(CONTAINER_APP_CONSOLE_LOGS_CL, {
      TimeGenerated: at,
      ContainerAppName_s: entry.app,
      RevisionName_s: entry.revision,
      ContainerName_s: entry.container,
      ContainerGroupName_s: replica,
      ContainerGroupId_g: replica,
      ContainerId_s: containerId,
      ContainerImage_s: entry.image ?? "",
      EnvironmentName_s: environment,
      Log_s: entry.log,
      Stream_s: entry.stream,
      time_s: at.toISOString(),
      _timestamp_d: at.getTime() / 1000,
      SourceSystem: "RestAPI",
      TenantId: this.workspaceId,
      Type: "ContainerAppConsoleLogs_CL",
      _ResourceId: resourceId,
    });
  }

  ingestSystem(entry: SystemLogInput): void {
    const at = this.time(entry.time);
    const environment = entry.environment ?? this.opts.environment;
    const resourceId = this.resourceId(entry.resourceGroup, environment);
    this.append(CONTAINER_APP_SYSTEM_LOGS, {
      TimeGenerated: at,
      ContainerAppName: entry.app,
      RevisionName: entry.revision,
      ReplicaName: entry.replica ?? "",
      ContainerName: entry.container ?? "",
      EnvironmentName: environment,
      EventSource: "ContainerAppController",
      Location: this.opts.location,
      Log: entry.log,
      Reason: entry.reason,
      Count: entry.count ?? 1,
      Type: entry.type,
      SourceSystem: "Azure",
      TenantId: this.workspaceId,
      _ResourceId: resourceId,
      _SubscriptionId: this.opts.subscriptionId,
    });
    this.append(CONTAINER_APP_SYSTEM_LOGS_CL, {
      TimeGenerated: at,
      ContainerAppName_s: entry.app,
      RevisionName_s: entry.revision,
      ReplicaName_s: entry.replica ?? "",
      EnvironmentName_s: environment,
      EventSource_s: "ContainerAppController",
      Log_s: entry.log,
      Reason_s: entry.reason,
      Type_s: entry.type,
      time_s: at.toISOString(),
      Count_d: entry.count ?? 1,
      _timestamp_d: at.getTime() / 1000,
      SourceSystem: "RestAPI",
      TenantId: this.workspaceId,
      Type: "ContainerAppSystemLogs_CL",
      _ResourceId: resourceId,
    });
  }

  /** Rows ever ingested, per table (not reduced by the row cap). */
  counts(): Record<string, number> {
    return Object.fromEntries([...this.tables.values()].map((t) => [t.schema.name, t.ingested]));
  }

  /** Rows ingested into the resource-specific tables and Syslog (each event once, not its _CL copy). */
  get rowsIngested(): number {
    const c = this.counts();
    return (c.Syslog ?? 0) + (c.ContainerAppConsoleLogs ?? 0) + (c.ContainerAppSystemLogs ?? 0);
  }

  /**
   * The tables as a query sees them: only rows already ingested (past their ingestion delay) whose
   * TimeGenerated lies in `range`.
   */
  source(range?: TimeRange): TableSource {
    const now = this.clock.now();
    return {
      table: (name) => {
        const t = this.tables.get(name);
        if (!t) return undefined;
        const rows = t.rows.filter((row, i) => {
          if ((t.visibleAt[i] ?? 0) > now) return false;
          if (range === undefined) return true;
          const v = row[t.timeIndex];
          const ms = v instanceof Date ? v.getTime() : Number.NaN;
          return ms >= range.start && ms <= range.end;
        });
        return { columns: t.schema.columns.map((c) => ({ ...c })), rows };
      },
    };
  }

  /** Runs a query over `range` (default: everything), with now() from the store's clock. */
  query(text: string, range?: TimeRange, options: RunOptions = {}): Table {
    return runKql(text, this.source(range), { now: options.now ?? this.clock.now() });
  }

  clear(): void {
    for (const t of this.tables.values()) {
      t.rows.length = 0;
      t.visibleAt.length = 0;
    }
  }
}
