import type { ComputeManagementClient } from "@azure/arm-compute";
import type { BlobServiceClient } from "@azure/storage-blob";
import type { AppConfig, SpireVm } from "../config.js";
import type { RunCommandExecutorOptions } from "../spire/runcommand/executor.js";
import type { SpireLogger } from "../spire/types.js";
import { blobOutputStore, runCommandVmLock } from "./runcommand-storage.js";
import { armRunCommandsClient } from "./runcommands.js";

/*
 * How every run-command on the SPIRE server's VM is made, whoever makes it (the run-command SPIRE
 * adapter, the sweep's `docker restart`, the deploy's `docker start`): the VM's blob lease (one
 * run-command on the VM at a time across all workers), output in the host's storage, the
 * server's container, and the timeout, cooldown and poll pause from the settings.
 */

export interface VmRunCommandTuning {
  /** Between polls of a run-command's instance view (default RUN_COMMAND_POLL_SECONDS). */
  pollIntervalMs?: number;
  /** The per-VM blob lease, 15-60 s (default 30), renewed every third of it while held. */
  leaseSeconds?: number;
  /** Between attempts to take the lease while another worker holds it (default 1 s). */
  leasePollMs?: number;
}

export async function vmRunCommandOptions(
  config: AppConfig,
  vmRef: SpireVm,
  compute: ComputeManagementClient,
  storage: BlobServiceClient,
  logger: SpireLogger,
  tuning: VmRunCommandTuning = {},
): Promise<RunCommandExecutorOptions> {
  const { spire } = config;
  const vm = await compute.virtualMachines.get(vmRef.resourceGroup, vmRef.name);
  return {
    lock: runCommandVmLock(storage, vmRef, {
      logger,
      ...(tuning.leaseSeconds !== undefined && { leaseSeconds: tuning.leaseSeconds }),
      ...(tuning.leasePollMs !== undefined && { pollMs: tuning.leasePollMs }),
    }),
    pollIntervalMs: tuning.pollIntervalMs ?? spire.runCommand.pollSeconds * 1000,
    outputStore: blobOutputStore({
      service: storage,
      vmName: vmRef.name,
      sasMinutes: Math.ceil(spire.runCommand.timeoutSeconds / 60) + 15,
    }),
    client: armRunCommandsClient(compute),
    resourceGroup: vmRef.resourceGroup,
    vmName: vmRef.name,
    location: vm.location,
    exec: { kind: "docker", container: spire.serverContainer, serverPath: "/opt/spire/bin/spire-server" },
    timeoutSeconds: spire.runCommand.timeoutSeconds,
    cooldownMs: spire.runCommand.cooldownSeconds * 1000,
    logger,
  };
}
