import type { HttpResponseInit } from "@azure/functions";
import { TaskHubUnavailable } from "../shared/durable.js";
import { problem } from "./http.js";

/**
 * 503 with the reason and a Retry-After when the task hub could not answer, so a caller (an action
 * group, a script) retries later instead of reading an outage as "not found" or "nothing ran".
 * Undefined for any other error, which stays a 500.
 */
export function unavailableResponse(err: unknown): HttpResponseInit | undefined {
  if (!(err instanceof TaskHubUnavailable)) return undefined;
  const response = problem(503, `${err.message}. Nothing was started or changed; try again later.`);
  return {
    ...response,
    headers: { ...(response.headers as object), "retry-after": String(err.retryAfterSeconds) },
  };
}
