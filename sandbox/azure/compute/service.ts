/**
 * VM managed run-commands with ARM's two state machines: instanceView.executionState (the guest
 * agent: Pending → Running → Succeeded|Failed|TimedOut) and provisioningState (ARM: Creating →
 * Succeeded|Failed), the second trailing the first by a lag (learning #20). The guest agent can
 * wedge (#20, #34): then run-commands hang or get 409 until the VM is deallocated. The legacy
 * POST runCommand runs one at a time with no timeout (#8, #17).
 */
import { randomUUID } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ArmError, armErrors } from "../arm/errors.js";
import type { AsyncOperation, AsyncOperations } from "../arm/operations.js";
import type { ArmResponse } from "../arm/router.js";
import type { Counters } from "../counters.js";
import type { Faults } from "../faults.js";
import { asArray, asObject, asString, isObject, type JsonObject } from "../json.js";
import type { LatencyProfile } from "../profiles.js";
import type { Timers } from "../timers.js";
import { DockerDaemon, installDockerShim, type SpireServerContainer } from "./docker.js";
import { isValidEnvName, lastBytes, runScript, type ScriptResult, type ScriptRun } from "./executor.js";
import { writeAppendBlob } from "./output-blob.js";

export interface VmOptions {
  resourceGroup: string;
  name: string;
  location?: string;
  /** The `spire-server` Docker container scripts reach through the docker shim. */
  spireServer?: SpireServerContainer;
  /** Pretend the VM started this long ago (default 0: fresh, the guest agent still settling). */
  startedAgoMs?: number;
}

export interface ComputeDeps {
  subscriptionId: string;
  profile(): LatencyProfile;
  timers: Timers;
  ops: AsyncOperations;
  counters: Counters;
  faults: Faults;
  workDir: string;
  log(message: string): void;
}

export type ExecutionState =
  | "Unknown"
  | "Pending"
  | "Running"
  | "Failed"
  | "Succeeded"
  | "TimedOut"
  | "Canceled";
export type RunCommandProvisioningState =
  | "Creating"
  | "Updating"
  | "Succeeded"
  | "Failed"
  | "Canceled"
  | "Deleting";

const TERMINAL_PROVISIONING = new Set<RunCommandProvisioningState>(["Succeeded", "Failed", "Canceled"]);
const DEFAULT_TIMEOUT_SECONDS = 5400;
const MAX_TIMEOUT_SECONDS = 5400 * 4;

interface Parameter {
  name: string;
  value: string;
}

interface RunCommandSpec {
  source: JsonObject;
  script: string;
  parameters: Parameter[];
  protectedParameters: Parameter[];
  asyncExecution: boolean;
  timeoutInSeconds: number;
  treatFailureAsDeploymentFailure: boolean;
  extra: JsonObject;
}

interface RunCommandRecord {
  name: string;
  location: string;
  tags?: JsonObject;
  spec: RunCommandSpec;
  provisioningState: RunCommandProvisioningState;
  executionState: ExecutionState;
  executionMessage: string;
  exitCode?: number;
  output: string;
  error: string;
  startTime?: Date;
  endTime?: Date;
  /** Accepted while the agent was wedged: it never progresses. */
  hung: boolean;
  operation?: AsyncOperation;
  run?: ScriptRun;
  cancels: (() => void)[];
  seq: number;
}

interface VmRecord {
  resourceGroup: string;
  name: string;
  location: string;
  vmId: string;
  dir: string;
  binDir: string;
  docker: DockerDaemon;
  spireServer?: SpireServerContainer;
  powerState: "running" | "deallocated";
  startedAt: number;
  wedged: boolean;
  wedgeReason?: string;
  lastDeleteCompletedAt?: number;
  runCommands: Map<string, RunCommandRecord>;
  legacy?: { run?: ScriptRun; op: AsyncOperation };
  seq: number;
}

/** Inspection and control of one VM, for tests and scenarios. */
export interface VmHandle {
  readonly name: string;
  readonly resourceGroup: string;
  readonly wedged: boolean;
  readonly wedgeReason: string | undefined;
  readonly fresh: boolean;
  /** Folder scripts run in (under it: runs/<n>/). */
  readonly dir: string;
  /** Wedge the guest agent now (as if by #20/#34). */
  wedge(reason?: string): void;
  /** Force-deallocate and start: the only recovery from a wedge; the VM is fresh afterwards. */
  reset(): Promise<void>;
  /** Names of run-commands that exist now. */
  runCommands(): string[];
  /** The VM's spire-server container, for faults: pause (hang, #23), resume, restart. */
  readonly spireServer: SpireServerContainer | undefined;
}

