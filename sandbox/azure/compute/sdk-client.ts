/**
 * The run-command adapter's RunCommandsClient over @azure/arm-compute: create returns once ARM
 * accepted the PUT (the adapter polls both state machines itself), delete waits for the delete.
 * The product's client factory will carry its own; this one serves tests and scenarios.
 */
import type { ComputeManagementClient } from "@azure/arm-compute";
import type { RunCommandsClient, VirtualMachineRunCommand } from "../../../shared/spire/runcommand/azure.js";

export function sdkRunCommandsClient(compute: ComputeManagementClient): RunCommandsClient {
  const rc = compute.virtualMachineRunCommands;
  return {
    async createOrUpdate(rg, vm, name, body) {
      const poller = rc.createOrUpdate(rg, vm, name, body);
      await poller.submitted();
      return poller.operationState;
    },
    async getByVirtualMachine(rg, vm, name, options) {
      return (await rc.getByVirtualMachine(rg, vm, name, options)) as VirtualMachineRunCommand;
    },
    async delete(rg, vm, name) {
      await rc.delete(rg, vm, name).pollUntilDone();
    },
  };
}
