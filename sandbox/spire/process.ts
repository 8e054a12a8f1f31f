/**
 * Child processes and folders owned by the sandbox: every one is registered so it is killed or
 * removed when this process exits, whichever way it exits (normal end, uncaught error, SIGINT,
 * SIGTERM), and a log file tail that tests and scenarios can wait on.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, rmSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";

// ---------------------------------------------------------------------------------------------
// Cleanup registry

const liveChildren = new Set<ChildProcess>();
const ownedDirs = new Set<string>();
let hooksInstalled = false;

function cleanupSync(): void {
  for (const child of liveChildren) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  liveChildren.clear();
  for (const dir of ownedDirs) rmSync(dir, { recursive: true, force: true });
  ownedDirs.clear();
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", cleanupSync);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    // Only when nobody else handles the signal: then the default (exit) would skip "exit" hooks.
    if (process.listenerCount(signal) > 0) continue;
    const onSignal = () => {
      cleanupSync();
      process.removeListener(signal, onSignal);
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

/**
 * A new empty folder with a short path (unix socket paths are limited to ~107 bytes), removed
 * on `removeOwnedDir` or when this process exits.
 */
export function makeShortTempDir(prefix: string): string {
  installHooks();
  const base = existsSync("/tmp") ? "/tmp" : os.tmpdir();
  const dir = mkdtempSync(path.join(base, prefix));
  ownedDirs.add(dir);
  return dir;
}

export async function removeOwnedDir(dir: string): Promise<void> {
  ownedDirs.delete(dir);
  await fs.rm(dir, { recursive: true, force: true });
}

/** Unix socket paths longer than this fail to bind on Linux (108-byte sun_path incl. NUL) and macOS (104). */
export const MAX_SOCKET_PATH_BYTES = 103;

export function assertSocketPath(socketPath: string): string {
  if (!path.isAbsolute(socketPath)) throw new Error(`socket path must be absolute: ${socketPath}`);
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
    throw new Error(
      `socket path is ${Buffer.byteLength(socketPath)} bytes, over the ${MAX_SOCKET_PATH_BYTES}-byte unix socket limit: ${socketPath}`,
    );
  }
  return socketPath;
}

