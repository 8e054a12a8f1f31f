import type { SecretEventType } from "../keyVaultEvents.js";

/*
 * Whether a Key Vault event on the trust bundle is only the echo of this app's own write. The
 * writer (a rotation, or a deploy's bundle step) read the server's bundle a moment before writing
 * the version, so a rotation started by the echo would read the same bundle again: in run-command
 * mode, one more run-command on the VM after every write. Key Vault echoes a write twice:
 * SecretNewVersionCreated, and SecretNearExpiry at once when the version expires within 30 days
 * (a SPIRE bundle's roots live a day by default, so nearly always). Pure.
 */

/** A NearExpiry this soon after the app's write is Key Vault's at-once notice for short-lived material. */
export const ECHO_WINDOW_SECONDS = 300;

export interface OwnWrite {
  /** The version this app last wrote. */
  version: string;
  /** When it wrote it (ISO), when known. */
  at?: string;
}

export interface BundleEvent {
  eventType: SecretEventType;
  version: string;
  eventTime: string;
}

/** The reason to start nothing, or undefined when the event must start a check. */
export function ownWriteEcho(event: BundleEvent, own: OwnWrite | undefined): string | undefined {
  if (!own || own.version !== event.version) return undefined;
  const by = `written by this app${own.at ? ` at ${own.at}` : ""}`;
  if (event.eventType === "Microsoft.KeyVault.SecretNewVersionCreated") return by;
  if (event.eventType !== "Microsoft.KeyVault.SecretNearExpiry" || !own.at) return undefined;
  const after = (Date.parse(event.eventTime) - Date.parse(own.at)) / 1000;
  // A later NearExpiry (a long-lived CA's 30-day notice) is news and starts a check.
  return after >= -ECHO_WINDOW_SECONDS && after <= ECHO_WINDOW_SECONDS
    ? `${by}, and its near-expiry notice came within ${Math.abs(Math.round(after))} s of the write`
    : undefined;
}
