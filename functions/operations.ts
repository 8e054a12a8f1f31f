import type { HttpRequest, HttpResponseInit } from "@azure/functions";
import type { DurableClient } from "durable-functions";
import { readInstance } from "../shared/durable.js";
import { redact } from "../shared/logging.js";
import { json, problem } from "./http.js";
import { unavailableResponse } from "./unavailable.js";

/** One operation (orchestration instance): where it is, its figures, and how it ended. */
export function operationsHttpHandler() {
  return async (request: HttpRequest, client: DurableClient): Promise<HttpResponseInit> => {
    const id = request.params.id ?? "";
    if (!/^[A-Za-z0-9@:._-]{1,200}$/.test(id)) {
      return problem(
        400,
        "The operation id is 1-200 letters, digits and . _ - : @ (as returned by the start call).",
      );
    }
    let status: Awaited<ReturnType<typeof readInstance>>;
    try {
      status = await readInstance(client, id);
    } catch (err) {
      const outage = unavailableResponse(err);
      if (!outage) throw err;
      return outage;
    }
    // Only the task hub's own "no such instance" is a 404; an outage is the 503 above.
    if (status === undefined) return problem(404, `No operation with id "${id}".`);
    const custom = (status.customStatus ?? {}) as { step?: string };
    return json(
      200,
      redact({
        id: status.instanceId,
        name: status.name,
        runtimeStatus: status.runtimeStatus,
        step: custom.step ?? null,
        createdTime: status.createdTime,
        lastUpdatedTime: status.lastUpdatedTime,
        status: status.customStatus ?? null,
        output: status.output ?? null,
      }),
    );
  };
}
