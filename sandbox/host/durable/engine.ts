import { randomUUID } from "node:crypto";
import { type HostClock, setVirtualTimeout } from "../clock.js";
import {
  ActionType,
  actionSignature,
  EventType,
  type ExtensionHistoryEvent,
  extensionHistory,
  flattenActions,
  type HistoryEvent,
  OrchestrationStatus,
  type OrchestratorAction,
  retryDelay,
} from "./history.js";
import type { InstanceRecord, InstanceStore, RecordedAction, RuntimeStatus } from "./store.js";

/**
 * A local durable task engine: the part of the Durable Functions extension that keeps history,
 * replays orchestrators through durable-functions' own executor (the registered handler), runs
 * activities, timers and sub-orchestrations, and delivers their results as history events.
 *
 * Durability rule: an event is saved to disk before anything acts on it, and an episode's new
 * history is saved before the work it schedules is started. A host killed at any point restarts
 * from disk: work scheduled but not completed runs again; work whose completion was saved never
 * does.
 */

export type Invoke = (functionName: string, triggerInput: unknown) => Promise<unknown>;

export interface EngineOptions {
  store: InstanceStore;
  clock: HostClock;
  hasOrchestrator(name: string): boolean;
  hasActivity(name: string): boolean;
  invokeOrchestrator: Invoke;
  invokeActivity: Invoke;
  log(message: string): void;
  maxConcurrentActivities?: number;
  /** host.json extensions.durableTask.overridableExistingInstanceStates (default NonRunningStates). */
  overridableExistingInstanceStates?: OverridableStates;
}

/** The extension's OverridableStates enum, by the names host.json uses. */
export type OverridableStates = "NonRunningStates" | "AnyState";

export class EngineError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** The body the extension sends with this status, when it sends one. */
    readonly body?: unknown,
  ) {
    super(message);
  }
}

export interface StatusOptions {
  showHistory?: boolean;
  showHistoryOutput?: boolean;
  /** Default true, as in the extension. */
  showInput?: boolean;
}

/** DateTime.ToString("s") + "Z", as the extension's status payload writes times: whole seconds. */
export function wholeSeconds(iso: string): string {
  return `${iso.slice(0, 19)}Z`;
}

export interface StatusView {
  name: string;
  instanceId: string;
  runtimeStatus: RuntimeStatus;
  input: unknown;
  customStatus: unknown;
  output: unknown;
  createdTime: string;
  lastUpdatedTime: string;
  /** With showHistory: the history as the extension shows it (not the raw events). */
  historyEvents?: ExtensionHistoryEvent[];
}

const OUT_OF_PROC_LABEL = "$OutOfProcData$:";
const MAX_EPISODES_PER_DRAIN = 10_000;
const TERMINAL: RuntimeStatus[] = ["Completed", "Failed", "Terminated"];

interface OrchestratorStateLike {
  isDone: boolean;
  actions: unknown;
  output?: unknown;
  error?: string;
  customStatus?: unknown;
}

