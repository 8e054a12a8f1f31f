/**
 * SpireServer through managed run-commands on the SPIRE VM: the bootstrap and fallback path.
 *
 * Each batch of calls becomes one script (./script.ts). One run-command at a time per adapter,
 * with a cooldown between them; the adapter polls instanceView.executionState AND
 * provisioningState until both are terminal before it reads the output and deletes the
 * run-command (deleting earlier wedges the VM agent); failures before the script started are
 * retried with exponential backoff, anything after is reported, never blindly repeated.
 */
import { randomBytes } from "node:crypto";
import { registerSecret } from "../../logging.js";
import { joinTokenAgentId } from "../../spiffe/index.js";
import {
  SpireApiError,
  SpireInputError,
  SpireUnsupportedError,
  STATUS_CODES,
  statusCodeName,
} from "../errors.js";
import { chunk } from "../paging.js";
import type {
  Agent,
  AgentFilter,
  CreateEntryResult,
  DeleteEntryResult,
  Entry,
  EntryFilter,
  EntrySpec,
  EntryUpdate,
  JoinToken,
  ServerHealth,
  SpireLogger,
  SpireServer,
  SpireStatusCode,
  TrustBundle,
  UpdateEntryResult,
  X509Svid,
} from "../types.js";
import { silentLogger } from "../types.js";
import {
  sameSelectors,
  validateAgentFilter,
  validateEntryId,
  validateEntrySpec,
  validateEntryUpdate,
  validateInteger,
  validateSpiffeIdInput,
  validateTrustDomainInput,
  validateTtlSeconds,
} from "../validate.js";
import {
  agentFromWire,
  BatchDeleteEntryResponse,
  BatchEntryResponse,
  bundleFromWire,
  deleteResultFromWire,
  entryFromWire,
  failureFromStatus,
  ListAgentsResponse,
  ListEntriesResponse,
  updateResultFromWire,
  WireBundle,
  WireJoinToken,
} from "../wire.js";
import {
  isNotFoundError,
  isTerminalExecution,
  isTerminalProvisioning,
  type RunCommandOutputStore,
  type RunCommandsClient,
  type VirtualMachineRunCommand,
} from "./azure.js";
import { buildScript, type CallOutput, type CliCall, type ExecMode, parseScriptOutput } from "./script.js";

