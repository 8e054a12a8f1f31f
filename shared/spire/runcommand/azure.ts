/**
 * The slice of Azure's managed run-commands API (Microsoft.Compute/virtualMachines/runCommands)
 * the run-command adapter needs, shaped like @azure/arm-compute's `virtualMachineRunCommands`
 * with the resource's properties flattened as the SDK models them. A thin wrapper over the SDK
 * (or the simulator's client) implements it; tests use a scripted fake.
 */

export interface RunCommandInputParameter {
  name: string;
  value: string;
}

export type RunCommandExecutionState =
  | "Unknown"
  | "Pending"
  | "Running"
  | "Failed"
  | "Succeeded"
  | "TimedOut"
  | "Canceled";

export interface RunCommandInstanceView {
  executionState?: RunCommandExecutionState | string;
  executionMessage?: string;
  exitCode?: number;
  /** Last 4 KB of stdout. */
  output?: string;
  /** Last 4 KB of stderr. */
  error?: string;
  startTime?: Date;
  endTime?: Date;
}

export interface VirtualMachineRunCommand {
  location: string;
  source?: { script?: string };
  parameters?: RunCommandInputParameter[];
  protectedParameters?: RunCommandInputParameter[];
  asyncExecution?: boolean;
  timeoutInSeconds?: number;
  treatFailureAsDeploymentFailure?: boolean;
  outputBlobUri?: string;
  errorBlobUri?: string;
  /** ARM state (Creating, Updating, Succeeded, Failed, Canceled, Deleting...). Response only. */
  readonly provisioningState?: string;
  /** Response only, with expand=instanceView. */
  readonly instanceView?: RunCommandInstanceView;
}

export interface RunCommandsClient {
  /** PUT the run-command. Resolves once Azure accepted it (the adapter polls for the outcome). */
  createOrUpdate(
    resourceGroupName: string,
    vmName: string,
    runCommandName: string,
    runCommand: VirtualMachineRunCommand,
  ): Promise<unknown>;
  getByVirtualMachine(
    resourceGroupName: string,
    vmName: string,
    runCommandName: string,
    options: { expand: "instanceView" },
  ): Promise<VirtualMachineRunCommand>;
  /** DELETE; resolves when the deletion finished. */
  delete(resourceGroupName: string, vmName: string, runCommandName: string): Promise<unknown>;
}

/** Optional: where output goes when it may exceed the instance view's 4 KB (append blobs). */
export interface RunCommandOutputStore {
  /** A writable append-blob URI (SAS or managed identity) for this run-command's stdout. */
  outputBlobUriFor(runCommandName: string): string | Promise<string>;
  read(uri: string): Promise<string>;
  /** Deletes the blob once read (optional). */
  remove?(uri: string): Promise<void>;
}

const TERMINAL_EXECUTION = new Set(["Succeeded", "Failed", "TimedOut", "Canceled"]);
const TERMINAL_PROVISIONING = new Set(["Succeeded", "Failed", "Canceled"]);

export function isTerminalExecution(state: string | undefined): boolean {
  return state !== undefined && TERMINAL_EXECUTION.has(state);
}

export function isTerminalProvisioning(state: string | undefined): boolean {
  return state !== undefined && TERMINAL_PROVISIONING.has(state);
}

/** True for an Azure "not found" error (RestError statusCode 404 or code ResourceNotFound/NotFound). */
export function isNotFoundError(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const e = err as { statusCode?: unknown; code?: unknown };
  return e.statusCode === 404 || e.code === "ResourceNotFound" || e.code === "NotFound";
}
