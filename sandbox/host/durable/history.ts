/** History event and action numbering used by durable-functions' replay (see notes). */
export const EventType = {
  ExecutionStarted: 0,
  ExecutionCompleted: 1,
  ExecutionFailed: 2,
  ExecutionTerminated: 3,
  TaskScheduled: 4,
  TaskCompleted: 5,
  TaskFailed: 6,
  SubOrchestrationInstanceCreated: 7,
  SubOrchestrationInstanceCompleted: 8,
  SubOrchestrationInstanceFailed: 9,
  TimerCreated: 10,
  TimerFired: 11,
  OrchestratorStarted: 12,
  OrchestratorCompleted: 13,
  EventSent: 14,
  EventRaised: 15,
  ContinueAsNew: 16,
} as const;

/** DTFx's OrchestrationStatus enum, by runtime status name. */
export const OrchestrationStatus: Record<string, number> = {
  Running: 0,
  Completed: 1,
  ContinuedAsNew: 2,
  Failed: 3,
  Canceled: 4,
  Terminated: 5,
  Pending: 6,
  Suspended: 7,
};

export const ActionType = {
  CallActivity: 0,
  CallActivityWithRetry: 1,
  CallSubOrchestrator: 2,
  CallSubOrchestratorWithRetry: 3,
  ContinueAsNew: 4,
  CreateTimer: 5,
  WaitForExternalEvent: 6,
  CallEntity: 7,
  CallHttp: 8,
  SignalEntity: 9,
  WhenAny: 11,
  WhenAll: 12,
  LockEntities: 13,
  ReleaseEntities: 14,
} as const;

export const actionTypeName = (t: number) =>
  Object.entries(ActionType).find(([, v]) => v === t)?.[0] ?? `ActionType(${t})`;

export interface HistoryEvent {
  EventType: number;
  EventId: number;
  IsPlayed: boolean;
  Timestamp: string;
  [field: string]: unknown;
}

export interface RetryPolicy {
  firstRetryIntervalInMilliseconds: number;
  maxNumberOfAttempts: number;
  backoffCoefficient?: number;
  maxRetryIntervalInMilliseconds?: number;
  retryTimeoutInMilliseconds?: number;
}

/** An action as the orchestrator returns it (JSON-serialisable fields only). */
export interface OrchestratorAction {
  actionType: number;
  functionName?: string;
  input?: unknown;
  retryOptions?: RetryPolicy;
  fireAt?: Date | string;
  isCanceled?: boolean;
  externalEventName?: string;
  instanceId?: string;
  compoundActions?: OrchestratorAction[];
}

/** Leaf actions in the order durable-functions numbers them: compound actions depth-first. */
export function flattenActions(actions: unknown): OrchestratorAction[] {
  const out: OrchestratorAction[] = [];
  const visit = (a: unknown) => {
    if (Array.isArray(a)) {
      for (const x of a) visit(x);
      return;
    }
    if (!a || typeof a !== "object") return;
    const action = a as OrchestratorAction;
    if (action.actionType === ActionType.WhenAll || action.actionType === ActionType.WhenAny) {
      for (const c of action.compoundActions ?? []) visit(c);
    } else {
      out.push(action);
    }
  };
  visit(actions);
  return out;
}

/** The identity of an action that a replay must reproduce at the same position. */
export function actionSignature(a: OrchestratorAction): string {
  const t = actionTypeName(a.actionType);
  switch (a.actionType) {
    case ActionType.CallActivity:
    case ActionType.CallActivityWithRetry:
    case ActionType.CallSubOrchestrator:
    case ActionType.CallSubOrchestratorWithRetry:
      return `${t}(${a.functionName})`;
    case ActionType.WaitForExternalEvent:
      return `${t}(${a.externalEventName})`;
    default:
      return t;
  }
}

/**
 * The wait after failed attempt `failedAttempt` (1-based), as DTFx's RetryInterceptor computes it
 * (Azure/durabletask, src/DurableTask.Core/RetryInterceptor.cs, ComputeNextDelay): first interval
 * times coefficient^(attempt-1), capped by the max interval. The attempt count is not checked: DTFx
 * waits after the last attempt too, then gives up. Undefined once the retry timeout has passed
 * (measured from the first attempt, at the moment of the failure): then DTFx creates no timer.
 */
