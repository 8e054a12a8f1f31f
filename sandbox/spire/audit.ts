/**
 * Server API calls counted from SPIRE's own audit log (`audit_log_enabled = true`), so a scenario
 * reports what real SPIRE received rather than what a client believes it sent.
 *
 * What SPIRE v1.15.3 writes (pkg/server/api/audit, pkg/server/api/middleware): one line with
 * `"type": "audit"` and `"msg": "API accessed"` per call, or per item of a batch call, all the
 * items of one call sharing its `request_id`; `service` and `method` name the call; a caller over
 * TCP has `caller_addr` (and `caller_id` when it presented an X509-SVID), a caller on the admin
 * socket has none but `caller_uid` and `caller_path` (the binary: node for the product's gRPC
 * client, spire-server for the CLI a run-command script runs).
 */
import type { LogLine } from "./process.js";

export interface ApiCallCount {
  /** Distinct calls (a batch of 50 entries is one call). */
  calls: number;
  /** Calls by `service/method`, e.g. "entry.v1.Entry/BatchCreateEntry". */
  byMethod: Record<string, number>;
  /** Calls by the caller's binary (admin socket) or SPIFFE ID (TCP). */
  byCaller: Record<string, number>;
}

export interface ApiCallFilter {
  /** Count callers on the admin socket (default true). */
  local?: boolean;
  /** Count TCP callers that presented one of these SPIFFE IDs (the product's admin ID). */
  adminIds?: readonly string[];
}

const basename = (p: string) => p.slice(p.lastIndexOf("/") + 1);

/** The Server API calls in `lines` made by the callers `filter` selects (agents are left out). */
export function countServerApiCalls(lines: readonly LogLine[], filter: ApiCallFilter = {}): ApiCallCount {
  const local = filter.local ?? true;
  const admins = new Set(filter.adminIds ?? []);
  const seen = new Set<string>();
  const out: ApiCallCount = { calls: 0, byMethod: {}, byCaller: {} };
  for (const l of lines) {
    const j = l.json;
    if (j?.type !== "audit" || typeof j.request_id !== "string") continue;
    const overTcp = typeof j.caller_addr === "string";
    const callerId = typeof j.caller_id === "string" ? j.caller_id : undefined;
    const counted = overTcp ? callerId !== undefined && admins.has(callerId) : local;
    if (!counted || seen.has(j.request_id)) continue;
    seen.add(j.request_id);
    out.calls++;
    const method = `${String(j.service ?? "?")}/${String(j.method ?? "?")}`;
    out.byMethod[method] = (out.byMethod[method] ?? 0) + 1;
    const caller = overTcp ? callerId! : basename(String(j.caller_path ?? "admin socket"));
    out.byCaller[caller] = (out.byCaller[caller] ?? 0) + 1;
  }
  return out;
}
