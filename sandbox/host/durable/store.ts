import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { HistoryEvent, RetryPolicy } from "./history.js";

export type RuntimeStatus = "Pending" | "Running" | "Completed" | "Failed" | "Terminated" | "Suspended";

/** What the host recorded for each leaf action, so a replay can be checked and retries counted. */
export interface RecordedAction {
  signature: string;
  /** Sequence number of the current attempt (activities, timers, sub-orchestrations). */
  seq?: number;
  attempt?: number;
  firstAttemptAt?: number;
  retry?: RetryPolicy;
}

export type SlotRole = "task" | "timer" | "retryTimer" | "suborchestration";

export interface InstanceRecord {
  instanceId: string;
  name: string;
  /** JSON text of the input, as the client sent it. */
  input?: string;
  runtimeStatus: RuntimeStatus;
  createdTime: string;
  lastUpdatedTime: string;
  output?: unknown;
  customStatus?: unknown;
  /** History of the current execution (ContinueAsNew starts a fresh one). */
  history: HistoryEvent[];
  /** Events received and made durable but not yet given to the orchestrator. */
  inbox: HistoryEvent[];
  recorded: RecordedAction[];
  slots: Record<string, { action: number; role: SlotRole }>;
  nextSeq: number;
  /**
   * The parent's instance, the sequence number of its call and which of its executions made it (a
   * parent id run again makes the same call at the same sequence number: only the execution tells
   * a child started before a restart from a child of an earlier run). Absent in records saved
   * before it existed.
   */
  parent?: { instanceId: string; seq: number; execution?: number };
  executions: number;
}

/**
 * One JSON file per instance, replaced atomically (write + rename), so a host killed at any
 * moment restarts from either the old or the new state, never a torn one.
 */
export class InstanceStore {
  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  private file(instanceId: string) {
    return join(this.dir, `${Buffer.from(instanceId).toString("base64url")}.json`);
  }

  save(record: InstanceRecord): void {
    const target = this.file(record.instanceId);
    const tmp = `${target}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(record));
    renameSync(tmp, target);
  }

  delete(instanceId: string): void {
    rmSync(this.file(instanceId), { force: true });
  }

  loadAll(): InstanceRecord[] {
    const out: InstanceRecord[] = [];
    for (const name of readdirSync(this.dir)) {
      if (!name.endsWith(".json")) continue;
      out.push(JSON.parse(readFileSync(join(this.dir, name), "utf8")) as InstanceRecord);
    }
    return out;
  }
}
