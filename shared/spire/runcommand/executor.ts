/**
 * Runs batches of spire-server CLI calls as managed run-commands on the SPIRE VM, one at a time
 * per VM across every worker: under the VM's lock (./lock.ts) it creates the run-command, polls
 * instanceView.executionState AND provisioningState until both are terminal, reads the output,
 * deletes the run-command (deleting earlier wedges the VM agent, #20) and keeps the lock through
 * the cooldown after the delete (creating soon after a delete wedges a fresh VM, #34). Failures
 * before the script started are retried with exponential backoff; anything after is reported,
 * never blindly repeated.
 *
 * Nothing secret is readable from ARM: every value travels in `protectedParameters` (never
 * returned by GET), and the script seals its output with a one-off public key (./sealing.ts).
 */
import { randomBytes } from "node:crypto";
import { SpireApiError, SpireInputError } from "../errors.js";
import { chunk } from "../paging.js";
import type { SpireLogger, SpireStatusCode } from "../types.js";
import { silentLogger } from "../types.js";
import { validateInteger } from "../validate.js";
import {
  isNotFoundError,
  isTerminalExecution,
  isTerminalProvisioning,
  type RunCommandInputParameter,
  type RunCommandOutputStore,
  type RunCommandsClient,
  type VirtualMachineRunCommand,
} from "./azure.js";
import { type HeldVmLock, inProcessVmLock, type VmLock, VmLockTimeoutError } from "./lock.js";
import { buildScript, type CallOutput, type CliCall, type ExecMode, parseScriptOutput } from "./script.js";
import { newSealKeyPair } from "./sealing.js";

export interface RunCommandClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const realClock: RunCommandClock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export interface RunCommandExecutorOptions {
  client: RunCommandsClient;
  resourceGroup: string;
  vmName: string;
  /** Azure region of the VM (the run-command resource's location). */
  location: string;
  /** Default: `docker exec -i spire-server /opt/spire/bin/spire-server`, default socket. */
  exec?: ExecMode;
  /** Server-side limit for the whole script, `timeoutInSeconds` (default 300). */
  timeoutSeconds?: number;
  /** Limit for each CLI call inside the script (default 60). */
  callTimeoutSeconds?: number;
  /** Between polls of the instance view (default 5 s). */
  pollIntervalMs?: number;
  /** Quiet time between the end of one run-command and the creation of the next (default 10 s). */
  cooldownMs?: number;
  /** Attempts when the script did not start (default 3), spaced by exponential backoff. */
  maxAttempts?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** CLI calls per script (default 10). */
  maxCallsPerScript?: number;
  /** `asyncExecution` of the run-command (default false). */
  asyncExecution?: boolean;
  /** Append blobs for output larger than the instance view keeps (4 KB). */
  outputStore?: RunCommandOutputStore;
  /** Serializes run-commands on the VM (default: within this process only). */
  lock?: VmLock;
  /** Run-command names start with this (default "spire-autopilot"). */
  namePrefix?: string;
  logger?: SpireLogger;
  clock?: RunCommandClock;
  /** Random hex (nonces, names); injectable for tests. */
  randomHex?: (bytes: number) => string;
}

/** The run-command as a whole failed. `safeToRepeat`: the script certainly did not run. */
export class RunCommandError extends SpireApiError {
  override name = "RunCommandError";
  constructor(
    code: SpireStatusCode,
    message: string,
    readonly details: {
      runCommandName: string;
      safeToRepeat: boolean;
      executionState?: string;
      provisioningState?: string;
    },
    options?: { cause?: unknown },
  ) {
    super("RunCommand", code, `${message} (run-command ${details.runCommandName})`, options);
  }
}

const RESOURCE_GROUP = /^[-\w._()]{1,90}$/;
const VM_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const LOCATION = /^[a-z0-9]{1,40}$/;
const CONTAINER = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const ABS_PATH = /^\/[A-Za-z0-9._/-]{1,255}$/;
const NAME_PREFIX = /^[A-Za-z][A-Za-z0-9-]{0,40}$/;

function check(value: string, re: RegExp, field: string): string {
  if (typeof value !== "string" || !re.test(value))
    throw new SpireInputError(field, `invalid value for ${field}`);
  return value;
}

interface ExecutionOutcome {
  output: string;
  executionState: string | undefined;
  provisioningState: string | undefined;
}

