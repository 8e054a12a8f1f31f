import type { ComputeManagementClient } from "@azure/arm-compute";
import type { RunCommandsClient, VirtualMachineRunCommand } from "../spire/runcommand/azure.js";

/**
 * The run-command adapter's RunCommandsClient over @azure/arm-compute's managed run-commands:
 * create resolves once ARM accepted the PUT (the adapter polls both state machines itself, so it
 * can tell a guest that finished from an ARM resource that is still provisioning), delete waits
 * for the deletion to finish.
 */
export function armRunCommandsClient(compute: ComputeManagementClient): RunCommandsClient {
  const rc = compute.virtualMachineRunCommands;
  return {
    async createOrUpdate(resourceGroup, vmName, name, body) {
      const poller = rc.createOrUpdate(resourceGroup, vmName, name, body);
      await poller.submitted();
      return poller.operationState;
    },
    async getByVirtualMachine(resourceGroup, vmName, name, options) {
      return (await rc.getByVirtualMachine(resourceGroup, vmName, name, options)) as VirtualMachineRunCommand;
    },
    async delete(resourceGroup, vmName, name) {
      await rc.delete(resourceGroup, vmName, name).pollUntilDone();
    },
  };
}