function readParameters(x: unknown, what: string): Parameter[] {
  if (x === undefined || x === null) return [];
  const arr = asArray(x);
  if (!arr) throw new ArmError(400, "InvalidParameter", `'${what}' must be a list.`, { target: what });
  return arr.map((p) => {
    const o = asObject(p);
    const name = asString(o?.name);
    const value = o?.value;
    if (name === undefined || typeof value !== "string") {
      throw new ArmError(400, "InvalidParameter", `Each of '${what}' needs a string name and value.`, {
        target: what,
      });
    }
    if (!isValidEnvName(name)) {
      throw new ArmError(
        400,
        "InvalidParameter",
        `Parameter name '${name}' is invalid: on Linux parameters are environment variables (letters, digits, '_', not starting with a digit).`,
        { target: what },
      );
    }
    return { name, value };
  });
}

export class ComputeService {
  private readonly vms = new Map<string, VmRecord>();
  private vmCount = 0;

  constructor(private readonly deps: ComputeDeps) {}

  private key(rg: string, name: string): string {
    return `${rg.toLowerCase()}/${name.toLowerCase()}`;
  }

  async addVm(opts: VmOptions): Promise<VmHandle> {
    const key = this.key(opts.resourceGroup, opts.name);
    if (this.vms.has(key)) throw new Error(`VM ${opts.resourceGroup}/${opts.name} exists already`);
    const dir = join(this.deps.workDir, String(this.vmCount++));
    mkdirSync(join(dir, "runs"), { recursive: true });
    mkdirSync(join(dir, "home"), { recursive: true });
    const binDir = join(dir, "bin");
    const socketPath = join(dir, "docker.sock");
    installDockerShim(binDir, socketPath);
    const vm: VmRecord = {
      resourceGroup: opts.resourceGroup,
      name: opts.name,
      location: opts.location ?? "eastus",
      vmId: randomUUID(),
      dir,
      binDir,
      docker: new DockerDaemon(
        socketPath,
        () => vm.spireServer,
        (l) => this.deps.log(`vm ${opts.name}: ${l}`),
      ),
      powerState: "running",
      startedAt: Date.now() - (opts.startedAgoMs ?? 0),
      wedged: false,
      runCommands: new Map(),
      seq: 0,
    };
    if (opts.spireServer) vm.spireServer = opts.spireServer;
    await vm.docker.listen();
    this.vms.set(key, vm);
    return this.vm(opts.resourceGroup, opts.name);
  }

  private findVm(rg: string, name: string): VmRecord {
    const vm = this.vms.get(this.key(rg, name));
    if (!vm) throw armErrors.resourceNotFound("Microsoft.Compute/virtualMachines", name, rg);
    return vm;
  }

  vm(rg: string, name: string): VmHandle {
    const vm = this.findVm(rg, name);
    const self = this;
    return {
      name: vm.name,
      resourceGroup: vm.resourceGroup,
      get wedged() {
        return vm.wedged;
      },
      get wedgeReason() {
        return vm.wedgeReason;
      },
      get fresh() {
        return self.isFresh(vm);
      },
      dir: vm.dir,
      wedge: (reason = "wedged by the test") => this.wedge(vm, reason),
      reset: async () => {
        this.deallocate(vm);
        this.startVm(vm);
      },
      runCommands: () => [...vm.runCommands.values()].map((r) => r.name),
      get spireServer() {
        return vm.spireServer;
      },
    };
  }

  private isFresh(vm: VmRecord): boolean {
    return Date.now() - vm.startedAt < this.deps.profile().vmFreshMs;
  }

  private wedge(vm: VmRecord, reason: string): void {
    if (vm.wedged) return;
    vm.wedged = true;
    vm.wedgeReason = reason;
    this.deps.counters.runCommands("wedges");
    this.deps.log(`vm ${vm.name}: guest agent wedged: ${reason}`);
  }