export function retryDelay(
  policy: RetryPolicy,
  failedAttempt: number,
  elapsedMs: number,
): number | undefined {
  const timeout = policy.retryTimeoutInMilliseconds;
  // The extension maps an absent field to TimeSpan.MaxValue (no timeout); any number is one.
  if (typeof timeout === "number" && elapsedMs >= timeout) return undefined;
  const coefficient = policy.backoffCoefficient ?? 1;
  const delay = policy.firstRetryIntervalInMilliseconds * coefficient ** (failedAttempt - 1);
  const cap = policy.maxRetryIntervalInMilliseconds;
  return cap !== undefined && cap > 0 && delay >= cap ? cap : delay;
}

const eventTypeName = (t: number) =>
  Object.entries(EventType).find(([, v]) => v === t)?.[0] ?? `EventType(${t})`;
const orchestrationStatusName = (n: unknown) =>
  Object.entries(OrchestrationStatus).find(([, v]) => v === n)?.[0] ?? String(n);

/** A history event as the extension's status API shows it: EventType by name, no bookkeeping. */
export type ExtensionHistoryEvent = { EventType: string } & Record<string, unknown>;

function parsedResult(text: unknown): unknown {
  if (typeof text !== "string") return text ?? null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * The `historyEvents` of the status API (showHistory=true), shaped the way the extension shapes it
 * (DurableClient.GetDurableOrchestrationStatusAsync): a scheduling event is folded into its
 * completion (FunctionName, ScheduledTime, Input) and left out; OrchestratorStarted/Completed are
 * left out; EventId and IsPlayed go; results appear only with showHistoryOutput, parsed as JSON.
 */
export function extensionHistory(
  events: readonly HistoryEvent[],
  options: { showHistoryOutput: boolean; showInput: boolean },
): ExtensionHistoryEvent[] {
  const scheduled = new Map<string, { index: number; name: unknown; at: string; input: unknown }>();
  const drop = new Set<number>();
  const out = events.map((raw, i): ExtensionHistoryEvent => {
    const e: Record<string, unknown> = { ...raw, EventType: eventTypeName(raw.EventType) };
    const foldInto = (kind: number) => {
      const from = scheduled.get(`${kind}_${String(raw.TaskScheduledId)}`);
      if (from) {
        e.ScheduledTime = from.at;
        e.FunctionName = from.name;
        if (options.showInput) e.Input = from.input;
        drop.add(from.index);
      }
      delete e.TaskScheduledId;
    };
    switch (raw.EventType) {
      case EventType.TaskScheduled:
      case EventType.SubOrchestrationInstanceCreated:
        scheduled.set(`${raw.EventType}_${raw.EventId}`, {
          index: i,
          name: raw.Name,
          at: raw.Timestamp,
          input: raw.Input,
        });
        delete e.Version;
        break;
      case EventType.TaskCompleted:
      case EventType.TaskFailed:
      case EventType.SubOrchestrationInstanceCompleted:
      case EventType.SubOrchestrationInstanceFailed: {
        const isTask = raw.EventType === EventType.TaskCompleted || raw.EventType === EventType.TaskFailed;
        foldInto(isTask ? EventType.TaskScheduled : EventType.SubOrchestrationInstanceCreated);
        const completed =
          raw.EventType === EventType.TaskCompleted ||
          raw.EventType === EventType.SubOrchestrationInstanceCompleted;
        if (completed) {
          if (options.showHistoryOutput) e.Result = parsedResult(raw.Result);
          else delete e.Result;
        }
        break;
      }
      case EventType.ExecutionStarted:
        e.FunctionName = raw.Name;
        delete e.Name;
        delete e.OrchestrationInstance;
        delete e.ParentInstance;
        delete e.Version;
        delete e.Tags;
        break;
      case EventType.ExecutionCompleted:
        e.OrchestrationStatus = orchestrationStatusName(raw.OrchestrationStatus);
        if (options.showHistoryOutput) e.Result = parsedResult(raw.Result);
        else delete e.Result;
        break;
      case EventType.TimerFired:
        delete e.TimerId;
        break;
      case EventType.OrchestratorStarted:
      case EventType.OrchestratorCompleted:
        drop.add(i);
        break;
    }
    if (!options.showInput) delete e.Input;
    delete e.EventId;
    delete e.IsPlayed;
    return e as ExtensionHistoryEvent;
  });
  return out.filter((_, i) => !drop.has(i));
}
