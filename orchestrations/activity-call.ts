import type { OrchestrationContext } from "durable-functions";
import * as df from "durable-functions";
import type { ActivityResult } from "../activities/contracts.js";

/*
 * How every orchestration calls an activity: with the one retry policy, turning a permanent
 * failure (returned as a result) or an exhausted retry budget into RunFailed, which the
 * orchestration ends on with its reason. Deterministic: no I/O here either.
 */

/**
 * Retries repeat transient errors only: activities return permanent ones as results. The budget
 * has to outlast what it rides out, and the longest is Azure RBAC propagation of a new role
 * assignment (up to about 10 minutes; learning #15): waits of 5, 10, 20, 40 s, then 60 s,
 * RETRY_ATTEMPTS attempts = RETRY_WAITS_MS of waiting (the last wait included, as DTFx does).
 *
 * RETRY_TIMEOUT_MS bounds the whole call, but it must be the count that runs out first: when DTFx
 * stops at the timeout instead, durable-functions 3.x never returns from the call
 * (Azure/azure-functions-durable-js#629, open) and the run would stay Running, blocking the app's
 * one instance. The last attempt starts 675 s after the first; the 525 s left to the timeout are
 * for the attempts' own running time (35 s each), which DTFx counts too.
 */
const RETRY_FIRST_MS = 5_000;
const RETRY_MAX_INTERVAL_MS = 60_000;
const RETRY_ATTEMPTS = 15;
export const RETRY_TIMEOUT_MS = 20 * 60_000;
/** Sum of the waits after each failed attempt: 735 s. */
export const RETRY_WAITS_MS = Array.from({ length: RETRY_ATTEMPTS }, (_, i) =>
  Math.min(RETRY_FIRST_MS * 2 ** i, RETRY_MAX_INTERVAL_MS),
).reduce((a, b) => a + b, 0);

export function retryPolicy(): df.RetryOptions {
  const r = new df.RetryOptions(RETRY_FIRST_MS, RETRY_ATTEMPTS);
  r.backoffCoefficient = 2;
  r.maxRetryIntervalInMilliseconds = RETRY_MAX_INTERVAL_MS;
  r.retryTimeoutInMilliseconds = RETRY_TIMEOUT_MS;
  return r;
}

export class RunFailed extends Error {}

export function* call<T>(
  context: OrchestrationContext,
  name: string,
  input: unknown,
): Generator<df.Task, T, unknown> {
  let result: ActivityResult<T>;
  try {
    result = (yield context.df.callActivityWithRetry(name, retryPolicy(), input)) as ActivityResult<T>;
  } catch (err) {
    throw new RunFailed(`${name} kept failing after retries: ${(err as Error).message.split("\n")[0]}`);
  }
  if (!result.ok) throw new RunFailed(`${name}: ${result.error.message}`);
  return result.value;
}

export const secondsBetween = (a: Date, b: Date) => Math.round((b.getTime() - a.getTime()) / 100) / 10;

/**
 * Moves a run's customStatus to `step`, adding the seconds spent in the step it leaves; time from
 * currentUtcDateTime only, so replays agree. Publishes the status once when made.
 */
export function stepTracker<S extends string>(
  context: OrchestrationContext,
  status: { step: S; stepSeconds: Record<string, number> },
): (step: S) => void {
  let stepStart = context.df.currentUtcDateTime;
  context.df.setCustomStatus(status);
  return (step: S) => {
    const now = context.df.currentUtcDateTime;
    status.stepSeconds[status.step] = secondsBetween(stepStart, now);
    status.step = step;
    stepStart = now;
    context.df.setCustomStatus(status);
  };
}
