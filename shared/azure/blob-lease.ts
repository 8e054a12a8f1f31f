/**
 * The per-VM run-command lock as a blob lease in the Functions host's storage account: every
 * worker of every instance of the app sees the same blob, so at most one holds the VM at a time.
 * The lease is finite and renewed while held, so a worker that dies gives the VM up when its
 * lease runs out (Blob leases are 15-60 s or infinite: an infinite one would outlive a crash),
 * and nobody takes it over before that.
 * https://learn.microsoft.com/rest/api/storageservices/lease-blob
 */
import type { BlobLeaseClient, ContainerClient } from "@azure/storage-blob";
import { type HeldVmLock, type VmLock, VmLockTimeoutError } from "../spire/runcommand/lock.js";
import type { SpireLogger } from "../spire/types.js";
import { silentLogger } from "../spire/types.js";

export interface BlobVmLockOptions {
  container: ContainerClient;
  /** One blob per VM (e.g. `runcommand/<resource group>/<vm>`). */
  blobName: string;
  /** Lease duration, 15-60 s (default 30). */
  leaseSeconds?: number;
  /** Between renewals (default a third of the lease: two renewals may fail before it lapses). */
  renewEveryMs?: number;
  /** Between attempts while another worker holds it (default 1 s, jittered). */
  pollMs?: number;
  /** Give up waiting after this long (default 15 min). */
  acquireTimeoutMs?: number;
  logger?: SpireLogger;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

function statusOf(err: unknown): number | undefined {
  const s = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof s === "number" ? s : undefined;
}

function codeOf(err: unknown): string {
  const c = (err as { code?: unknown; details?: { errorCode?: unknown } } | null) ?? {};
  return String(c.details?.errorCode ?? c.code ?? "");
}

export function blobVmLock(o: BlobVmLockOptions): VmLock {
  const leaseSeconds = o.leaseSeconds ?? 30;
  if (!Number.isInteger(leaseSeconds) || leaseSeconds < 15 || leaseSeconds > 60)
    throw new Error("leaseSeconds must be a whole number from 15 to 60");
  const renewEveryMs = o.renewEveryMs ?? Math.floor((leaseSeconds * 1000) / 3);
  const pollMs = o.pollMs ?? 1_000;
  const acquireTimeoutMs = o.acquireTimeoutMs ?? 15 * 60_000;
  const logger = o.logger ?? silentLogger;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = o.now ?? Date.now;
  const blob = o.container.getBlockBlobClient(o.blobName);

  async function ensureBlob(): Promise<void> {
    await o.container.createIfNotExists();
    try {
      await blob.upload("", 0, { conditions: { ifNoneMatch: "*" } });
    } catch (err) {
      // 409: it exists now; 412: it exists and another worker leased it meanwhile.
      if (statusOf(err) !== 409 && statusOf(err) !== 412) throw err;
    }
  }

  function holding(lease: BlobLeaseClient): HeldVmLock {
    let held = true;
    let renewing: Promise<unknown> = Promise.resolve();
    const timer = setInterval(() => {
      renewing = lease.renewLease().catch((err: unknown) => {
        const status = statusOf(err);
        if (status === 409 || status === 412 || status === 404) {
          // The lease lapsed and may belong to another worker now: say so loudly.
          held = false;
          clearInterval(timer);
          logger.error("lost the VM's run-command lease", { blob: o.blobName, code: codeOf(err) });
        } else {
          logger.warn("could not renew the VM's run-command lease; trying again", {
            blob: o.blobName,
            error: (err as Error).message,
          });
        }
      });
    }, renewEveryMs);
    timer.unref?.();
    return {
      get held() {
        return held;
      },
      async release() {
        clearInterval(timer);
        await renewing;
        if (!held) return;
        held = false;
        try {
          await lease.releaseLease();
        } catch (err) {
          // It lapses by itself within leaseSeconds.
          logger.warn("could not release the VM's run-command lease; it expires on its own", {
            blob: o.blobName,
            error: (err as Error).message,
          });
        }
      },
    };
  }

  return {
    async acquire() {
      const deadline = now() + acquireTimeoutMs;
      const lease = blob.getBlobLeaseClient();
      let created = false;
      for (;;) {
        try {
          await lease.acquireLease(leaseSeconds);
          return holding(lease);
        } catch (err) {
          const status = statusOf(err);
          if (status === 404 && !created) {
            await ensureBlob();
            created = true;
            continue;
          }
          if (status !== 409) throw err;
        }
        if (now() >= deadline) {
          throw new VmLockTimeoutError(
            `another worker held the VM's run-command lease (${o.blobName}) for over ${Math.round(acquireTimeoutMs / 1000)} s`,
          );
        }
        await sleep(Math.round(pollMs * (0.5 + Math.random())));
      }
    },
  };
}
