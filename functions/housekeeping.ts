import type { InvocationContext, Timer } from "@azure/functions";
import type { DurableClient } from "durable-functions";
import { OrchestrationRuntimeStatus } from "durable-functions";
import { createLogger } from "../shared/logging.js";
import { purgeFilter } from "../shared/operations/retention.js";

/** The timer that keeps the task hub small: purges finished instance history past the retention. */
export function housekeepingTimerHandler(deps: { retentionDays: number; now?: () => number }) {
  return async (_timer: Timer, client: DurableClient, context: InvocationContext): Promise<void> => {
    const log = createLogger(context);
    const filter = purgeFilter((deps.now ?? Date.now)(), deps.retentionDays);
    const result = await client.purgeInstanceHistoryBy({
      ...filter,
      runtimeStatus: filter.runtimeStatus.map((s) => OrchestrationRuntimeStatus[s]),
    });
    log.info("purged finished durable instance history", {
      instancesDeleted: result.instancesDeleted,
      createdBefore: filter.createdTimeTo.toISOString(),
      retentionDays: deps.retentionDays,
    });
  };
}