  private deallocate(vm: VmRecord): void {
    vm.powerState = "deallocated";
    vm.wedged = false;
    vm.wedgeReason = undefined;
    for (const rc of vm.runCommands.values()) {
      rc.run?.cancel();
      for (const c of rc.cancels) c();
      rc.cancels = [];
      if (rc.operation && rc.operation.status === "InProgress") this.deps.ops.cancel(rc.operation);
      if (!TERMINAL_PROVISIONING.has(rc.provisioningState) && rc.provisioningState !== "Deleting") {
        rc.provisioningState = "Canceled";
        if (rc.executionState === "Pending" || rc.executionState === "Running")
          rc.executionState = "Canceled";
      }
      rc.hung = false;
    }
    // Deletes the agent never acknowledged are gone with the old agent state.
    for (const [key, rc] of vm.runCommands)
      if (rc.provisioningState === "Deleting") vm.runCommands.delete(key);
    if (vm.legacy) {
      vm.legacy.run?.cancel();
      if (vm.legacy.op.status === "InProgress") this.deps.ops.cancel(vm.legacy.op);
      vm.legacy = undefined;
    }
  }

  private startVm(vm: VmRecord): void {
    vm.powerState = "running";
    vm.startedAt = Date.now();
    vm.lastDeleteCompletedAt = undefined;
  }

  // -------------------------------------------------------------------------------------------
  // Views

  private vmId(vm: VmRecord): string {
    return `/subscriptions/${this.deps.subscriptionId}/resourceGroups/${vm.resourceGroup}/providers/Microsoft.Compute/virtualMachines/${vm.name}`;
  }

  private runCommandView(vm: VmRecord, rc: RunCommandRecord, expand: boolean): JsonObject {
    const properties: JsonObject = {
      source: rc.spec.source,
      parameters: rc.spec.parameters.map((p) => ({ name: p.name, value: p.value })),
      asyncExecution: rc.spec.asyncExecution,
      timeoutInSeconds: rc.spec.timeoutInSeconds,
      treatFailureAsDeploymentFailure: rc.spec.treatFailureAsDeploymentFailure,
      ...rc.spec.extra,
      provisioningState: rc.provisioningState,
    };
    if (expand) {
      const iv: JsonObject = {
        executionState: rc.executionState,
        executionMessage: rc.executionMessage,
        output: lastBytes(rc.output),
        error: lastBytes(rc.error),
        statuses: [],
      };
      if (rc.exitCode !== undefined) iv.exitCode = rc.exitCode;
      if (rc.startTime) iv.startTime = rc.startTime.toISOString();
      if (rc.endTime) iv.endTime = rc.endTime.toISOString();
      properties.instanceView = iv;
    }
    const view: JsonObject = {
      id: `${this.vmId(vm)}/runCommands/${rc.name}`,
      name: rc.name,
      type: "Microsoft.Compute/virtualMachines/runCommands",
      location: rc.location,
      properties,
    };
    if (rc.tags) view.tags = rc.tags;
    return view;
  }

  // -------------------------------------------------------------------------------------------
  // Managed run-commands

  getVm(rg: string, name: string): ArmResponse {
    const vm = this.findVm(rg, name);
    return {
      status: 200,
      body: {
        id: this.vmId(vm),
        name: vm.name,
        type: "Microsoft.Compute/virtualMachines",
        location: vm.location,
        properties: {
          vmId: vm.vmId,
          provisioningState: "Succeeded",
          hardwareProfile: { vmSize: "Standard_B1s" },
          osProfile: { computerName: vm.name, adminUsername: "azureuser" },
        },
      },
    };
  }

  listRunCommands(rg: string, vmName: string, expand: boolean): ArmResponse {
    const vm = this.findVm(rg, vmName);
    return {
      status: 200,
      body: { value: [...vm.runCommands.values()].map((rc) => this.runCommandView(vm, rc, expand)) },
    };
  }

  getRunCommand(rg: string, vmName: string, name: string, expand: boolean): ArmResponse {
    const vm = this.findVm(rg, vmName);
    const rc = vm.runCommands.get(name.toLowerCase());
    if (!rc)
      throw armErrors.resourceNotFound(`Microsoft.Compute/virtualMachines/${vm.name}/runCommands`, name, rg);
    return { status: 200, body: this.runCommandView(vm, rc, expand) };
  }

