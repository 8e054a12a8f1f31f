import type { HttpRequest, HttpResponseInit, InvocationContext, Timer } from "@azure/functions";
import type { DurableClient } from "durable-functions";
import { z } from "zod";
import { startRotateBundle } from "../orchestrations/rotateBundle.start.js";
import { createLogger } from "../shared/logging.js";
import type { adminSvidStatus } from "../shared/trust/admin-status.js";
import type { LastRotation } from "../shared/trust/ledger.js";
import { type ServerBundleSummary, sameRoots } from "../shared/trust/summary.js";
import type { VaultBundleState } from "../shared/trust/vault.js";
import { json, readValidBody } from "./http.js";
import { unavailableResponse } from "./unavailable.js";

/*
 * The trust bundle's triggers: the schedule, the operator's "rotate now", and the status answer
 * (both sides' roots, whether they match, the last rotation and why it ran).
 */

/** The timer: every tick is a check; one that finds a rotation running joins it. */
export function bundleTimerHandler() {
  return async (timer: Timer, client: DurableClient, context: InvocationContext): Promise<void> => {
    const log = createLogger(context);
    try {
      const outcome = await startRotateBundle(client, {
        trigger: "timer",
        reason: timer.isPastDue ? "schedule (past due)" : "schedule",
      });
      log.info("bundle rotation check", { outcome: outcome.kind, instanceId: outcome.instanceId });
    } catch (err) {
      // The next tick checks again; a failed start changes nothing.
      if (!unavailableResponse(err)) throw err;
      log.warn("bundle rotation not started: task hub unavailable", { error: (err as Error).message });
    }
  };
}

const rotateBody = z
  .object({
    reason: z.string().min(1, "reason is empty").max(500, "reason is at most 500 characters").optional(),
  })
  .strict();

export function bundleRotateHttpHandler() {
  return async (
    request: HttpRequest,
    client: DurableClient,
    context: InvocationContext,
  ): Promise<HttpResponseInit> => {
    const log = createLogger(context);
    const parsed = await readValidBody(request, rotateBody, '{"reason"?: string}');
    if (!parsed.ok) return parsed.response;
    let outcome: Awaited<ReturnType<typeof startRotateBundle>>;
    try {
      outcome = await startRotateBundle(client, {
        trigger: "http",
        reason: parsed.value.reason ?? "operator request",
      });
    } catch (err) {
      const outage = unavailableResponse(err);
      if (!outage) throw err;
      log.warn("bundle rotation not started: task hub unavailable");
      return outage;
    }
    log.info("bundle rotation requested", { outcome: outcome.kind, instanceId: outcome.instanceId });
    const check = client.createCheckStatusResponse(request, outcome.instanceId);
    const links = client.createHttpManagementPayload(outcome.instanceId);
    return json(
      202,
      { ...links, alreadyRunning: outcome.kind === "running" },
      Object.fromEntries(check.headers.entries()),
    );
  };
}

export interface BundleStatusDeps {
  secretName: string;
  readServer(): Promise<ServerBundleSummary>;
  readVault(): Promise<VaultBundleState | undefined>;
  readLastRotation(): Promise<LastRotation | undefined>;
  /** The admin SVID (TCP/mTLS mode); absent or null: the app does not use one. */
  readAdminSvid?(): Promise<ReturnType<typeof adminSvidStatus>>;
}

const errorOf = (err: unknown) => ({ error: ((err as Error).message ?? String(err)).split("\n")[0] });

/**
 * GET /api/bundle. Each side is read on its own: a server that does not answer still shows Key
 * Vault's side (and the reverse), with the error in place of the unreadable one.
 */
export function bundleStatusHttpHandler(deps: BundleStatusDeps) {
  return async (_request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    const log = createLogger(context);
    const [server, vault, last, admin] = await Promise.allSettled([
      deps.readServer(),
      deps.readVault(),
      deps.readLastRotation(),
      deps.readAdminSvid ? deps.readAdminSvid() : Promise.resolve(undefined),
    ]);
    for (const [side, r] of [
      ["server", server],
      ["vault", vault],
      ["fleet table", last],
      ["admin SVID", admin],
    ] as const) {
      if (r.status === "rejected") log.warn(`bundle status: ${side} unreadable`, errorOf(r.reason));
    }
    const serverSide = server.status === "fulfilled" ? server.value : undefined;
    const vaultSide = vault.status === "fulfilled" ? vault.value : undefined;
    const match =
      serverSide && vault.status === "fulfilled"
        ? vaultSide !== undefined && sameRoots(serverSide.fingerprints, vaultSide.fingerprints)
        : null;
    return json(200, {
      secretName: deps.secretName,
      vault: vault.status === "fulfilled" ? (vaultSide ?? null) : errorOf(vault.reason),
      server: serverSide ?? errorOf((server as PromiseRejectedResult).reason),
      match,
      adminSvid: admin.status === "rejected" ? errorOf(admin.reason) : (admin.value?.adminSvid ?? null),
      ...(admin.status === "fulfilled" && admin.value?.reason ? { adminSvidNote: admin.value.reason } : {}),
      lastRotation: last.status === "fulfilled" ? (last.value ?? null) : errorOf(last.reason),
    });
  };
}
