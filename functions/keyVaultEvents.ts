import type { EventGridEvent, InvocationContext } from "@azure/functions";
import type { DurableClient } from "durable-functions";
import { type RotationStartOutcome, startRotateBundle } from "../orchestrations/rotateBundle.start.js";
import { classifyKeyVaultEvent, type KeyVaultEventScope } from "../shared/keyVaultEvents.js";
import { createLogger } from "../shared/logging.js";

/** Thrown for an event this app must not act on; its message names the problem. */
export class KeyVaultEventRejected extends Error {
  override readonly name = "KeyVaultEventRejected";
}

export interface KeyVaultEventDeps {
  scope: KeyVaultEventScope;
  /** The rotation's starter (a singleton); replaceable in tests. */
  start?: typeof startRotateBundle;
  /**
   * Whether this app itself wrote `version` of `secret` (its rotation, or a deploy's bundle step,
   * notes each version it writes in the fleet table): a description of that write, or undefined.
   */
  ownWrite?: (secret: string, version: string) => Promise<string | undefined>;
}

/**
 * The Event Grid trigger for Key Vault's secret events on the trust bundle and the admin SVID:
 * each accepted event nudges a rotation to check now (the starter is a singleton, so a burst of
 * events during one rotation joins that run), except the new-version event of a version this app
 * wrote itself (`ownWrite`); other Key Vault events of the vault are acknowledged and ignored.
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
    if (verdict.eventType === "Microsoft.KeyVault.SecretNewVersionCreated" && deps.ownWrite) {
      // The app's own write: its writer read the server's bundle a moment ago, so a rotation would
      // only read it again (in run-command mode, one more run-command on the VM). Anyone else's
      // version, or a fleet table that cannot say, still starts the check.
      const own = await deps.ownWrite(verdict.secret, verdict.version).catch((err: unknown) => {
        log.warn("could not tell whether this app wrote the version; checking it", {
          eventId: verdict.eventId,
          error: (err as Error)?.message ?? String(err),
        });
        return undefined;
      });
      if (own) {
        log.info("Key Vault event acknowledged and ignored", {
          eventId: verdict.eventId,
          reason: `version ${verdict.version} of ${verdict.secret} was ${own}; nothing to check`,
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