// ---------------------------------------------------------------------------------------------
// Processes

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class ManagedProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<ProcessExit>;
  private exitInfo: ProcessExit | undefined;

  constructor(
    readonly name: string,
    command: string,
    args: readonly string[],
    opts: { cwd?: string; env?: NodeJS.ProcessEnv; consoleFile: string },
  ) {
    installHooks();
    // stdout/stderr go straight to a file: no pipe that could fill up and block the child.
    const fd = openSync(opts.consoleFile, "a");
    try {
      this.child = spawn(command, [...args], {
        cwd: opts.cwd,
        env: opts.env ?? process.env,
        stdio: ["ignore", fd, fd],
      });
    } finally {
      closeSync(fd);
    }
    liveChildren.add(this.child);
    this.exited = new Promise<ProcessExit>((resolve) => {
      const done = (info: ProcessExit) => {
        if (this.exitInfo) return;
        this.exitInfo = info;
        liveChildren.delete(this.child);
        resolve(info);
      };
      this.child.once("exit", (code, signal) => done({ code, signal }));
      this.child.once("error", () => done({ code: 127, signal: null }));
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  get exitStatus(): ProcessExit | undefined {
    return this.exitInfo;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  /** SIGSTOP: the process freezes (a hung server or agent), its sockets stay open. */
  pause(): void {
    this.signal("SIGSTOP");
  }

  /** SIGCONT after pause(). */
  resume(): void {
    this.signal("SIGCONT");
  }

  kill(sig: NodeJS.Signals = "SIGKILL"): Promise<ProcessExit> {
    this.signal(sig);
    return this.exited;
  }

  /** SIGTERM (after SIGCONT, in case it is paused), then SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 5_000): Promise<ProcessExit> {
    if (!this.running) return this.exitInfo as ProcessExit;
    this.signal("SIGCONT");
    this.signal("SIGTERM");
    const timer = new Promise<"timeout">((resolve) => {
      const t = setTimeout(() => resolve("timeout"), graceMs);
      t.unref();
    });
    if ((await Promise.race([this.exited, timer])) === "timeout") this.signal("SIGKILL");
    return this.exited;
  }
}

// ---------------------------------------------------------------------------------------------
// Log tail

export interface LogLine {
  /** Position in the file's lines (0-based, stable even after old lines are dropped), for `since`. */
  index: number;
  raw: string;
  /** Parsed when the line is a JSON object (SPIRE's log_format json). */
  json: Record<string, unknown> | undefined;
  /** `msg` of a JSON line, else the raw line. */
  msg: string;
  /** `level` of a JSON line ("debug", "info", "warning", "error"), else "". */
  level: string;
  /** When this process read the line. */
  seenAt: number;
}

export type LogMatcher = string | RegExp | ((line: LogLine) => boolean);

function toPredicate(m: LogMatcher): (line: LogLine) => boolean {
  if (typeof m === "function") return m;
  if (typeof m === "string") return (l) => l.raw.includes(m);
  return (l) => m.test(l.raw);
}

/** Follows a file that a process appends to (polling: portable and cheap at this size). */
export class LogTail {
  /** The most recent lines (at most `maxLines`; older ones are dropped in a long run). */
  readonly lines: LogLine[] = [];
  /** How many lines were dropped from the front of `lines`. */
  private dropped = 0;
  private offset = 0;
  private partial = "";
  private timer: NodeJS.Timeout | undefined;
  private reading = false;
  private waiters = new Set<() => void>();

  constructor(
    readonly file: string,
    private readonly pollMs = 100,
    private readonly maxLines = 50_000,
  ) {}

  start(): this {
    if (!this.timer) {
      this.timer = setInterval(() => void this.poll(), this.pollMs);
      this.timer.unref();
    }
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Index of the next line: pass as `since` to wait only for lines after now. */
  mark(): number {
    return this.dropped + this.lines.length;
  }

  /** Reads whatever is new in the file now. */
  async poll(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      let fh: fs.FileHandle;
      try {
        fh = await fs.open(this.file, "r");
      } catch {
        return; // not created yet
      }
      try {
        const { size } = await fh.stat();
        if (size < this.offset) this.offset = 0; // truncated
        if (size === this.offset) return;
        const buf = Buffer.alloc(size - this.offset);
        const { bytesRead } = await fh.read(buf, 0, buf.length, this.offset);
        this.offset += bytesRead;
        this.ingest(buf.subarray(0, bytesRead).toString("utf8"));
      } finally {
        await fh.close();
      }
    } finally {
      this.reading = false;
    }
  }

  private ingest(text: string): void {
    const parts = (this.partial + text).split("\n");
    this.partial = parts.pop() ?? "";
    for (const raw of parts) {
      if (raw.trim() === "") continue;
      let json: Record<string, unknown> | undefined;
      if (raw.startsWith("{")) {
        try {
          const parsed: unknown = JSON.parse(raw);
          if (parsed && typeof parsed === "object" && !Array.isArray(parsed))
            json = parsed as Record<string, unknown>;
        } catch {
          json = undefined;
        }
      }
      this.lines.push({
        index: this.dropped + this.lines.length,
        raw,
        json,
        msg: typeof json?.msg === "string" ? json.msg : raw,
        level: typeof json?.level === "string" ? json.level : "",
        seenAt: Date.now(),
      });
    }
    if (this.lines.length > this.maxLines) {
      const excess = this.lines.length - Math.floor(this.maxLines * 0.9);
      this.lines.splice(0, excess);
      this.dropped += excess;
    }
    for (const wake of this.waiters) wake();
  }

  find(matcher: LogMatcher, since = 0): LogLine | undefined {
    const pred = toPredicate(matcher);
    for (let i = Math.max(0, since - this.dropped); i < this.lines.length; i++) {
      const line = this.lines[i] as LogLine;
      if (pred(line)) return line;
    }
    return undefined;
  }

  filter(matcher: LogMatcher, since = 0): LogLine[] {
    const pred = toPredicate(matcher);
    return this.lines.slice(Math.max(0, since - this.dropped)).filter(pred);
  }

  /** The last `n` lines, for error messages. */
  tailText(n = 20): string {
    return this.lines
      .slice(-n)
      .map((l) => l.raw)
      .join("\n");
  }

  /**
   * Resolves with the first line at or after `since` that matches; rejects after `timeoutMs`
   * or when `abort` resolves first (e.g. the process exited), with the last lines in the message.
   */
  async waitFor(
    matcher: LogMatcher,
    opts: {
      timeoutMs: number;
      since?: number;
      abort?: Promise<unknown>;
      signal?: AbortSignal;
      what?: string;
    },
  ): Promise<LogLine> {
    await this.poll();
    let from = opts.since ?? 0;
    const what =
      opts.what ?? (typeof matcher === "function" ? "a matching line" : JSON.stringify(String(matcher)));
    const deadline = Date.now() + opts.timeoutMs;
    let aborted = false;
    let wakeCurrent: (() => void) | undefined;
    opts.abort?.then(() => {
      aborted = true;
      wakeCurrent?.();
    });
    const onSignal = () => wakeCurrent?.();
    opts.signal?.addEventListener("abort", onSignal);
    try {
      for (;;) {
        const hit = this.find(matcher, from);
        if (hit) return hit;
        from = this.mark();
        if (aborted) {
          throw new Error(
            `stopped waiting for ${what}: the process exited; last lines of ${this.file}:\n${this.tailText(15)}`,
          );
        }
        if (opts.signal?.aborted) throw new Error(`aborted while waiting for ${what}`);
        const remaining = deadline - Date.now();
        if (remaining <= 0) {
          throw new Error(
            `timed out after ${opts.timeoutMs} ms waiting for ${what} in ${this.file}; last lines:\n${this.tailText(15)}`,
          );
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => wakeCurrent?.(), Math.min(remaining, this.pollMs * 2));
          wakeCurrent = () => {
            clearTimeout(t);
            if (wakeCurrent) this.waiters.delete(wakeCurrent);
            wakeCurrent = undefined;
            resolve();
          };
          this.waiters.add(wakeCurrent);
        });
        await this.poll();
      }
    } finally {
      wakeCurrent?.();
      opts.signal?.removeEventListener("abort", onSignal);
    }
  }
}

/** Thrown from a pollUntil check to stop polling at once (other errors are retried until the deadline). */
export class StopPolling extends Error {}

/** Polls `check` until it returns a value (not undefined) or `timeoutMs` passes. */
export async function pollUntil<T>(
  what: string,
  check: () => Promise<T | undefined>,
  opts: { timeoutMs: number; intervalMs?: number; signal?: AbortSignal },
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastError: unknown;
  for (;;) {
    if (opts.signal?.aborted) throw new Error(`aborted while waiting for ${what}`);
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      if (err instanceof StopPolling) throw err;
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? `; last error: ${lastError.message}` : "";
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 200));
  }
}

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs a short command to completion; killed after `timeoutMs`. */
export function runCommand(
  command: string,
  args: readonly string[],
  opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv; uid?: number; gid?: number } = {},
): Promise<CommandResult> {
  installHooks();
  return new Promise((resolve) => {
    const child = spawn(command, [...args], {
      env: opts.env ?? process.env,
      stdio: ["pipe", "pipe", "pipe"],
      uid: opts.uid,
      gid: opts.gid,
    });
    liveChildren.add(child);
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.on("data", (b: Buffer) => {
      stdout += b.toString("utf8");
    });
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString("utf8");
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, opts.timeoutMs ?? 15_000);
    let settled = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      liveChildren.delete(child);
      resolve({ code, signal, stdout, stderr, timedOut });
    };
    child.once("error", (err) => {
      stderr += err.message;
      finish(127, null);
    });
    child.once("close", finish);
    child.stdin.on("error", () => {});
    child.stdin.end(opts.input ?? "");
  });
}
