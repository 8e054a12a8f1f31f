/**
 * A RunCommandsClient that runs the script with bash on this machine, with the parameters as
 * environment variables, the way a Linux managed run-command does: lets tests drive the
 * run-command adapter against a real spire-server (direct exec mode) or a fake `docker` on PATH.
 * It models both state machines minimally: executionState Pending → Running → Succeeded/Failed/
 * TimedOut, and provisioningState Creating → Succeeded once the script ended (configurable lag).
 */
import { spawn } from "node:child_process";
import type { RunCommandsClient, VirtualMachineRunCommand } from "../../shared/spire/runcommand/azure.js";

interface Running {
  body: VirtualMachineRunCommand;
  executionState: string;
  provisioningState: string;
  exitCode?: number;
  stdout: string;
  stderr: string;
  finishedAt?: number;
  done: Promise<void>;
}

export interface LocalRunCommandsOptions {
  /** Extra PATH entries in front (e.g. a folder with a fake `docker`). */
  pathPrepend?: string[];
  /** Instance view keeps the last N bytes of each stream (Azure: 4096). */
  outputLimitBytes?: number;
  /** provisioningState stays "Updating" this long after the script ended (learning #20). */
  provisioningLagMs?: number;
}

function lastBytes(text: string, limit: number): string {
  const buf = Buffer.from(text, "utf8");
  return buf.length <= limit ? text : buf.subarray(buf.length - limit).toString("utf8");
}

export class LocalRunCommands implements RunCommandsClient {
  readonly created: { name: string; body: VirtualMachineRunCommand }[] = [];
  readonly deleted: string[] = [];
  private readonly items = new Map<string, Running>();

  constructor(private readonly options: LocalRunCommandsOptions = {}) {}

  async createOrUpdate(
    _rg: string,
    _vm: string,
    name: string,
    body: VirtualMachineRunCommand,
  ): Promise<unknown> {
    this.created.push({ name, body });
    const env: NodeJS.ProcessEnv = {
      PATH: [...(this.options.pathPrepend ?? []), process.env.PATH ?? "/usr/bin:/bin"].join(":"),
      HOME: process.env.HOME,
    };
    for (const p of [...(body.parameters ?? []), ...(body.protectedParameters ?? [])]) env[p.name] = p.value;
    const item: Running = {
      body,
      executionState: "Running",
      provisioningState: "Creating",
      stdout: "",
      stderr: "",
      done: Promise.resolve(),
    };
    item.done = new Promise<void>((resolve) => {
      const child = spawn("bash", ["-c", body.source?.script ?? ""], {
        env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      child.stdout.on("data", (b: Buffer) => {
        item.stdout += b.toString("utf8");
      });
      child.stderr.on("data", (b: Buffer) => {
        item.stderr += b.toString("utf8");
      });
      const timer = setTimeout(
        () => {
          item.executionState = "TimedOut";
          child.kill("SIGKILL");
        },
        (body.timeoutInSeconds ?? 90) * 1000,
      );
      child.once("close", (code) => {
        clearTimeout(timer);
        item.exitCode = code ?? -1;
        if (item.executionState !== "TimedOut") item.executionState = code === 0 ? "Succeeded" : "Failed";
        item.finishedAt = Date.now();
        resolve();
      });
    });
    this.items.set(name, item);
    return {};
  }

  async getByVirtualMachine(_rg: string, _vm: string, name: string): Promise<VirtualMachineRunCommand> {
    const item = this.items.get(name);
    if (!item)
      throw Object.assign(new Error(`run-command ${name} not found`), {
        statusCode: 404,
        code: "ResourceNotFound",
      });
    const limit = this.options.outputLimitBytes ?? 4096;
    if (item.finishedAt !== undefined) {
      item.provisioningState =
        Date.now() - item.finishedAt >= (this.options.provisioningLagMs ?? 0) ? "Succeeded" : "Updating";
    }
    // As Azure does: protectedParameters are never returned.
    const { protectedParameters: _hidden, ...visible } = item.body;
    return {
      ...visible,
      provisioningState: item.provisioningState,
      instanceView: {
        executionState: item.executionState,
        exitCode: item.exitCode,
        output: lastBytes(item.stdout, limit),
        error: lastBytes(item.stderr, limit),
      },
    };
  }

  async delete(_rg: string, _vm: string, name: string): Promise<unknown> {
    const item = this.items.get(name);
    if (!item) throw Object.assign(new Error(`run-command ${name} not found`), { statusCode: 404 });
    if (item.provisioningState !== "Succeeded" || item.finishedAt === undefined) {
      throw new Error(
        `deleted run-command ${name} while ${item.provisioningState}/${item.executionState}: this wedges a VM`,
      );
    }
    this.deleted.push(name);
    this.items.delete(name);
    return {};
  }

  /** Waits for every script started so far (test cleanup). */
  async settle(): Promise<void> {
    await Promise.all([...this.items.values()].map((i) => i.done));
  }
}
