import type { DurableClient, DurableOrchestrationStatus } from "durable-functions";

/*
 * Reading an instance's status through the durable client, telling "no such instance" apart from
 * "the task hub could not answer". durable-functions 3.x's DurableClient.getStatus resolves for
 * HTTP 200/202/400 and rejects for everything else: for 404 with an Error whose message says
 * "replied with HTTP 404 response", for other statuses with "unexpected status code: <n>", and
 * with the transport's error when the extension is unreachable. Only the first is "not found".
 */

/** The task hub (its storage, or the extension) did not answer; nothing can be decided now. */
export class TaskHubUnavailable extends Error {
  override readonly name = "TaskHubUnavailable";
  /** Seconds a caller should wait before asking again. */
  readonly retryAfterSeconds = 30;
}

const NOT_FOUND = /replied with HTTP 404 response/;

/** True only for the client's "no data for that instance id" rejection. */
export function isInstanceNotFound(err: unknown): boolean {
  return err instanceof Error && NOT_FOUND.test(err.message);
}

/** First line of an error's message, without the payload the client appends. */
function cause(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return (message.split("\n")[0] ?? "").replace(/ Details: .*$/, "").slice(0, 200);
}

export function unavailable(what: string, err: unknown): TaskHubUnavailable {
  return new TaskHubUnavailable(`The durable task hub did not answer while ${what}: ${cause(err)}`);
}

/** The instance's status, undefined when it does not exist; throws TaskHubUnavailable otherwise. */
export async function readInstance(
  client: Pick<DurableClient, "getStatus">,
  instanceId: string,
): Promise<DurableOrchestrationStatus | undefined> {
  try {
    return await client.getStatus(instanceId);
  } catch (err) {
    if (isInstanceNotFound(err)) return undefined;
    throw unavailable(`reading instance ${instanceId}`, err);
  }
}