function parseJsonText(text: string | undefined): unknown {
  if (text === undefined || text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The worker hands activities string data through JSON.parse when it can; so do we. */
function activityInput(raw: unknown): unknown {
  return typeof raw === "string" ? parseJsonText(raw) : raw;
}

function toJsonText(value: unknown): string {
  return value === undefined ? "null" : JSON.stringify(value);
}

export class DurableEngine {
  private readonly instances = new Map<string, InstanceRecord>();
  private readonly locks = new Map<string, Promise<void>>();
  private readonly scheduled = new Set<string>();
  private readonly timers = new Map<string, { cancel(): void }>();
  private readonly inflight = new Set<Promise<unknown>>();
  private activitySlots: number;
  private readonly activityQueue: Array<() => void> = [];
  private stopped = false;

  constructor(private readonly opts: EngineOptions) {
    this.activitySlots = opts.maxConcurrentActivities ?? 8;
  }

  /** Load persisted instances and pick up whatever was in flight when the last host died. */
  recover(): void {
    for (const record of this.opts.store.loadAll()) this.instances.set(record.instanceId, record);
    for (const record of this.instances.values()) {
      if (record.runtimeStatus !== "Running" && record.runtimeStatus !== "Pending") continue;
      this.resumeOutstandingWork(record);
      if (record.inbox.length > 0 || record.history.length === 0) this.schedule(record.instanceId);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) t.cancel();
    this.timers.clear();
    await Promise.allSettled([...this.inflight]);
  }

  // ---------------------------------------------------------------- client operations

  startNew(
    name: string,
    instanceId: string | undefined,
    inputText: string | undefined,
    parent?: InstanceRecord["parent"],
  ): InstanceRecord {
    if (!this.opts.hasOrchestrator(name)) {
      throw new EngineError(404, `No orchestrator function named "${name}" is registered.`);
    }
    const id = instanceId ?? randomUUID().replaceAll("-", "");
    if (!/^[^/\\#?\s\p{Cc}]{1,256}$/u.test(id)) {
      throw new EngineError(
        400,
        `Instance id "${id}" is invalid: 1-256 characters without / \\ # ? or whitespace.`,
      );
    }
    if (inputText !== undefined && inputText !== "") {
      try {
        JSON.parse(inputText);
      } catch {
        throw new EngineError(400, "The orchestration input is not valid JSON.");
      }
    }
    const existing = this.instances.get(id);
    if (existing && !TERMINAL.includes(existing.runtimeStatus)) {
      if ((this.opts.overridableExistingInstanceStates ?? "NonRunningStates") === "NonRunningStates") {
        // DTFx's dedupe check throws OrchestrationAlreadyExistsException (the extension sets
        // ThrowExceptionOnInvalidDedupeStatus) and HttpApiHandler turns any exception that is not an
        // ArgumentException into a 500 with this body.
        const exceptionMessage = `An Orchestration instance with the status ${existing.runtimeStatus} already exists.`;
        throw new EngineError(500, exceptionMessage, {
          Message: "Something went wrong while processing your request",
          ExceptionMessage: exceptionMessage,
          ExceptionType: "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException",
          StackTrace: null,
        });
      }
      // AnyState: the new execution replaces the running one; what the old one had in flight is dropped.
      this.cancelTimers(existing.instanceId);
    }
    const now = new Date(this.opts.clock.now()).toISOString();
    const record: InstanceRecord = {
      instanceId: id,
      name,
      input: inputText === "" ? undefined : inputText,
      runtimeStatus: "Pending",
      createdTime: now,
      lastUpdatedTime: now,
      history: [],
      inbox: [],
      recorded: [],
      slots: {},
      nextSeq: 0,
      executions: (existing?.executions ?? 0) + 1,
      ...(parent ? { parent } : {}),
    };
    this.instances.set(id, record);
    this.opts.store.save(record);
    this.schedule(id);
    return record;
  }

  getStatus(instanceId: string, options: StatusOptions = {}): StatusView | undefined {
    const r = this.instances.get(instanceId);
    if (!r) return undefined;
    return this.view(r, options);
  }

  /** The instance's raw history events (current execution), for tests and tools. */
  rawHistory(instanceId: string): HistoryEvent[] {
    return this.instances.get(instanceId)?.history ?? [];
  }

  list(filter: { runtimeStatus?: RuntimeStatus[]; createdFrom?: number; createdTo?: number }): StatusView[] {
    return [...this.instances.values()]
      .filter((r) => !filter.runtimeStatus || filter.runtimeStatus.includes(r.runtimeStatus))
      .filter((r) => filter.createdFrom === undefined || Date.parse(r.createdTime) >= filter.createdFrom)
      .filter((r) => filter.createdTo === undefined || Date.parse(r.createdTime) <= filter.createdTo)
      .sort((a, b) => a.createdTime.localeCompare(b.createdTime))
      .map((r) => this.view(r, {}));
  }

  async raiseEvent(instanceId: string, eventName: string, bodyText: string): Promise<void> {
    const r = this.requireInstance(instanceId);
    if (TERMINAL.includes(r.runtimeStatus)) {
      throw new EngineError(
        410,
        `Instance ${instanceId} is ${r.runtimeStatus}; it can no longer receive events.`,
      );
    }
    await this.withLock(instanceId, async () => {
      this.appendInbox(r, { EventType: EventType.EventRaised, Name: eventName, Input: bodyText || "null" });
    });
    this.schedule(instanceId);
  }

  async terminate(instanceId: string, reason: string): Promise<void> {
    const r = this.requireInstance(instanceId);
    if (TERMINAL.includes(r.runtimeStatus)) {
      throw new EngineError(410, `Instance ${instanceId} is already ${r.runtimeStatus}.`);
    }
    await this.withLock(instanceId, async () => {
      this.finish(r, "Terminated", reason);
    });
  }

  async suspend(instanceId: string, _reason: string): Promise<void> {
    const r = this.requireInstance(instanceId);
    if (TERMINAL.includes(r.runtimeStatus))
      throw new EngineError(410, `Instance ${instanceId} is ${r.runtimeStatus}.`);
    await this.withLock(instanceId, async () => {
      r.runtimeStatus = "Suspended";
      this.touch(r);
    });
  }

  async resume(instanceId: string, _reason: string): Promise<void> {
    const r = this.requireInstance(instanceId);
    if (r.runtimeStatus !== "Suspended")
      throw new EngineError(410, `Instance ${instanceId} is not suspended.`);
    await this.withLock(instanceId, async () => {
      r.runtimeStatus = "Running";
      this.touch(r);
    });
    this.schedule(instanceId);
  }

  purge(instanceId: string): number {
    const r = this.instances.get(instanceId);
    if (!r) return 0;
    if (!TERMINAL.includes(r.runtimeStatus)) {
      throw new EngineError(
        409,
        `Instance ${instanceId} is ${r.runtimeStatus}; only finished instances can be purged.`,
      );
    }
    this.instances.delete(instanceId);
    this.opts.store.delete(instanceId);
    return 1;
  }

  // ---------------------------------------------------------------- internals

  private requireInstance(instanceId: string): InstanceRecord {
    const r = this.instances.get(instanceId);
    if (!r) throw new EngineError(404, `No instance with ID "${instanceId}".`);
    return r;
  }

  private view(r: InstanceRecord, options: StatusOptions): StatusView {
    const showInput = options.showInput ?? true;
    // The extension reads no history for a Pending instance, and leaves the field out when null.
    const history =
      options.showHistory && r.runtimeStatus !== "Pending"
        ? extensionHistory(r.history, { showHistoryOutput: options.showHistoryOutput === true, showInput })
        : undefined;
    return {
      name: r.name,
      instanceId: r.instanceId,
      runtimeStatus: r.runtimeStatus,
      input: showInput ? (parseJsonText(r.input) ?? null) : null,
      customStatus: r.customStatus ?? null,
      output: r.output ?? null,
      createdTime: wholeSeconds(r.createdTime),
      lastUpdatedTime: wholeSeconds(r.lastUpdatedTime),
      ...(history ? { historyEvents: history } : {}),
    };
  }

  private touch(r: InstanceRecord): void {
    r.lastUpdatedTime = new Date(this.opts.clock.now()).toISOString();
    this.opts.store.save(r);
  }

  private event(fields: Partial<HistoryEvent> & { EventType: number }): HistoryEvent {
    return {
      EventId: -1,
      IsPlayed: false,
      Timestamp: new Date(this.opts.clock.now()).toISOString(),
      ...fields,
    };
  }

  private appendInbox(r: InstanceRecord, fields: Partial<HistoryEvent> & { EventType: number }): void {
    r.inbox.push(this.event(fields));
    this.touch(r);
  }

  private withLock(instanceId: string, fn: () => Promise<void>): Promise<void> {
    const previous = this.locks.get(instanceId) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const settled = next.catch((err) =>
      this.opts.log(`instance ${instanceId}: ${(err as Error).stack ?? err}`),
    );
    this.locks.set(instanceId, settled);
    return next;
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    p.finally(() => this.inflight.delete(p)).catch(() => undefined);
    return p;
  }

  private schedule(instanceId: string): void {
    if (this.stopped || this.scheduled.has(instanceId)) return;
    this.scheduled.add(instanceId);
    setImmediate(() => {
      this.scheduled.delete(instanceId);
      this.track(this.withLock(instanceId, () => this.drain(instanceId)));
    });
  }

  private async drain(instanceId: string): Promise<void> {
    for (let i = 0; i < MAX_EPISODES_PER_DRAIN && !this.stopped; i++) {
      const r = this.instances.get(instanceId);
      if (!r) return;
      if (r.runtimeStatus !== "Running" && r.runtimeStatus !== "Pending") {
        if (TERMINAL.includes(r.runtimeStatus) && r.inbox.length > 0) {
          r.inbox = [];
          this.touch(r);
        }
        return;
      }
      if (r.history.length > 0 && r.inbox.length === 0) return;
      await this.runEpisode(r);
    }
  }

  /**
   * Events that make durable-functions allocate a sequence number while it replays them (a retry's
   * failure allocates the retry timer; the timer's firing allocates the next attempt) must be the
   * first event of an episode: then the number the library allocates is the one we record.
   */
  private allocates(r: InstanceRecord, e: HistoryEvent): boolean {
    if (e.EventType === EventType.TaskFailed || e.EventType === EventType.SubOrchestrationInstanceFailed) {
      const slot = r.slots[String(e.TaskScheduledId)];
      return slot !== undefined && r.recorded[slot.action]?.retry !== undefined;
    }
    if (e.EventType === EventType.TimerFired) return r.slots[String(e.TimerId)]?.role === "retryTimer";
    return false;
  }

  private takeBatch(r: InstanceRecord): HistoryEvent[] {
    const batch: HistoryEvent[] = [];
    while (r.inbox.length > 0) {
      const e = r.inbox[0]!;
      if (batch.length > 0 && this.allocates(r, e)) break;
      batch.push(r.inbox.shift()!);
    }
    return batch;
  }

  private async runEpisode(r: InstanceRecord): Promise<void> {
    const work: Array<() => void> = [];
    const newEvents: HistoryEvent[] = [];
    const lastTs = r.history.length > 0 ? Date.parse(r.history[r.history.length - 1]!.Timestamp) : 0;
    const started = this.event({ EventType: EventType.OrchestratorStarted });
    if (Date.parse(started.Timestamp) <= lastTs) started.Timestamp = new Date(lastTs + 1).toISOString();
    newEvents.push(started);
    if (r.history.length === 0) {
      newEvents.push(
        this.event({
          EventType: EventType.ExecutionStarted,
          Name: r.name,
          Input: r.input,
          OrchestrationInstance: { InstanceId: r.instanceId, ExecutionId: `${r.instanceId}:${r.executions}` },
          ParentInstance: r.parent
            ? { OrchestrationInstance: { InstanceId: r.parent.instanceId } }
            : undefined,
        }),
      );
    }
    for (const e of this.takeBatch(r)) {
      newEvents.push(e);
      this.onDelivered(r, e, newEvents, work);
    }

    const history = [...r.history.map((e) => ({ ...e, IsPlayed: true })), ...newEvents];
    let state: OrchestratorStateLike;
    let failure: string | undefined;
    try {
      state = (await this.opts.invokeOrchestrator(r.name, {
        history,
        input: parseJsonText(r.input),
        instanceId: r.instanceId,
        isReplaying: r.history.length > 0,
        parentInstanceId: r.parent?.instanceId ?? "",
        upperSchemaVersion: 3,
        longRunningTimerIntervalDuration: "3.00:00:00",
        maximumShortTimerDuration: "6.00:00:00",
        defaultHttpAsyncRequestSleepTimeMillseconds: 30000,
      })) as OrchestratorStateLike;
      state = JSON.parse(JSON.stringify(state)) as OrchestratorStateLike;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const at = message.indexOf(OUT_OF_PROC_LABEL);
      if (at >= 0) {
        state = JSON.parse(message.slice(at + OUT_OF_PROC_LABEL.length)) as OrchestratorStateLike;
        // OutOfProcOrchestrationShim.ScheduleDurableTaskEvents: the instance's output is this text.
        failure = `Orchestrator function '${r.name}' failed: ${state.error ?? message.slice(0, at).trim()}`;
      } else {
        state = { isDone: false, actions: [] };
        failure = `Orchestrator function '${r.name}' failed: ${message}`;
      }
    }

    r.history = history.map((e) => ({ ...e, IsPlayed: true }));
    if (state.customStatus !== undefined) r.customStatus = state.customStatus;

    const actions = flattenActions(state.actions);
    const divergence = this.checkDeterminism(r, actions, failure !== undefined || state.isDone);
    if (divergence) {
      this.opts.log(`instance ${r.instanceId}: ${divergence}`);
      this.finish(r, "Failed", divergence);
      return;
    }
    if (failure === undefined) {
      for (let k = r.recorded.length; k < actions.length; k++) {
        const problem = this.record(r, k, actions[k]!, work);
        if (problem) {
          this.finish(r, "Failed", problem);
          return;
        }
      }
    }
    r.history.push({ ...this.event({ EventType: EventType.OrchestratorCompleted }), IsPlayed: true });
    if (r.runtimeStatus === "Pending") r.runtimeStatus = "Running";

    if (failure !== undefined) {
      this.finish(r, "Failed", failure);
      return;
    }
    const continueAsNew = actions.find((a) => a.actionType === ActionType.ContinueAsNew);
    if (state.isDone && continueAsNew) {
      this.restartAsNew(r, continueAsNew.input);
      return;
    }
    if (state.isDone) {
      this.finish(r, "Completed", state.output);
      return;
    }
    this.touch(r);
    for (const w of work) w();
  }

  /** A replay must schedule, in order, exactly what the history says it scheduled before. */
  private checkDeterminism(
    r: InstanceRecord,
    actions: OrchestratorAction[],
    ended: boolean,
  ): string | undefined {
    const n = Math.min(actions.length, r.recorded.length);
    for (let k = 0; k < n; k++) {
      const actual = actionSignature(actions[k]!);
      const expected = r.recorded[k]!.signature;
      if (actual !== expected) {
        return (
          `Non-deterministic workflow detected: on replay the orchestrator's action #${k} is ${actual}, ` +
          `but the history records ${expected}. The orchestrator code changed while instance ${r.instanceId} was running, ` +
          "or it depends on time, randomness or I/O outside the durable APIs."
        );
      }
    }
    if (!ended && actions.length < r.recorded.length) {
      return (
        `Non-deterministic workflow detected: on replay the orchestrator scheduled ${actions.length} actions, ` +
        `but the history records ${r.recorded.length} (the next is ${r.recorded[actions.length]!.signature}).`
      );
    }
    return undefined;
  }

  private allocate(r: InstanceRecord, action: number, role: InstanceRecord["slots"][string]["role"]): number {
    const seq = r.nextSeq++;
    r.slots[String(seq)] = { action, role };
    return seq;
  }

  private record(
    r: InstanceRecord,
    k: number,
    a: OrchestratorAction,
    work: Array<() => void>,
  ): string | undefined {
    const rec: RecordedAction = { signature: actionSignature(a) };
    r.recorded.push(rec);
    switch (a.actionType) {
      case ActionType.CallActivity:
      case ActionType.CallActivityWithRetry: {
        const name = a.functionName ?? "";
        if (!this.opts.hasActivity(name)) {
          return `Orchestrator '${r.name}' called activity '${name}', which is not registered.`;
        }
        rec.attempt = 1;
        rec.firstAttemptAt = this.opts.clock.now();
        if (a.actionType === ActionType.CallActivityWithRetry) rec.retry = a.retryOptions;
        rec.seq = this.allocate(r, k, "task");
        const input = a.input === undefined ? undefined : JSON.stringify(a.input);
        r.history.push(
          this.playedEvent({
            EventType: EventType.TaskScheduled,
            EventId: rec.seq,
            Name: name,
            Input: input,
          }),
        );
        const seq = rec.seq;
        work.push(() => this.runActivity(r.instanceId, seq, name, a.input));
        return undefined;
      }
      case ActionType.CreateTimer: {
        const fireAt = new Date(a.fireAt ?? 0).toISOString();
        rec.seq = this.allocate(r, k, "timer");
        r.history.push(
          this.playedEvent({ EventType: EventType.TimerCreated, EventId: rec.seq, FireAt: fireAt }),
        );
        const seq = rec.seq;
        work.push(() => this.armTimer(r.instanceId, seq, fireAt));
        return undefined;
      }
      case ActionType.CallSubOrchestrator:
      case ActionType.CallSubOrchestratorWithRetry: {
        const name = a.functionName ?? "";
        if (!this.opts.hasOrchestrator(name)) {
          return `Orchestrator '${r.name}' called sub-orchestrator '${name}', which is not registered.`;
        }
        rec.attempt = 1;
        rec.firstAttemptAt = this.opts.clock.now();
        if (a.actionType === ActionType.CallSubOrchestratorWithRetry) rec.retry = a.retryOptions;
        rec.seq = this.allocate(r, k, "suborchestration");
        const childId = a.instanceId || `${r.instanceId}:${rec.seq}`;
        const input = a.input === undefined ? undefined : JSON.stringify(a.input);
        r.history.push(
          this.playedEvent({
            EventType: EventType.SubOrchestrationInstanceCreated,
            EventId: rec.seq,
            Name: name,
            InstanceId: childId,
            Input: input,
          }),
        );
        const seq = rec.seq;
        work.push(() => this.startChild(r.instanceId, seq, name, childId, input));
        return undefined;
      }
      case ActionType.WaitForExternalEvent:
      case ActionType.ContinueAsNew:
        return undefined;
      default:
        return `Orchestrator '${r.name}' used ${rec.signature}, which the local host does not support.`;
    }
  }

  private playedEvent(fields: Partial<HistoryEvent> & { EventType: number }): HistoryEvent {
    return { ...this.event(fields), IsPlayed: true };
  }

  /** Bookkeeping for a delivered completion: retries allocate timers and new attempts here. */
  private onDelivered(
    r: InstanceRecord,
    e: HistoryEvent,
    out: HistoryEvent[],
    work: Array<() => void>,
  ): void {
    if (e.EventType === EventType.TaskFailed || e.EventType === EventType.SubOrchestrationInstanceFailed) {
      const slot = r.slots[String(e.TaskScheduledId)];
      const rec = slot ? r.recorded[slot.action] : undefined;
      if (!slot || !rec?.retry) return;
      const elapsed = this.opts.clock.now() - (rec.firstAttemptAt ?? this.opts.clock.now());
      const delay = retryDelay(rec.retry, rec.attempt ?? 1, elapsed);
      if (delay === undefined) {
        // DTFx stops retrying without a timer once the retry timeout has passed. durable-functions
        // 3.x then waits for a retry timer that never comes, so the instance stays Running and the
        // orchestrator never sees the error (Azure/azure-functions-durable-js#629, open): model it.
        rec.attempt = rec.retry.maxNumberOfAttempts;
        this.opts.log(
          `instance ${r.instanceId}: retry timeout of ${rec.signature} passed after ${elapsed} ms; no retry timer (the orchestrator will wait forever, as in Azure)`,
        );
        return;
      }
      // DTFx waits the full interval after every failed attempt, the last one included.
      const fireAt = new Date(this.opts.clock.now() + delay).toISOString();
      const seq = this.allocate(r, slot.action, "retryTimer");
      out.push(this.event({ EventType: EventType.TimerCreated, EventId: seq, FireAt: fireAt }));
      work.push(() => this.armTimer(r.instanceId, seq, fireAt));
      return;
    }
    if (e.EventType === EventType.TimerFired) {
      const slot = r.slots[String(e.TimerId)];
      if (slot?.role !== "retryTimer") return;
      const rec = r.recorded[slot.action]!;
      if (!rec.retry || (rec.attempt ?? 1) >= rec.retry.maxNumberOfAttempts) return;
      rec.attempt = (rec.attempt ?? 1) + 1;
      const scheduledEvent = r.history.find(
        (h) =>
          (h.EventType === EventType.TaskScheduled ||
            h.EventType === EventType.SubOrchestrationInstanceCreated) &&
          h.EventId === rec.seq,
      );
      const name = String(scheduledEvent?.Name ?? "");
      const input = scheduledEvent?.Input as string | undefined;
      const isActivity = scheduledEvent?.EventType === EventType.TaskScheduled;
      const seq = this.allocate(r, slot.action, isActivity ? "task" : "suborchestration");
      rec.seq = seq;
      if (isActivity) {
        out.push(this.event({ EventType: EventType.TaskScheduled, EventId: seq, Name: name, Input: input }));
        work.push(() => this.runActivity(r.instanceId, seq, name, parseJsonText(input)));
      } else {
        const childId = `${r.instanceId}:${seq}`;
        out.push(
          this.event({
            EventType: EventType.SubOrchestrationInstanceCreated,
            EventId: seq,
            Name: name,
            InstanceId: childId,
            Input: input,
          }),
        );
        work.push(() => this.startChild(r.instanceId, seq, name, childId, input));
      }
    }
  }

  private cancelTimers(instanceId: string): void {
    for (const [key, t] of this.timers) {
      if (key.startsWith(`${instanceId}\u0000`)) {
        t.cancel();
        this.timers.delete(key);
      }
    }
  }

  private finish(r: InstanceRecord, status: RuntimeStatus, output: unknown): void {
    const wasDone = TERMINAL.includes(r.runtimeStatus);
    r.runtimeStatus = status;
    r.output = output;
    r.inbox = [];
    this.cancelTimers(r.instanceId);
    if (!wasDone) {
      // DTFx ends an execution's history with ExecutionCompleted (after ExecutionTerminated when
      // terminated); the extension's showHistory view shows them.
      if (status === "Terminated") {
        r.history.push(
          this.playedEvent({ EventType: EventType.ExecutionTerminated, Input: String(output ?? "") }),
        );
      }
      r.history.push(
        this.playedEvent({
          EventType: EventType.ExecutionCompleted,
          OrchestrationStatus: OrchestrationStatus[status],
          Result: status === "Completed" ? toJsonText(output) : String(output ?? ""),
        }),
      );
    }
    this.touch(r);
    if (r.parent) {
      const parent = r.parent;
      const event =
        status === "Completed"
          ? {
              EventType: EventType.SubOrchestrationInstanceCompleted,
              TaskScheduledId: parent.seq,
              Result: toJsonText(output),
            }
          : {
              EventType: EventType.SubOrchestrationInstanceFailed,
              TaskScheduledId: parent.seq,
              Reason: `Sub-orchestration '${r.name}' (${r.instanceId}) ${status.toLowerCase()}: ${String(output)}`,
              Details: String(output),
            };
      // Only to the execution that started it: a later run of the parent id is not waiting for it.
      this.deliver(parent.instanceId, event, parent.execution);
    }
  }

  private restartAsNew(r: InstanceRecord, input: unknown): void {
    r.history = [];
    r.recorded = [];
    r.slots = {};
    r.nextSeq = 0;
    r.executions += 1;
    r.input = input === undefined ? undefined : typeof input === "string" ? input : JSON.stringify(input);
    this.touch(r);
    this.schedule(r.instanceId);
  }

  /**
   * Make an event durable in the instance's inbox, then let the orchestrator see it. With
   * `execution`, only while that execution is current: a result of work the previous execution
   * scheduled (before continueAsNew, or a start that replaced it) belongs to no one.
   */
  private deliver(
    instanceId: string,
    fields: Partial<HistoryEvent> & { EventType: number },
    execution?: number,
  ): void {
    this.track(
      this.withLock(instanceId, async () => {
        const r = this.instances.get(instanceId);
        if (!r || TERMINAL.includes(r.runtimeStatus)) return;
        if (execution !== undefined && r.executions !== execution) return;
        this.appendInbox(r, fields);
      }).then(() => this.schedule(instanceId)),
    );
  }

  private runActivity(instanceId: string, seq: number, name: string, rawInput: unknown): void {
    if (this.stopped) return;
    const execution = this.instances.get(instanceId)?.executions;
    const run = async () => {
      try {
        const result = await this.opts.invokeActivity(name, activityInput(rawInput));
        if (this.stopped) return;
        this.deliver(
          instanceId,
          { EventType: EventType.TaskCompleted, TaskScheduledId: seq, Result: toJsonText(result) },
          execution,
        );
      } catch (err) {
        if (this.stopped) return;
        const e = err instanceof Error ? err : new Error(String(err));
        this.deliver(
          instanceId,
          {
            EventType: EventType.TaskFailed,
            TaskScheduledId: seq,
            Reason: `Activity function '${name}' failed: ${e.message}`,
            Details: e.stack ?? e.message,
          },
          execution,
        );
      }
    };
    const start = () => {
      this.track(
        run().finally(() => {
          const next = this.activityQueue.shift();
          if (next) next();
          else this.activitySlots++;
        }),
      );
    };
    if (this.activitySlots > 0) {
      this.activitySlots--;
      start();
    } else {
      this.activityQueue.push(start);
    }
  }

  private armTimer(instanceId: string, seq: number, fireAt: string): void {
    if (this.stopped) return;
    const key = `${instanceId}\u0000${seq}`;
    const execution = this.instances.get(instanceId)?.executions;
    this.timers.get(key)?.cancel();
    this.timers.set(
      key,
      setVirtualTimeout(this.opts.clock, Date.parse(fireAt), () => {
        this.timers.delete(key);
        this.deliver(
          instanceId,
          { EventType: EventType.TimerFired, TimerId: seq, FireAt: fireAt },
          execution,
        );
      }),
    );
  }

  private startChild(
    parentId: string,
    seq: number,
    name: string,
    childId: string,
    inputText: string | undefined,
  ): void {
    const existing = this.instances.get(childId);
    const execution = this.instances.get(parentId)?.executions;
    if (
      existing &&
      existing.parent?.instanceId === parentId &&
      existing.parent.seq === seq &&
      (existing.parent.execution === undefined || existing.parent.execution === execution)
    ) {
      // Already started before a restart; it reports back when it finishes.
      if (TERMINAL.includes(existing.runtimeStatus))
        this.finish(existing, existing.runtimeStatus, existing.output);
      return;
    }
    try {
      this.startNew(name, childId, inputText, {
        instanceId: parentId,
        seq,
        ...(execution !== undefined && { execution }),
      });
    } catch (err) {
      this.deliver(parentId, {
        EventType: EventType.SubOrchestrationInstanceFailed,
        TaskScheduledId: seq,
        Reason: `Could not start sub-orchestration '${name}': ${(err as Error).message}`,
        Details: (err as Error).message,
      });
    }
  }

  /** After a restart: re-run scheduled work whose completion never became durable. */
  private resumeOutstandingWork(r: InstanceRecord): void {
    const done = new Set<number>();
    for (const e of [...r.history, ...r.inbox]) {
      if (typeof e.TaskScheduledId === "number") done.add(e.TaskScheduledId);
      if (typeof e.TimerId === "number") done.add(e.TimerId);
    }
    for (const e of [...r.history, ...r.inbox]) {
      if (done.has(e.EventId)) continue;
      if (e.EventType === EventType.TaskScheduled) {
        this.runActivity(
          r.instanceId,
          e.EventId,
          String(e.Name),
          parseJsonText(e.Input as string | undefined),
        );
      } else if (e.EventType === EventType.TimerCreated) {
        this.armTimer(r.instanceId, e.EventId, String(e.FireAt));
      } else if (e.EventType === EventType.SubOrchestrationInstanceCreated) {
        this.startChild(
          r.instanceId,
          e.EventId,
          String(e.Name),
          String(e.InstanceId),
          e.Input as string | undefined,
        );
      }
    }
  }
}