  private readSpec(body: JsonObject): { location: string; tags?: JsonObject; spec: RunCommandSpec } {
    const location = asString(body.location);
    if (location === undefined || location === "") {
      throw new ArmError(400, "LocationRequired", "The location property is required for this definition.");
    }
    const props = asObject(body.properties) ?? {};
    const source = asObject(props.source);
    if (!source)
      throw new ArmError(400, "InvalidParameter", "Run command source is required: properties.source.", {
        target: "source",
      });
    const script = asString(source.script);
    const commandId = asString(source.commandId);
    if (asString(source.scriptUri) !== undefined) {
      throw new ArmError(
        400,
        "InvalidParameter",
        "The sandbox VM cannot download scripts: use source.script.",
        { target: "source" },
      );
    }
    if (script === undefined && commandId === undefined) {
      throw new ArmError(
        400,
        "InvalidParameter",
        "One of source.script, source.scriptUri or source.commandId is required.",
        {
          target: "source",
        },
      );
    }
    if (script === undefined && commandId !== undefined && commandId !== "RunShellScript") {
      throw new ArmError(
        400,
        "InvalidParameter",
        `Command id '${commandId}' is not available on the sandbox VM.`,
        { target: "source" },
      );
    }
    const timeout = props.timeoutInSeconds;
    if (
      timeout !== undefined &&
      timeout !== null &&
      (typeof timeout !== "number" ||
        !Number.isInteger(timeout) ||
        timeout < 0 ||
        timeout > MAX_TIMEOUT_SECONDS)
    ) {
      throw new ArmError(
        400,
        "InvalidParameter",
        `timeoutInSeconds must be a whole number from 0 to ${MAX_TIMEOUT_SECONDS}.`,
        {
          target: "timeoutInSeconds",
        },
      );
    }
    const extra: JsonObject = {};
    for (const key of ["runAsUser", "outputBlobUri", "errorBlobUri"]) {
      const v = props[key];
      if (typeof v === "string") extra[key] = v;
    }
    const spec: RunCommandSpec = {
      source,
      script: script ?? "",
      parameters: readParameters(props.parameters, "parameters"),
      protectedParameters: readParameters(props.protectedParameters, "protectedParameters"),
      asyncExecution: props.asyncExecution === true,
      timeoutInSeconds: typeof timeout === "number" && timeout > 0 ? timeout : DEFAULT_TIMEOUT_SECONDS,
      treatFailureAsDeploymentFailure: props.treatFailureAsDeploymentFailure === true,
      extra,
    };
    const tags = isObject(body.tags) ? body.tags : undefined;
    return { location, ...(tags && { tags }), spec };
  }

  private conflictWedged(vm: VmRecord): ArmError {
    return new ArmError(
      409,
      "Conflict",
      `The VM guest agent of '${vm.name}' is not processing requests: run-commands cannot be created or deleted until the VM is deallocated and started again.`,
    );
  }

