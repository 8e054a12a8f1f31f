/**
 * Column schemas of the Log Analytics tables the product queries, as Azure Monitor's table
 * reference documents them (and, for the `_CL` tables, as the older Container Apps "Log Analytics"
 * destination writes them: custom-log columns carry type suffixes). The Kusto language service
 * checks every `.kql` file against these, and the sandbox's logs store uses them as its tables.
 */

export type KqlColumnType =
  | "string"
  | "int"
  | "long"
  | "real"
  | "bool"
  | "datetime"
  | "timespan"
  | "dynamic"
  | "guid";

export interface KqlColumn {
  name: string;
  type: KqlColumnType;
}

export interface KqlTableSchema {
  name: string;
  columns: readonly KqlColumn[];
}

const col = (name: string, type: KqlColumnType): KqlColumn => ({ name, type });
const s = (...names: string[]) => names.map((n) => col(n, "string"));

export const SYSLOG: KqlTableSchema = {
  name: "Syslog",
  columns: [
    col("TimeGenerated", "datetime"),
    col("EventTime", "datetime"),
    ...s("Computer", "HostName", "HostIP", "CollectorHostName", "Facility", "SeverityLevel"),
    col("ProcessID", "int"),
    ...s(
      "ProcessName",
      "SyslogMessage",
      "SourceSystem",
      "TenantId",
      "Type",
      "_ResourceId",
      "_SubscriptionId",
    ),
  ],
};

export const CONTAINER_APP_CONSOLE_LOGS: KqlTableSchema = {
  name: "ContainerAppConsoleLogs",
  columns: [
    col("TimeGenerated", "datetime"),
    ...s(
      "ContainerAppName",
      "RevisionName",
      "ContainerName",
      "ContainerGroupName",
      "ContainerGroupId",
      "ContainerId",
      "ContainerImage",
      "EnvironmentName",
      "JobName",
      "Location",
      "Log",
      "OperationName",
      "Stream",
      "SourceSystem",
      "TenantId",
      "Type",
      "_ResourceId",
      "_SubscriptionId",
    ),
  ],
};

export const CONTAINER_APP_SYSTEM_LOGS: KqlTableSchema = {
  name: "ContainerAppSystemLogs",
  columns: [
    col("TimeGenerated", "datetime"),
    ...s(
      "ContainerAppName",
      "RevisionName",
      "ReplicaName",
      "ContainerName",
      "ComponentName",
      "ComponentType",
      "EnvironmentName",
      "EventSource",
      "JobName",
      "Location",
      "Log",
      "OperationName",
      "Reason",
    ),
    col("Count", "int"),
    // In this table Type is the event's severity (Normal, Warning), not the table name.
    ...s("Type", "SourceSystem", "TenantId", "_ResourceId", "_SubscriptionId"),
  ],
};

export const CONTAINER_APP_CONSOLE_LOGS_CL: KqlTableSchema = {
  name: "ContainerAppConsoleLogs_CL",
  columns: [
    col("TimeGenerated", "datetime"),
    ...s(
      "ContainerAppName_s",
      "RevisionName_s",
      "ContainerName_s",
      "ContainerGroupName_s",
      "ContainerGroupId_g",
      "ContainerId_s",
      "ContainerImage_s",
      "EnvironmentName_s",
      "Log_s",
      "Stream_s",
      "time_s",
    ),
    col("_timestamp_d", "real"),
    ...s("SourceSystem", "TenantId", "Type", "_ResourceId"),
  ],
};

export const CONTAINER_APP_SYSTEM_LOGS_CL: KqlTableSchema = {
  name: "ContainerAppSystemLogs_CL",
  columns: [
    col("TimeGenerated", "datetime"),
    ...s(
      "ContainerAppName_s",
      "RevisionName_s",
      "ReplicaName_s",
      "EnvironmentName_s",
      "EventSource_s",
      "Log_s",
      "Reason_s",
      "Type_s",
      "time_s",
    ),
    col("Count_d", "real"),
    col("_timestamp_d", "real"),
    ...s("SourceSystem", "TenantId", "Type", "_ResourceId"),
  ],
};

/** Every table the product may query, by name. */
export const LOG_TABLES: readonly KqlTableSchema[] = [
  SYSLOG,
  CONTAINER_APP_CONSOLE_LOGS,
  CONTAINER_APP_SYSTEM_LOGS,
  CONTAINER_APP_CONSOLE_LOGS_CL,
  CONTAINER_APP_SYSTEM_LOGS_CL,
];

/** `(Name:type, ...)`: the schema text Kusto's TableSymbol takes. */
export function schemaText(table: KqlTableSchema): string {
  return `(${table.columns.map((c) => `${c.name}:${c.type}`).join(", ")})`;
}