export class RunCommandExecutor {
  private readonly client: RunCommandsClient;
  readonly resourceGroup: string;
  readonly vmName: string;
  private readonly location: string;
  private readonly exec: ExecMode;
  private readonly timeoutSeconds: number;
  private readonly callTimeoutSeconds: number;
  private readonly pollIntervalMs: number;
  private readonly cooldownMs: number;
  private readonly maxAttempts: number;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;
  private readonly maxCallsPerScript: number;
  private readonly asyncExecution: boolean;
  private readonly outputStore: RunCommandOutputStore | undefined;
  private readonly lock: VmLock;
  private readonly namePrefix: string;
  private readonly logger: SpireLogger;
  private readonly clock: RunCommandClock;
  private readonly randomHex: (bytes: number) => string;
  private queue: Promise<unknown> = Promise.resolve();
  /** When this hold of the lock last finished a run-command (undefined: none yet in this hold). */
  private lastFinishedAt: number | undefined;

  constructor(o: RunCommandExecutorOptions) {
    this.client = o.client;
    this.resourceGroup = check(o.resourceGroup, RESOURCE_GROUP, "resourceGroup");
    this.vmName = check(o.vmName, VM_NAME, "vmName");
    this.location = check(o.location, LOCATION, "location");
    const exec = o.exec ?? {
      kind: "docker",
      container: "spire-server",
      serverPath: "/opt/spire/bin/spire-server",
    };
    if (exec.kind === "docker") check(exec.container, CONTAINER, "exec.container");
    check(exec.serverPath, ABS_PATH, "exec.serverPath");
    if (exec.socketPath !== undefined) check(exec.socketPath, ABS_PATH, "exec.socketPath");
    this.exec = exec;
    this.timeoutSeconds = validateInteger(o.timeoutSeconds ?? 300, "timeoutSeconds", 30, 5400);
    this.callTimeoutSeconds = validateInteger(o.callTimeoutSeconds ?? 60, "callTimeoutSeconds", 5, 3600);
    this.pollIntervalMs = validateInteger(o.pollIntervalMs ?? 5_000, "pollIntervalMs", 1, 600_000);
    this.cooldownMs = validateInteger(o.cooldownMs ?? 10_000, "cooldownMs", 0, 600_000);
    this.maxAttempts = validateInteger(o.maxAttempts ?? 3, "maxAttempts", 1, 10);
    this.backoffBaseMs = validateInteger(o.backoffBaseMs ?? 10_000, "backoffBaseMs", 0, 600_000);
    this.backoffMaxMs = validateInteger(o.backoffMaxMs ?? 120_000, "backoffMaxMs", 0, 3_600_000);
    this.maxCallsPerScript = validateInteger(o.maxCallsPerScript ?? 10, "maxCallsPerScript", 1, 200);
    this.asyncExecution = o.asyncExecution ?? false;
    this.outputStore = o.outputStore;
    this.lock = o.lock ?? inProcessVmLock();
    this.namePrefix = check(o.namePrefix ?? "spire-autopilot", NAME_PREFIX, "namePrefix");
    this.logger = o.logger ?? silentLogger;
    this.clock = o.clock ?? realClock;
    this.randomHex = o.randomHex ?? ((n) => randomBytes(n).toString("hex"));
  }

  /** Runs the calls in as few scripts as allowed; one output per call, in order. */
  async runCalls(calls: readonly CliCall[]): Promise<CallOutput[]> {
    const outputs: CallOutput[] = [];
    for (const batch of chunk(calls, this.maxCallsPerScript)) {
      const offset = outputs.length;
      const res = await this.underLock(() => this.executeScript(batch));
      outputs.push(...res.map((o) => ({ ...o, index: o.index + offset })));
    }
    return outputs;
  }

  /** Resolves when every run-command and cooldown this executor started is over. */
  async close(): Promise<void> {
    await this.queue;
  }