  putRunCommand(rg: string, vmName: string, name: string, body: JsonObject): ArmResponse {
    const vm = this.findVm(rg, vmName);
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/.test(name)) {
      throw new ArmError(400, "InvalidParameter", `Run command name '${name}' is invalid.`, {
        target: "runCommandName",
      });
    }
    if (vm.powerState !== "running") {
      throw new ArmError(
        409,
        "OperationNotAllowed",
        `Operation 'runCommand' is not allowed since VM '${vm.name}' is deallocated.`,
      );
    }
    const { location, tags, spec } = this.readSpec(body);
    const existing = vm.runCommands.get(name.toLowerCase());
    if (existing && !TERMINAL_PROVISIONING.has(existing.provisioningState)) {
      throw new ArmError(
        409,
        "Conflict",
        `Run command '${name}' is in provisioningState '${existing.provisioningState}'; wait for it to finish before updating it.`,
      );
    }
    const faults = this.deps.faults.settings;
    if (vm.wedged && faults.wedgedRunCommands === "conflict") {
      this.deps.counters.runCommands("blockedByWedge");
      throw this.conflictWedged(vm);
    }
    const profile = this.deps.profile();
    if (
      !vm.wedged &&
      faults.runCommandWedges &&
      this.isFresh(vm) &&
      vm.lastDeleteCompletedAt !== undefined &&
      Date.now() - vm.lastDeleteCompletedAt < profile.wedgeCooldownMs
    ) {
      this.wedge(
        vm,
        `run-command '${name}' created ${Date.now() - vm.lastDeleteCompletedAt} ms after a delete on a fresh VM (learning #34)`,
      );
    }
    this.deps.counters.runCommands("created");
    const rc: RunCommandRecord = {
      name,
      location,
      ...(tags && { tags }),
      spec,
      provisioningState: existing ? "Updating" : "Creating",
      executionState: vm.wedged ? "Unknown" : "Pending",
      executionMessage: "",
      output: "",
      error: "",
      hung: vm.wedged,
      cancels: [],
      seq: ++vm.seq,
    };
    if (existing) for (const c of existing.cancels) c();
    vm.runCommands.set(name.toLowerCase(), rc);
    // Every resource counts until its delete finished: what "one run-command at a time" means.
    this.deps.counters.runCommandsAtLeast("maxConcurrent", vm.runCommands.size);
    const op = this.deps.ops.start(
      "Microsoft.Compute",
      this.deps.subscriptionId,
      vm.location,
      `PUT runCommands/${name}`,
    );
    rc.operation = op;
    if (rc.hung) {
      this.deps.counters.runCommands("blockedByWedge");
    } else {
      rc.cancels.push(this.deps.timers.after(profile.runCommandPickupMs, () => this.execute(vm, rc)));
    }
    return {
      status: existing ? 200 : 201,
      body: this.runCommandView(vm, rc, false),
      headers: this.deps.ops.headers(op),
    };
  }

  private execute(vm: VmRecord, rc: RunCommandRecord): void {
    if (vm.runCommands.get(rc.name.toLowerCase()) !== rc || rc.hung) return;
    const runDir = join(vm.dir, "runs", String(rc.seq));
    mkdirSync(runDir, { recursive: true });
    const env: Record<string, string> = {
      PATH: `${vm.binDir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
      HOME: join(vm.dir, "home"),
      USER: "root",
      LOGNAME: "root",
      LANG: "C.UTF-8",
      SHELL: "/bin/bash",
    };
    for (const p of [...rc.spec.parameters, ...rc.spec.protectedParameters]) env[p.name] = p.value;
    rc.executionState = "Running";
    rc.executionMessage = "";
    rc.startTime = new Date();
    this.deps.counters.runCommands("scriptsRun");
    const run = runScript({
      dir: runDir,
      script: rc.spec.script,
      env,
      timeoutMs: rc.spec.timeoutInSeconds * 1000,
    });
    rc.run = run;
    const profile = this.deps.profile();
    if (rc.spec.asyncExecution) {
      // Provisioning completes as soon as the script starts.
      rc.cancels.push(
        this.deps.timers.after(profile.provisioningLagMs, () => this.finishProvisioning(rc, true)),
      );
    }
    run.done.then((result) => this.onScriptDone(vm, rc, result));
  }

  private async onScriptDone(vm: VmRecord, rc: RunCommandRecord, result: ScriptResult): Promise<void> {
    rc.run = undefined;
    const uploadProblem = result.canceled ? undefined : await this.writeOutputBlobs(vm, rc, result);
    rc.output = result.stdout;
    rc.error = result.stderr;
    rc.endTime = new Date();
    if (result.canceled) {
      rc.executionState = "Canceled";
      rc.executionMessage = "Execution was canceled";
      return;
    }
    if (result.timedOut) {
      this.deps.counters.runCommands("timedOut");
      rc.executionState = "TimedOut";
      rc.executionMessage = `Execution timed out after ${rc.spec.timeoutInSeconds} seconds`;
      rc.exitCode = -1;
    } else {
      rc.exitCode = result.exitCode ?? -1;
      rc.executionState = rc.exitCode === 0 ? "Succeeded" : "Failed";
      rc.executionMessage =
        rc.exitCode === 0 ? "Execution completed" : `Execution failed with exit code ${rc.exitCode}`;
    }
    if (uploadProblem) rc.executionMessage = `${rc.executionMessage}; ${uploadProblem}`;
    if (vm.runCommands.get(rc.name.toLowerCase()) !== rc) return;
    if (!rc.spec.asyncExecution) {
      // The ARM resource turns terminal only after a lag: the window learning #20 is about.
      rc.cancels.push(
        this.deps.timers.after(this.deps.profile().provisioningLagMs, () =>
          this.finishProvisioning(
            rc,
            !(rc.spec.treatFailureAsDeploymentFailure && rc.executionState !== "Succeeded"),
          ),
        ),
      );
    }
  }

  /**
   * The VM's handler uploads the whole stream to `outputBlobUri` / `errorBlobUri` (append blobs,
   * through the SAS in the URI) before it reports the run-command done; the instance view keeps
   * its last 4 KB as well (Microsoft's docs do not say it is emptied, so the simulator keeps it:
   * the stricter case for what ARM exposes). A failed upload is reported in executionMessage.
   * https://learn.microsoft.com/azure/virtual-machines/linux/run-command-managed
   */
  private async writeOutputBlobs(
    vm: VmRecord,
    rc: RunCommandRecord,
    result: ScriptResult,
  ): Promise<string | undefined> {
    let problem: string | undefined;
    const targets: [string, string][] = [];
    const out = rc.spec.extra.outputBlobUri;
    const err = rc.spec.extra.errorBlobUri;
    if (typeof out === "string" && out !== "") targets.push([out, result.stdout]);
    if (typeof err === "string" && err !== "") targets.push([err, result.stderr]);
    for (const [uri, text] of targets) {
      try {
        await writeAppendBlob(uri, text);
        this.deps.counters.runCommands("outputBlobsWritten");
      } catch (e) {
        problem = `failed to upload the output to the blob: ${(e as Error).message}`;
        this.deps.log(
          `vm ${vm.name}: run-command ${rc.name}: output blob upload failed: ${(e as Error).message}`,
        );
      }
    }
    return problem;
  }

  private finishProvisioning(rc: RunCommandRecord, ok: boolean): void {
    if (TERMINAL_PROVISIONING.has(rc.provisioningState) || rc.provisioningState === "Deleting") return;
    rc.provisioningState = ok ? "Succeeded" : "Failed";
    const op = rc.operation;
    if (!op) return;
    if (ok) this.deps.ops.succeed(op);
    else {
      this.deps.ops.fail(
        op,
        "VMExtensionProvisioningError",
        `VM has reported a failure when processing extension 'RunCommandHandlerLinux' (publisher 'Microsoft.CPlat.Core' and type 'RunCommandHandlerLinux'). Error message: '${rc.executionMessage}'.`,
      );
    }
  }

  deleteRunCommand(rg: string, vmName: string, name: string): ArmResponse {
    const vm = this.findVm(rg, vmName);
    const rc = vm.runCommands.get(name.toLowerCase());
    if (!rc) return { status: 204 };
    if (rc.provisioningState === "Deleting") {
      throw new ArmError(409, "Conflict", `Run command '${name}' is being deleted.`);
    }
    const faults = this.deps.faults.settings;
    if (vm.wedged && faults.wedgedRunCommands === "conflict") {
      this.deps.counters.runCommands("blockedByWedge");
      throw this.conflictWedged(vm);
    }
    const op = this.deps.ops.start(
      "Microsoft.Compute",
      this.deps.subscriptionId,
      vm.location,
      `DELETE runCommands/${name}`,
    );
    const response: ArmResponse = {
      status: 202,
      headers: this.deps.ops.headers(op, { location: "monitor" }),
    };
    if (vm.wedged) {
      // The wedged agent never acknowledges: the resource stays Deleting.
      this.deps.counters.runCommands("blockedByWedge");
      rc.provisioningState = "Deleting";
      return response;
    }
    if (faults.runCommandWedges && !TERMINAL_PROVISIONING.has(rc.provisioningState)) {
      this.wedge(
        vm,
        `run-command '${name}' deleted while provisioningState was ${rc.provisioningState} (executionState ${rc.executionState}) (learning #20)`,
      );
    }
    rc.provisioningState = "Deleting";
    rc.run?.cancel();
    for (const c of rc.cancels) c();
    rc.cancels = [];
    if (rc.operation && rc.operation.status === "InProgress") this.deps.ops.cancel(rc.operation);
    this.deps.timers.after(this.deps.profile().runCommandDeleteMs, () => {
      if (vm.runCommands.get(name.toLowerCase()) === rc) vm.runCommands.delete(name.toLowerCase());
      vm.lastDeleteCompletedAt = Date.now();
      this.deps.counters.runCommands("deleted");
      this.deps.ops.succeed(op);
    });
    return response;
  }

  // -------------------------------------------------------------------------------------------
  // Legacy action and power operations

  legacyRunCommand(rg: string, vmName: string, body: JsonObject): ArmResponse {
    const vm = this.findVm(rg, vmName);
    const commandId = asString(body.commandId);
    if (commandId !== "RunShellScript") {
      throw new ArmError(
        400,
        "InvalidParameter",
        `Command id '${commandId ?? ""}' is not available on the sandbox VM; use RunShellScript.`,
        {
          target: "commandId",
        },
      );
    }
    const lines = asArray(body.script) ?? [];
    if (lines.some((l) => typeof l !== "string"))
      throw new ArmError(400, "InvalidParameter", "'script' must be a list of strings.");
    const parameters = readParameters(body.parameters, "parameters");
    if (vm.powerState !== "running") {
      throw new ArmError(
        409,
        "OperationNotAllowed",
        `Operation 'runCommand' is not allowed since VM '${vm.name}' is deallocated.`,
      );
    }
    this.deps.counters.runCommands("legacyInvocations");
    if (vm.wedged) {
      this.deps.counters.runCommands("blockedByWedge");
      throw new ArmError(
        409,
        "Conflict",
        "Run command extension execution is in progress. Please wait for completion before invoking a run command.",
      );
    }
    if (vm.legacy) {
      this.deps.counters.runCommands("legacyConflicts");
      throw new ArmError(
        409,
        "Conflict",
        "Run command extension execution is in progress. Please wait for completion before invoking a run command.",
      );
    }
    const op = this.deps.ops.start(
      "Microsoft.Compute",
      this.deps.subscriptionId,
      vm.location,
      "POST runCommand",
    );
    const legacy: { run?: ScriptRun; op: AsyncOperation } = { op };
    vm.legacy = legacy;
    const profile = this.deps.profile();
    this.deps.timers.after(profile.legacyRunCommandOverheadMs, () => {
      if (vm.legacy !== legacy) return;
      const runDir = join(vm.dir, "runs", `legacy-${++vm.seq}`);
      mkdirSync(runDir, { recursive: true });
      const env: Record<string, string> = {
        PATH: `${vm.binDir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
        HOME: join(vm.dir, "home"),
        USER: "root",
        LANG: "C.UTF-8",
      };
      for (const p of parameters) env[p.name] = p.value;
      this.deps.counters.runCommands("scriptsRun");
      // No server-side timeout, and nothing can cancel it (#17).
      const run = runScript({ dir: runDir, script: (lines as string[]).join("\n"), env });
      legacy.run = run;
      run.done.then((result) => {
        this.deps.timers.after(this.deps.profile().legacyRunCommandOverheadMs, () => {
          if (vm.legacy === legacy) vm.legacy = undefined;
          const message = `Enable succeeded: \n[stdout]\n${lastBytes(result.stdout)}\n[stderr]\n${lastBytes(result.stderr)}\n`;
          this.deps.ops.succeed(op, {
            status: 200,
            body: {
              value: [
                {
                  code: "ProvisioningState/succeeded",
                  level: "Info",
                  displayStatus: "Provisioning succeeded",
                  message,
                },
              ],
            },
          });
        });
      });
    });
    return { status: 202, headers: this.deps.ops.headers(op, { location: "monitor" }) };
  }

  powerAction(rg: string, vmName: string, action: "deallocate" | "start" | "restart"): ArmResponse {
    const vm = this.findVm(rg, vmName);
    const op = this.deps.ops.start(
      "Microsoft.Compute",
      this.deps.subscriptionId,
      vm.location,
      `POST ${action}`,
    );
    const response: ArmResponse = {
      status: 202,
      headers: this.deps.ops.headers(op, { location: "monitor" }),
    };
    const ms = this.deps.profile().vmPowerOpMs;
    if (action === "restart" && vm.wedged) {
      // A restart goes through the guest agent; a wedged one never completes it (#20).
      this.deps.counters.runCommands("blockedByWedge");
      return response;
    }
    this.deps.timers.after(ms, () => {
      if (action === "deallocate") this.deallocate(vm);
      else if (action === "start") this.startVm(vm);
      else {
        this.deallocate(vm);
        this.startVm(vm);
      }
      this.deps.ops.succeed(op);
    });
    return response;
  }

  // -------------------------------------------------------------------------------------------

  /** Forgets run-commands, wedges and recent deletes; VMs stay, running, as old as they were. */
  async reset(): Promise<void> {
    for (const vm of this.vms.values()) {
      this.deallocate(vm);
      vm.runCommands.clear();
      vm.powerState = "running";
      vm.lastDeleteCompletedAt = undefined;
      rmSync(join(vm.dir, "runs"), { recursive: true, force: true });
      mkdirSync(join(vm.dir, "runs"), { recursive: true });
    }
  }

  async close(): Promise<void> {
    for (const vm of this.vms.values()) {
      this.deallocate(vm);
      await vm.docker.close();
    }
    this.vms.clear();
  }
}
