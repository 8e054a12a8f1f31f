import type {
  CreateEntryResult,
  DeleteEntryResult,
  DeployBatchResult,
  JoinToken,
  UpdateEntryResult,
} from "./types.js";

/*
 * How both adapters fold a deploy batch's per-item results into DeployBatchResult: ALREADY_EXISTS
 * (a retried batch finding its own entries) counts as existing and NOT_FOUND on delete as deleted,
 * since both are what the caller wanted.
 */
export function summarizeDeployBatch(
  created: CreateEntryResult[],
  updated: UpdateEntryResult[],
  deleted: DeleteEntryResult[],
  tokens: JoinToken[],
): DeployBatchResult {
  const out: DeployBatchResult = { tokens, created: 0, existed: 0, updated: 0, deleted: 0, failures: [] };
  for (const r of created) {
    if (r.status === "created") out.created++;
    else if (r.status === "exists" || r.code === "ALREADY_EXISTS") out.existed++;
    else
      out.failures.push({ op: "create", id: r.spec.id ?? r.spec.spiffeId, code: r.code, message: r.message });
  }
  for (const r of updated) {
    if (r.status === "updated") out.updated++;
    else out.failures.push({ op: "update", id: r.id, code: r.code, message: r.message });
  }
  for (const r of deleted) {
    if (r.status === "failed")
      out.failures.push({ op: "delete", id: r.id, code: r.code, message: r.message });
    else out.deleted++;
  }
  return out;
}
