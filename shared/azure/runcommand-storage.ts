/**
 * What run-command mode keeps in the Functions host's own storage account: the per-VM lease that
 * serializes run-commands across workers, and the append blobs the VM writes a script's output to
 * (past the instance view's 4 KB). The VM reaches its output blob through a short-lived SAS
 * scoped to that one blob; its content is sealed by the script (../spire/runcommand/script.ts),
 * so the blob and the SAS in the run-command's `outputBlobUri` reveal no secret.
 */
import {
  BlobSASPermissions,
  type BlobServiceClient,
  type ContainerClient,
  generateBlobSASQueryParameters,
  StorageSharedKeyCredential,
} from "@azure/storage-blob";
import type { RunCommandOutputStore } from "../spire/runcommand/azure.js";
import type { VmLock } from "../spire/runcommand/lock.js";
import type { SpireLogger } from "../spire/types.js";
import { blobVmLock } from "./blob-lease.js";

export const LOCK_CONTAINER = "spire-autopilot-locks";
export const OUTPUT_CONTAINER = "spire-autopilot-runcommand-output";

/** The VM's lock: one blob per VM, `runcommand/<resource group>/<vm>` (lower case). */
export function runCommandVmLock(
  service: BlobServiceClient,
  vm: { resourceGroup: string; name: string },
  options: { leaseSeconds?: number; pollMs?: number; acquireTimeoutMs?: number; logger?: SpireLogger } = {},
): VmLock {
  return blobVmLock({
    container: service.getContainerClient(LOCK_CONTAINER),
    blobName: `runcommand/${vm.resourceGroup.toLowerCase()}/${vm.name.toLowerCase()}`,
    ...options,
  });
}

export interface BlobOutputStoreOptions {
  service: BlobServiceClient;
  vmName: string;
  /** How long the VM's SAS is valid (default 30 min: the script's limit plus the agent's lag). */
  sasMinutes?: number;
  now?: () => Date;
}

/** Output blobs in the host's storage; the VM writes through a SAS for one blob only. */
export function blobOutputStore(o: BlobOutputStoreOptions): RunCommandOutputStore {
  const container: ContainerClient = o.service.getContainerClient(OUTPUT_CONTAINER);
  const now = o.now ?? (() => new Date());
  const sasMinutes = o.sasMinutes ?? 30;
  let ready: Promise<unknown> | undefined;
  const blobNameOf = (uri: string): string => {
    const prefix = `${container.url}/`;
    const bare = uri.split("?")[0] ?? "";
    if (!bare.startsWith(prefix)) throw new Error("not one of this store's output blobs");
    return decodeURIComponent(bare.slice(prefix.length));
  };
  return {
    async outputBlobUriFor(runCommandName) {
      ready ??= container.createIfNotExists().catch((err: unknown) => {
        ready = undefined;
        throw err;
      });
      await ready;
      const blob = container.getAppendBlobClient(`${o.vmName.toLowerCase()}/${runCommandName}.out`);
      const startsOn = new Date(now().getTime() - 5 * 60_000); // clock skew
      const expiresOn = new Date(now().getTime() + sasMinutes * 60_000);
      // What the run-command docs ask for: read, append, create, write.
      const permissions = BlobSASPermissions.parse("racw");
      if (o.service.credential instanceof StorageSharedKeyCredential) {
        return blob.generateSasUrl({ permissions, startsOn, expiresOn });
      }
      // Identity-based storage (AzureWebJobsStorage__accountName): a user delegation SAS.
      const key = await o.service.getUserDelegationKey(startsOn, expiresOn);
      const sas = generateBlobSASQueryParameters(
        { containerName: container.containerName, blobName: blob.name, permissions, startsOn, expiresOn },
        key,
        o.service.accountName,
      ).toString();
      return `${blob.url}?${sas}`;
    },
    async read(uri) {
      const buf = await container.getBlobClient(blobNameOf(uri)).downloadToBuffer();
      return buf.toString("utf8");
    },
    async remove(uri) {
      await container.getBlobClient(blobNameOf(uri)).deleteIfExists();
    },
  };
}