export interface RunCommandClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const realClock: RunCommandClock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export interface RunCommandSpireServerOptions {
  client: RunCommandsClient;
  resourceGroup: string;
  vmName: string;
  /** Azure region of the VM (the run-command resource's location). */
  location: string;
  trustDomain: string;
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
  /** CLI calls per script (default 10: each call's output must fit the 4 KB instance view). */
  maxCallsPerScript?: number;
  createBatchSize?: number;
  updateBatchSize?: number;
  deleteBatchSize?: number;
  /** `asyncExecution` of the run-command (default false). */
  asyncExecution?: boolean;
  /** Append blobs for output larger than the instance view keeps. */
  outputStore?: RunCommandOutputStore;
  /** Run-command names start with this (default "spire-autopilot"). */
  namePrefix?: string;
  logger?: SpireLogger;
  registerSecret?: (value: string) => void;
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

/** Go's codes.Code names (NotFound) → gRPC status names (NOT_FOUND). */
function goCodeToStatus(name: string): SpireStatusCode {
  const snake = name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
  if (snake === "CANCELED") return "CANCELLED";
  return (STATUS_CODES as readonly string[]).includes(snake) ? (snake as SpireStatusCode) : "UNKNOWN";
}

/** What a failed CLI call means, from its exit code and stderr. */
export function cliFailure(out: CallOutput): { code: SpireStatusCode; message: string } {
  const text = `${out.stderr}\n${out.stdout}`.trim();
  const firstLine = (text.split("\n").find((l) => l.trim() !== "") ?? "").slice(0, 300);
  if (out.exitCode === 124) return { code: "DEADLINE_EXCEEDED", message: "the CLI call timed out on the VM" };
  const rpc = /code = (\w+) desc = (.*)/.exec(text);
  if (rpc) return { code: goCodeToStatus(rpc[1] as string), message: (rpc[2] as string).slice(0, 300) };
  if (
    /Error response from daemon|No such container|is not running|Cannot connect to the Docker daemon/i.test(
      text,
    )
  ) {
    return { code: "UNAVAILABLE", message: firstLine };
  }
  if (/connection refused|no such file or directory|connection error|transport: /i.test(text)) {
    return { code: "UNAVAILABLE", message: firstLine };
  }
  return { code: "UNKNOWN", message: firstLine || `exit code ${out.exitCode}` };
}

function parseJson(out: CallOutput, operation: string): unknown {
  try {
    return JSON.parse(out.stdout);
  } catch {
    throw new SpireApiError(operation, "INTERNAL", "the CLI did not print JSON");
  }
}

interface ExecutionOutcome {
  output: string;
  executionState: string | undefined;
  provisioningState: string | undefined;
}

export class RunCommandSpireServer implements SpireServer {
  private readonly client: RunCommandsClient;
  private readonly resourceGroup: string;
  private readonly vmName: string;
  private readonly location: string;
  private readonly trustDomain: string;
  private readonly exec: ExecMode;
  private readonly timeoutSeconds: number;
  private readonly callTimeoutSeconds: number;
  private readonly pollIntervalMs: number;
  private readonly cooldownMs: number;
  private readonly maxAttempts: number;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;
  private readonly maxCallsPerScript: number;
  private readonly createBatchSize: number;
  private readonly updateBatchSize: number;
  private readonly deleteBatchSize: number;
  private readonly asyncExecution: boolean;
  private readonly outputStore: RunCommandOutputStore | undefined;
  private readonly namePrefix: string;
  private readonly logger: SpireLogger;
  private readonly registerSecret: (value: string) => void;
  private readonly clock: RunCommandClock;
  private readonly randomHex: (bytes: number) => string;
  private queue: Promise<unknown> = Promise.resolve();
  private lastFinishedAt: number | undefined;

  constructor(o: RunCommandSpireServerOptions) {
    this.client = o.client;
    this.resourceGroup = check(o.resourceGroup, RESOURCE_GROUP, "resourceGroup");
    this.vmName = check(o.vmName, VM_NAME, "vmName");
    this.location = check(o.location, LOCATION, "location");
    this.trustDomain = validateTrustDomainInput(o.trustDomain);
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
    this.createBatchSize = validateInteger(o.createBatchSize ?? 50, "createBatchSize", 1, 500);
    this.updateBatchSize = validateInteger(o.updateBatchSize ?? 50, "updateBatchSize", 1, 500);
    this.deleteBatchSize = validateInteger(o.deleteBatchSize ?? 200, "deleteBatchSize", 1, 1000);
    this.asyncExecution = o.asyncExecution ?? false;
    this.outputStore = o.outputStore;
    this.namePrefix = check(o.namePrefix ?? "spire-autopilot", NAME_PREFIX, "namePrefix");
    this.logger = o.logger ?? silentLogger;
    this.registerSecret = o.registerSecret ?? registerSecret;
    this.clock = o.clock ?? realClock;
    this.randomHex = o.randomHex ?? ((n) => randomBytes(n).toString("hex"));
  }

  // -------------------------------------------------------------------------------------------
  // Running scripts

