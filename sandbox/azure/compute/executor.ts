/**
 * Runs a run-command script for real: bash in the VM's sandbox folder, a clean environment
 * (PATH with the docker shim first, the parameters as variables, nothing from the simulator's
 * own environment), its own process group so a timeout or cancel kills everything it started.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export interface ScriptResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Killed by cancel() (run-command deleted, VM deallocated). */
  canceled: boolean;
}

export interface ScriptRun {
  readonly pid: number | undefined;
  readonly done: Promise<ScriptResult>;
  cancel(): void;
}

export interface ScriptOptions {
  /** Working folder; the script file is written here. */
  dir: string;
  script: string;
  env: Record<string, string>;
  /** 0 or undefined: no timeout (the legacy API has none). */
  timeoutMs?: number;
  /** Bytes of each stream kept (the tail). */
  keepBytes?: number;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function isValidEnvName(name: string): boolean {
  return ENV_NAME.test(name);
}

class Tail {
  private buf = Buffer.alloc(0);
  constructor(private readonly keep: number) {}
  push(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    if (this.buf.length > this.keep) this.buf = this.buf.subarray(this.buf.length - this.keep);
  }
  text(): string {
    return this.buf.toString("utf8");
  }
}

/** The last `bytes` bytes of a text, as run-command output keeps (4 KB). */
export function lastBytes(text: string, bytes = 4096): string {
  const buf = Buffer.from(text, "utf8");
  return buf.length <= bytes ? text : buf.subarray(buf.length - bytes).toString("utf8");
}

/** Process groups of scripts still running: killed if this process exits first, however it exits. */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const pid of liveGroups) killGroup(pid, "SIGKILL");
  });
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is gone
  }
}

export function runScript(opts: ScriptOptions): ScriptRun {
  for (const name of Object.keys(opts.env)) {
    if (!isValidEnvName(name)) throw new Error(`invalid environment variable name: ${name}`);
  }
  const scriptFile = join(opts.dir, "script.sh");
  writeFileSync(scriptFile, opts.script, { mode: 0o700 });
  const child = spawn("bash", [scriptFile], {
    cwd: opts.dir,
    env: opts.env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  installExitHook();
  if (child.pid !== undefined) liveGroups.add(child.pid);
  const keep = opts.keepBytes ?? 64 * 1024;
  const out = new Tail(keep);
  const err = new Tail(keep);
  child.stdout?.on("data", (c: Buffer) => out.push(c));
  child.stderr?.on("data", (c: Buffer) => err.push(c));
  let timedOut = false;
  let canceled = false;
  let timer: NodeJS.Timeout | undefined;
  if (opts.timeoutMs !== undefined && opts.timeoutMs > 0) {
    timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, "SIGKILL");
    }, opts.timeoutMs);
  }
  const done = new Promise<ScriptResult>((resolve) => {
    let finished = false;
    const finish = (exitCode: number | null, signal: NodeJS.Signals | null) => {
      if (finished) return;
      finished = true;
      if (timer) clearTimeout(timer);
      // Whatever the script left running in the background goes with it.
      killGroup(child.pid, "SIGKILL");
      if (child.pid !== undefined) liveGroups.delete(child.pid);
      resolve({ exitCode, signal, stdout: out.text(), stderr: err.text(), timedOut, canceled });
    };
    child.once("error", (e) => {
      err.push(Buffer.from(`failed to run bash: ${e.message}\n`));
      finish(127, null);
    });
    child.once("exit", (code, signal) => {
      // Let the pipes drain briefly; a background child holding them open must not block us.
      const grace = setTimeout(() => finish(code, signal), 200);
      child.once("close", () => {
        clearTimeout(grace);
        finish(code, signal);
      });
    });
  });
  return {
    pid: child.pid,
    done,
    cancel() {
      canceled = true;
      killGroup(child.pid, "SIGKILL");
    },
  };
}