  /**
   * Runs `fn` holding the VM's lock, then keeps holding it through the cooldown after the last
   * run-command ended (the caller has its result by then). This process's own calls queue here
   * first, so they do not compete with each other for the lease.
   */
  private underLock<T>(fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const run = async () => {
        let held: HeldVmLock;
        try {
          held = await this.lock.acquire();
        } catch (err) {
          const why =
            err instanceof VmLockTimeoutError
              ? err.message
              : `the VM's lock failed: ${(err as Error).message}`;
          reject(
            new RunCommandError(
              "UNAVAILABLE",
              why,
              { runCommandName: "(none)", safeToRepeat: true },
              { cause: err },
            ),
          );
          return;
        }
        this.lastFinishedAt = undefined;
        try {
          resolve(await fn());
        } catch (err) {
          reject(err);
        } finally {
          try {
            if (this.lastFinishedAt !== undefined && held.held) {
              const wait = this.lastFinishedAt + this.cooldownMs - this.clock.now();
              if (wait > 0) await this.clock.sleep(wait);
            }
          } finally {
            await held.release();
          }
        }
      };
      this.queue = this.queue.then(run, run);
    });
  }

  private async executeScript(calls: readonly CliCall[]): Promise<CallOutput[]> {
    let lastError: RunCommandError | undefined;
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      if (attempt > 1) {
        const backoff = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** (attempt - 2));
        const jitter = 0.8 + (Number.parseInt(this.randomHex(2), 16) / 0xffff) * 0.4;
        await this.clock.sleep(Math.round(backoff * jitter));
      }
      await this.waitForCooldown();
      const nonce = this.randomHex(16);
      // A key pair per run-command: its private half lives only in this call's memory.
      const seal = newSealKeyPair();
      const built = buildScript(calls, this.exec, nonce, this.callTimeoutSeconds, {
        sealWith: seal.publicKeyPem,
      });
      const name = `${this.namePrefix}-${new Date(this.clock.now())
        .toISOString()
        .replace(/[-:T.Z]/g, "")
        .slice(0, 14)}-${this.randomHex(4)}`;
      let outcome: ExecutionOutcome;
      try {
        outcome = await this.runScript(name, built.script, built.parameters);
      } catch (err) {
        if (err instanceof RunCommandError && err.details.safeToRepeat && attempt < this.maxAttempts) {
          this.logger.warn("run-command did not start; retrying", {
            runCommand: name,
            attempt,
            code: err.code,
          });
          lastError = err;
          continue;
        }
        throw err;
      }
      const parsed = parseScriptOutput(outcome.output, nonce, seal.privateKey);
      const states = { executionState: outcome.executionState, provisioningState: outcome.provisioningState };
      if (parsed.fatal) {
        throw new RunCommandError("FAILED_PRECONDITION", `the script could not start: ${parsed.fatal}`, {
          runCommandName: name,
          safeToRepeat: false,
          ...states,
        });
      }
      if (!parsed.begun && parsed.calls.size === 0) {
        const err = new RunCommandError(
          outcome.executionState === "TimedOut" ? "DEADLINE_EXCEEDED" : "UNAVAILABLE",
          `the script printed nothing (executionState ${outcome.executionState}, provisioningState ${outcome.provisioningState})`,
          { runCommandName: name, safeToRepeat: outcome.output.trim() === "", ...states },
        );
        if (err.details.safeToRepeat && attempt < this.maxAttempts) {
          this.logger.warn("run-command produced no output; retrying", {
            runCommand: name,
            attempt,
            ...states,
          });
          lastError = err;
          continue;
        }
        throw err;
      }
      const truncated = !parsed.begun;
      return calls.map((_, i) => {
        const out = parsed.calls.get(i);
        if (out) return out;
        const why = truncated
          ? "its output was cut off (the instance view keeps the last 4 KB; configure an output blob or fewer calls per script)"
          : outcome.executionState === "TimedOut"
            ? "the run-command timed out before this call finished"
            : `the script stopped before this call (executionState ${outcome.executionState})`;
        return { index: i, exitCode: -1, stdout: "", stderr: why };
      });
    }
    throw lastError ?? new Error("unreachable");
  }

  private async waitForCooldown(): Promise<void> {
    if (this.lastFinishedAt === undefined) return;
    const wait = this.lastFinishedAt + this.cooldownMs - this.clock.now();
    if (wait > 0) await this.clock.sleep(wait);
  }

  /** Create → poll both state machines to terminal → read output → delete. */
  private async runScript(
    name: string,
    script: string,
    parameters: RunCommandInputParameter[],
  ): Promise<ExecutionOutcome> {
    const outputBlobUri = this.outputStore ? await this.outputStore.outputBlobUriFor(name) : undefined;
    const body: VirtualMachineRunCommand = {
      location: this.location,
      source: { script },
      // Every value is protected: ARM never returns protectedParameters (agent IDs embed tokens).
      protectedParameters: parameters,
      timeoutInSeconds: this.timeoutSeconds,
      asyncExecution: this.asyncExecution,
      treatFailureAsDeploymentFailure: false,
      ...(outputBlobUri ? { outputBlobUri } : {}),
    };
    try {
      this.logger.debug("creating run-command", { runCommand: name, vm: this.vmName });
      try {
        await this.client.createOrUpdate(this.resourceGroup, this.vmName, name, body);
      } catch (err) {
        // Did the PUT take effect anyway? If it exists it may run: follow it rather than repeat it.
        let exists: boolean;
        try {
          await this.client.getByVirtualMachine(this.resourceGroup, this.vmName, name, {
            expand: "instanceView",
          });
          exists = true;
        } catch (getErr) {
          if (!isNotFoundError(getErr)) {
            throw new RunCommandError(
              "UNAVAILABLE",
              `create failed and its state is unknown: ${(err as Error).message}`,
              {
                runCommandName: name,
                safeToRepeat: false,
              },
            );
          }
          exists = false;
        }
        if (!exists) {
          throw new RunCommandError(
            "UNAVAILABLE",
            `create failed: ${(err as Error).message}`,
            { runCommandName: name, safeToRepeat: true },
            { cause: err },
          );
        }
        this.logger.warn("run-command create reported an error but the run-command exists; following it", {
          runCommand: name,
        });
      }

      const view = await this.pollToTerminal(name);
      this.logger.debug("run-command finished", {
        runCommand: name,
        executionState: view.instanceView?.executionState,
        provisioningState: view.provisioningState,
      });
      const executionState = view.instanceView?.executionState;
      const provisioningState = view.provisioningState;
      let output = view.instanceView?.output ?? "";
      if (this.outputStore && outputBlobUri) {
        try {
          output = await this.outputStore.read(outputBlobUri);
        } catch (err) {
          this.logger.warn("could not read run-command output blob; using the instance view", {
            runCommand: name,
            error: (err as Error).message,
          });
        }
      }
      await this.deleteQuietly(name);
      this.logger.debug("run-command deleted", { runCommand: name });
      if (this.outputStore && outputBlobUri)
        await this.outputStore.remove?.(outputBlobUri).catch(() => undefined);
      return { output, executionState, provisioningState };
    } finally {
      this.lastFinishedAt = this.clock.now();
    }
  }

  private async pollToTerminal(name: string): Promise<VirtualMachineRunCommand> {
    // The script's own limit, plus room for the VM agent to pick it up and report back.
    const deadline = this.clock.now() + (this.timeoutSeconds + 180) * 1000;
    let last: VirtualMachineRunCommand | undefined;
    // The first polls come sooner (1 s, 2 s, 4 s, then every pollIntervalMs): a short script is
    // done within seconds, and a fixed first wait was most of a short run-command's time. A long
    // one costs three GETs more.
    let wait = Math.min(1_000, this.pollIntervalMs);
    for (;;) {
      try {
        last = await this.client.getByVirtualMachine(this.resourceGroup, this.vmName, name, {
          expand: "instanceView",
        });
        const exec = last.instanceView?.executionState;
        const prov = last.provisioningState;
        if (isTerminalExecution(exec) && isTerminalProvisioning(prov)) return last;
        // ARM gave up before the guest ever started the script: nothing more will happen.
        if (
          (prov === "Failed" || prov === "Canceled") &&
          (exec === undefined || exec === "Unknown" || exec === "Pending")
        ) {
          return last;
        }
      } catch (err) {
        if (isNotFoundError(err)) {
          throw new RunCommandError("ABORTED", "the run-command disappeared while running", {
            runCommandName: name,
            safeToRepeat: false,
          });
        }
        this.logger.debug("polling run-command failed; polling again", {
          runCommand: name,
          error: (err as Error).message,
        });
      }
      if (this.clock.now() >= deadline) {
        // Not deleted on purpose: deleting a run-command that is still provisioning wedges the VM agent.
        this.logger.error("run-command never reached a terminal state; left in place", {
          runCommand: name,
          executionState: last?.instanceView?.executionState,
          provisioningState: last?.provisioningState,
        });
        throw new RunCommandError(
          "DEADLINE_EXCEEDED",
          "the run-command never reached a terminal state; it was left in place",
          {
            runCommandName: name,
            safeToRepeat: false,
            executionState: last?.instanceView?.executionState,
            provisioningState: last?.provisioningState,
          },
        );
      }
      await this.clock.sleep(wait);
      wait = Math.min(wait * 2, this.pollIntervalMs);
    }
  }

  private async deleteQuietly(name: string): Promise<void> {
    try {
      await this.client.delete(this.resourceGroup, this.vmName, name);
    } catch (err) {
      if (isNotFoundError(err)) return;
      this.logger.warn("could not delete run-command; it is left over", {
        runCommand: name,
        error: (err as Error).message,
      });
    }
  }
}