  /** Runs the calls in as few scripts as allowed; one output per call, in order. */
  async runCalls(calls: readonly CliCall[]): Promise<CallOutput[]> {
    const outputs: CallOutput[] = [];
    for (const batch of chunk(calls, this.maxCallsPerScript)) {
      const offset = outputs.length;
      const res = await this.exclusive(() => this.executeScript(batch));
      outputs.push(...res.map((o) => ({ ...o, index: o.index + offset })));
    }
    return outputs;
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
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
      const built = buildScript(calls, this.exec, nonce, this.callTimeoutSeconds);
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
      const parsed = parseScriptOutput(outcome.output, nonce);
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
    parameters: { name: string; value: string }[],
  ): Promise<ExecutionOutcome> {
    const outputBlobUri = this.outputStore?.outputBlobUriFor(name);
    const body: VirtualMachineRunCommand = {
      location: this.location,
      source: { script },
      parameters,
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
      return { output, executionState, provisioningState };
    } finally {
      this.lastFinishedAt = this.clock.now();
    }
  }

  private async pollToTerminal(name: string): Promise<VirtualMachineRunCommand> {
    // The script's own limit, plus room for the VM agent to pick it up and report back.
    const deadline = this.clock.now() + (this.timeoutSeconds + 180) * 1000;
    let last: VirtualMachineRunCommand | undefined;
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
      await this.clock.sleep(this.pollIntervalMs);
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

  /** One call in its own script, as a single result (throws its failure as SpireApiError). */
  private async single(call: CliCall, operation: string): Promise<CallOutput> {
    const [out] = await this.runCalls([call]);
    if (!out) throw new SpireApiError(operation, "INTERNAL", "no output");
    if (out.exitCode !== 0) {
      const f = cliFailure(out);
      throw new SpireApiError(operation, f.code, f.message);
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // SpireServer

  async createJoinTokens(aliases: readonly string[], ttlSeconds: number): Promise<JoinToken[]> {
    const ttl = validateTtlSeconds(ttlSeconds, "ttlSeconds", 1);
    const ids = aliases.map((a, i) => validateSpiffeIdInput(a, `aliases[${i}]`, this.trustDomain));
    if (ids.length === 0) return [];
    const outputs = await this.runCalls(ids.map((alias) => ({ op: "token_generate" as const, alias, ttl })));
    const tokens: JoinToken[] = [];
    const failures: string[] = [];
    outputs.forEach((out, i) => {
      if (out.exitCode !== 0) {
        const f = cliFailure(out);
        failures.push(`${ids[i]}: ${f.code} ${f.message}`);
        return;
      }
      const parsed = WireJoinToken.safeParse(parseJson(out, "token generate"));
      if (!parsed.success) {
        failures.push(`${ids[i]}: unexpected output`);
        return;
      }
      this.registerSecret(parsed.data.value);
      tokens.push({
        value: parsed.data.value,
        expiresAt: new Date(parsed.data.expires_at * 1000),
        alias: ids[i] as string,
        agentId: joinTokenAgentId(this.trustDomain, parsed.data.value),
      });
    });
    if (failures.length > 0) {
      // Tokens created alongside are not returned: unused, they expire after the TTL.
      throw new SpireApiError(
        "token generate",
        "UNKNOWN",
        `${failures.length} of ${ids.length} failed: ${failures.join("; ")}`,
      );
    }
    return tokens;
  }

  async listAgents(filter?: AgentFilter): Promise<Agent[]> {
    const f = validateAgentFilter(filter);
    const out = await this.single(
      {
        op: "agent_list",
        attestationType: f.byAttestationType,
        banned: f.byBanned,
        canReattest: f.byCanReattest,
      },
      "agent list",
    );
    const parsed = ListAgentsResponse.safeParse(parseJson(out, "agent list"));
    if (!parsed.success) throw new SpireApiError("agent list", "INTERNAL", "unexpected output");
    return parsed.data.agents.map(agentFromWire);
  }

  async deleteAgent(id: string): Promise<{ deleted: boolean }> {
    const agentId = validateSpiffeIdInput(id, "id", this.trustDomain);
    try {
      await this.single({ op: "agent_evict", id: agentId }, "agent evict");
      return { deleted: true };
    } catch (err) {
      if (err instanceof SpireApiError && err.code === "NOT_FOUND") return { deleted: false };
      throw err;
    }
  }

  async banAgent(id: string): Promise<void> {
    const agentId = validateSpiffeIdInput(id, "id", this.trustDomain);
    await this.single({ op: "agent_ban", id: agentId }, "agent ban");
  }

  async listEntries(filter: EntryFilter): Promise<Entry[]> {
    const parentId =
      filter.byParentId === undefined
        ? undefined
        : validateSpiffeIdInput(filter.byParentId, "filter.byParentId", this.trustDomain);
    const spiffeId =
      filter.bySpiffeId === undefined
        ? undefined
        : validateSpiffeIdInput(filter.bySpiffeId, "filter.bySpiffeId", this.trustDomain);
    const out = await this.single({ op: "entry_show", parentId, spiffeId }, "entry show");
    return this.parseEntries(out);
  }

  private parseEntries(out: CallOutput): Entry[] {
    const parsed = ListEntriesResponse.safeParse(parseJson(out, "entry show"));
    if (!parsed.success) throw new SpireApiError("entry show", "INTERNAL", "unexpected output");
    return parsed.data.entries.map(entryFromWire);
  }

  async createEntries(specs: readonly EntrySpec[]): Promise<CreateEntryResult[]> {
    const valid = specs.map((s, i) => validateEntrySpec(s, `specs[${i}]`, this.trustDomain));
    const batches = chunk(valid, this.createBatchSize);
    const outputs = await this.runCalls(
      batches.map((b) => ({ op: "entry_create" as const, entriesJson: entriesJson(b) })),
    );
    const results: CreateEntryResult[] = [];
    const existing: number[] = [];
    batches.forEach((batch, b) => {
      const out = outputs[b] as CallOutput;
      const results0 = out.exitCode === 0 ? BatchEntryResponse.safeParse(safeJson(out.stdout)) : undefined;
      if (!results0?.success || results0.data.results.length !== batch.length) {
        const f =
          out.exitCode === 0 ? { code: "INTERNAL" as const, message: "unexpected output" } : cliFailure(out);
        for (const spec of batch) results.push({ status: "failed", spec, ...f });
        return;
      }
      results0.data.results.forEach((r, i) => {
        const spec = batch[i] as EntrySpec;
        const code = r.status?.code ?? 0;
        if (code === 0 && r.entry?.id) results.push({ status: "created", entry: entryFromWire(r.entry) });
        else {
          // The CLI replaces an ALREADY_EXISTS result's entry with the request: look the entry up below.
          if (statusCodeName(code) === "ALREADY_EXISTS") existing.push(results.length);
          results.push({ status: "failed", spec, ...failureFromStatus(r.status) });
        }
      });
    });
    if (existing.length > 0) await this.resolveExisting(results, existing);
    return results;
  }

  /** Replaces ALREADY_EXISTS placeholders with the existing entries (one more script). */
  private async resolveExisting(results: CreateEntryResult[], positions: number[]): Promise<void> {
    const specs = positions.map((p) => (results[p] as { spec: EntrySpec }).spec);
    const outputs = await this.runCalls(
      specs.map((s) => ({ op: "entry_show" as const, spiffeId: s.spiffeId, parentId: s.parentId })),
    );
    positions.forEach((p, i) => {
      const out = outputs[i] as CallOutput;
      const spec = specs[i] as EntrySpec;
      if (out.exitCode !== 0) return;
      const found = this.parseEntries(out).find((e) => sameSelectors(e.selectors, spec.selectors));
      if (found) results[p] = { status: "exists", entry: found };
    });
  }

  async updateEntries(updates: readonly EntryUpdate[]): Promise<UpdateEntryResult[]> {
    const valid = updates.map((u, i) => validateEntryUpdate(u, `updates[${i}]`, this.trustDomain));
    const batches = chunk(valid, this.updateBatchSize);
    const outputs = await this.runCalls(
      batches.map((b) => ({ op: "entry_update" as const, entriesJson: entriesJson(b) })),
    );
    const results: UpdateEntryResult[] = [];
    batches.forEach((batch, b) => {
      const out = outputs[b] as CallOutput;
      const parsed = out.exitCode === 0 ? BatchEntryResponse.safeParse(safeJson(out.stdout)) : undefined;
      if (!parsed?.success || parsed.data.results.length !== batch.length) {
        const f =
          out.exitCode === 0 ? { code: "INTERNAL" as const, message: "unexpected output" } : cliFailure(out);
        for (const u of batch) results.push({ status: "failed", id: u.id, ...f });
        return;
      }
      parsed.data.results.forEach((r, i) => {
        results.push(updateResultFromWire(r, (batch[i] as EntryUpdate).id));
      });
    });
    return results;
  }

  async deleteEntries(ids: readonly string[]): Promise<DeleteEntryResult[]> {
    const valid = ids.map((id, i) => validateEntryId(id, `ids[${i}]`));
    const batches = chunk(valid, this.deleteBatchSize);
    const outputs = await this.runCalls(
      batches.map((b) => ({ op: "entry_delete" as const, idsJson: JSON.stringify({ ids: b }) })),
    );
    const results: DeleteEntryResult[] = [];
    batches.forEach((batch, b) => {
      const out = outputs[b] as CallOutput;
      const parsed =
        out.exitCode === 0 ? BatchDeleteEntryResponse.safeParse(safeJson(out.stdout)) : undefined;
      if (!parsed?.success || parsed.data.results.length !== batch.length) {
        const f =
          out.exitCode === 0 ? { code: "INTERNAL" as const, message: "unexpected output" } : cliFailure(out);
        for (const id of batch) results.push({ status: "failed", id, ...f });
        return;
      }
      parsed.data.results.forEach((r, i) => {
        results.push(deleteResultFromWire(r, batch[i] as string));
      });
    });
    return results;
  }

  async getBundle(): Promise<TrustBundle> {
    const out = await this.single({ op: "bundle_show" }, "bundle show");
    const parsed = WireBundle.safeParse(parseJson(out, "bundle show"));
    if (!parsed.success) throw new SpireApiError("bundle show", "INTERNAL", "unexpected output");
    return bundleFromWire(parsed.data);
  }

  async mintX509Svid(): Promise<X509Svid> {
    // The CLI cannot sign a caller's CSR (`x509 mint` makes its own key and would put it in the
    // run-command output); mint over the Server API instead.
    throw new SpireUnsupportedError(
      "mintX509Svid is not available through run-commands; use the gRPC adapter",
    );
  }

  async health(): Promise<ServerHealth> {
    try {
      const [out] = await this.runCalls([{ op: "healthcheck" }]);
      if (!out) return { healthy: false, detail: "no output" };
      return out.exitCode === 0
        ? { healthy: true, detail: out.stdout.trim() || "healthcheck passed" }
        : { healthy: false, detail: cliFailure(out).message };
    } catch (err) {
      return { healthy: false, detail: err instanceof Error ? err.message : String(err) };
    }
  }

  async close(): Promise<void> {
    await this.queue;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The `{"entries":[...]}` document `entry create|update -data` reads (spire common.RegistrationEntry JSON). */
export function entriesJson(specs: readonly (EntrySpec & { id?: string })[]): string {
  return JSON.stringify({
    entries: specs.map((s) => ({
      ...(s.id ? { entry_id: s.id } : {}),
      spiffe_id: s.spiffeId,
      parent_id: s.parentId,
      selectors: s.selectors.map(({ type, value }) => ({ type, value })),
      x509_svid_ttl: s.x509SvidTtl ?? 0,
      jwt_svid_ttl: s.jwtSvidTtl ?? 0,
      admin: s.admin ?? false,
      downstream: s.downstream ?? false,
      dns_names: s.dnsNames ?? [],
      hint: s.hint ?? "",
    })),
  });
}

export function createRunCommandSpireServer(options: RunCommandSpireServerOptions): SpireServer {
  return new RunCommandSpireServer(options);
}
