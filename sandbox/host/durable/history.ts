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

/** Delay before the next attempt, DTFx style; undefined when no attempt is left. */
export function retryDelay(
  policy: RetryPolicy,
  failedAttempt: number,
  elapsedMs: number,
): number | undefined {
  if (failedAttempt >= policy.maxNumberOfAttempts) return undefined;
  const coefficient = policy.backoffCoefficient ?? 1;
  let delay = policy.firstRetryIntervalInMilliseconds * coefficient ** (failedAttempt - 1);
  const cap = policy.maxRetryIntervalInMilliseconds;
  if (cap !== undefined && cap > 0) delay = Math.min(delay, cap);
  const timeout = policy.retryTimeoutInMilliseconds;
  if (timeout !== undefined && timeout > 0 && elapsedMs + delay > timeout) return undefined;
  return delay;
}
