/**
 * The per-VM run-command lock as a blob lease in Azurite (issue 9, defect 3): a second worker
 * waits while the first holds it, gets it as soon as it is released, never while a holder keeps
 * renewing, and takes over a crashed holder's lease only once it expired.
 */
import { BlobServiceClient } from "@azure/storage-blob";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AzuriteHandle, startAzurite } from "../../sandbox/emulators/azurite.js";
import { blobVmLock } from "../../shared/azure/blob-lease.js";
import { LOCK_CONTAINER, runCommandVmLock } from "../../shared/azure/runcommand-storage.js";
import { VmLockTimeoutError } from "../../shared/spire/runcommand/lock.js";

let azurite: AzuriteHandle;
let service: BlobServiceClient;

beforeAll(async () => {
  azurite = await startAzurite();
  service = BlobServiceClient.fromConnectionString(azurite.connectionString);
}, 60_000);

afterAll(async () => {
  await azurite?.stop();
});

const settled = async (p: Promise<unknown>, ms: number) =>
  Promise.race([p.then(() => true), new Promise((r) => setTimeout(() => r(false), ms))]);

describe("run-command VM lease", () => {
  it("one holder at a time; the next gets it as soon as it is released", async () => {
    const vm = { resourceGroup: "rg", name: "vm-a" };
    const a = runCommandVmLock(service, vm, { pollMs: 100 });
    const b = runCommandVmLock(service, vm, { pollMs: 100 });
    const heldA = await a.acquire();
    const pendingB = b.acquire();
    expect(await settled(pendingB, 800)).toBe(false);
    await heldA.release();
    const t0 = Date.now();
    const heldB = await pendingB;
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(heldB.held).toBe(true);
    await heldB.release();
    // Another VM has its own lease.
    const other = await runCommandVmLock(service, { resourceGroup: "rg", name: "vm-b" }).acquire();
    await other.release();
  }, 30_000);

  it("a holder that keeps renewing keeps it past the lease's duration", async () => {
    const container = service.getContainerClient(LOCK_CONTAINER);
    const a = blobVmLock({
      container,
      blobName: "runcommand/rg/vm-renew",
      leaseSeconds: 15,
      renewEveryMs: 4_000,
    });
    const b = blobVmLock({
      container,
      blobName: "runcommand/rg/vm-renew",
      leaseSeconds: 15,
      pollMs: 500,
      acquireTimeoutMs: 18_000,
    });
    const heldA = await a.acquire();
    await expect(b.acquire()).rejects.toBeInstanceOf(VmLockTimeoutError);
    expect(heldA.held).toBe(true);
    await heldA.release();
  }, 40_000);

  it("a crashed holder's lease is taken over only after it expired", async () => {
    const container = service.getContainerClient(LOCK_CONTAINER);
    const blobName = "runcommand/rg/vm-crash";
    // A worker that took the lease and died: nobody renews or releases it.
    await container.createIfNotExists();
    const blob = container.getBlockBlobClient(blobName);
    await blob.upload("", 0);
    await blob.getBlobLeaseClient().acquireLease(15);
    const t0 = Date.now();
    const next = await blobVmLock({ container, blobName, leaseSeconds: 15, pollMs: 250 }).acquire();
    const waited = Date.now() - t0;
    expect(waited).toBeGreaterThan(13_000);
    expect(waited).toBeLessThan(25_000);
    await next.release();
  }, 40_000);
});
