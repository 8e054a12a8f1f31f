import type { EventGridEvent, InvocationContext } from "@azure/functions";
import type { DurableClient } from "durable-functions";
import { type RotationStartOutcome, startRotateBundle } from "../orchestrations/rotateBundle.start.js";
import { classifyKeyVaultEvent, type KeyVaultEventScope } from "../shared/keyVaultEvents.js";
import { createLogger } from "../shared/logging.js";
import { type OwnWrite, ownWriteEcho } from "../shared/trust/own-write.js";

/** Thrown for an event this app must not act on; its message names the problem. */
export class KeyVaultEventRejected extends Error {
  override readonly name = "KeyVaultEventRejected";
}

export interface KeyVaultEventDeps {
  scope: KeyVaultEventScope;
  /** The rotation's starter (a singleton); replaceable in tests. */
  start?: typeof startRotateBundle;
  /**
   * The version of `secret` this app last wrote, and when (its rotation and a deploy's bundle step
   * note each version they write in the fleet table); undefined when none or not kept.
   */
  lastOwnWrite?: (secret: string) => Promise<OwnWrite | undefined>;
}

/**
 * The Event Grid trigger for Key Vault's secret events on the trust bundle and the admin SVID:
 * each accepted event nudges a rotation to check now (the starter is a singleton, so a burst of
 * events during one rotation joins that run), except the echo of a version this app wrote itself
 * (`lastOwnWrite`); other Key Vault events of the vault are acknowledged and ignored.
 *
 * An app.eventGrid function cannot choose the HTTP status Event Grid gets: the extension answers
 * 202 when every invocation of a delivery succeeded and 500 (with the exception's message) when
 * one failed. So an event that is not ours (not Key Vault, another vault or secret, not the Event
 * Grid schema) fails its invocation with the problem named, after starting nothing: the failure
 * shows in the function's metrics and logs, and Event Grid retries, then dead-letters (or drops)
 * it. The host's own 4xx answers cover malformed deliveries before any code runs: 401 without the
 * eventgrid_extension key, 404 for an unknown functionName, 400 without a known aeg-event-type.
 * A task hub outage also fails the invocation, and Event Grid's retry is then what we want.
 */
export function keyVaultEventsHandler(deps: KeyVaultEventDeps) {
  const start = deps.start ?? startRotateBundle;
  return async (event: EventGridEvent, client: DurableClient, context: InvocationContext): Promise<void> => {
    const log = createLogger(context);
    const verdict = classifyKeyVaultEvent(event, deps.scope);
    if (verdict.kind === "reject") {
      log.warn("Key Vault event rejected; nothing started", {
        eventId: typeof event?.id === "string" ? event.id : undefined,
        problem: verdict.problem,
      });
      throw new KeyVaultEventRejected(`Key Vault event rejected, nothing started: ${verdict.problem}`);
    }
    if (verdict.kind === "ignore") {
      log.info("Key Vault event acknowledged and ignored", {
        eventId: verdict.eventId,
        reason: verdict.reason,
      });
      return;
    }
    if (deps.lastOwnWrite) {
      // The echo of the app's own write starts nothing (shared/trust/own-write.ts); anyone else's
      // version, a later notice, or a fleet table that cannot say still starts the check.
      const own = await deps.lastOwnWrite(verdict.secret).catch((err: unknown) => {
        log.warn("could not tell whether this app wrote the version; checking it", {
          eventId: verdict.eventId,
          error: (err as Error)?.message ?? String(err),
        });
        return undefined;
      });
      const echo = ownWriteEcho(verdict, own);
      if (echo) {
        log.info("Key Vault event acknowledged and ignored", {
          eventId: verdict.eventId,
          eventType: verdict.eventType,
          reason: `version ${verdict.version} of ${verdict.secret} was ${echo}; nothing to check`,
        });
        return;
      }
    }
    const outcome: RotationStartOutcome = await start(client, {
      trigger: "event",
      reason: `${verdict.eventType} on ${verdict.secret} (version ${verdict.version})`,
    });
    log.info(outcome.kind === "started" ? "bundle rotation started" : "bundle rotation already running", {
      eventId: verdict.eventId,
      eventType: verdict.eventType,
      secret: verdict.secret,
      version: verdict.version,
      expiresOn: verdict.expiresOn,
      instanceId: outcome.instanceId,
    });
  };
}
