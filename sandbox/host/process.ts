import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { HostKeys } from "./keys.js";

/** The local Functions host running as a child process (so tests can SIGKILL it). */
export interface HostProcess {
  url: string;
  pid: number;
  keys: HostKeys;
  functions: Array<{ name: string; kind: string; detail: string }>;
  /** Everything the host printed so far. */
  output(): string;
  waitForOutput(pattern: RegExp, timeoutMs: number): Promise<string>;
  /** SIGTERM and wait (bounded); SIGKILL if it does not go. */
  stop(): Promise<void>;
  /** Send a signal and wait for the process to exit. */
  kill(signal: NodeJS.Signals): Promise<void>;
  exited: Promise<number | null>;
}

export interface HostProcessOptions {
  appEntry: string;
  stateDir: string;
  port?: number;
  timeScale?: number;
  /** Share a scaled clock with other processes (see HostClock). */
  clockOrigin?: number;
  env?: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
  /** Echo the host's output to this stream as it comes (progress for people). */
  echo?: NodeJS.WritableStream;
}

const REPO_ROOT = resolve(import.meta.dirname, "../..");

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

export async function startHostProcess(opts: HostProcessOptions): Promise<HostProcess> {
  const args = [
    "--import",
    "tsx",
    join(REPO_ROOT, "sandbox/host/main.ts"),
    "--app",
    resolve(opts.appEntry),
    "--state-dir",
    resolve(opts.stateDir),
    "--port",
    String(opts.port ?? 0),
    "--time-scale",
    String(opts.timeScale ?? 1),
    "--host-json",
    join(REPO_ROOT, "host.json"),
    ...(opts.clockOrigin !== undefined ? ["--clock-origin", String(opts.clockOrigin)] : []),
  ];
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(child);
  let out = "";
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    out += chunk.toString("utf8");
    opts.echo?.write(chunk);
    for (const l of listeners) l();
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const exited = new Promise<number | null>((res) =>
    child.once("exit", (code) => {
      live.delete(child);
      for (const l of listeners) l();
      res(code);
    }),
  );

  const waitForOutput = (pattern: RegExp, timeoutMs: number) =>
    new Promise<string>((res, rej) => {
      const check = () => {
        const m = pattern.exec(out);
        if (m) {
          done();
          res(m[0]);
        } else if (child.exitCode !== null || child.signalCode !== null) {
          done();
          rej(
            new Error(
              `host exited (${child.exitCode ?? child.signalCode}) before printing ${pattern}:\n${out.slice(-4000)}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        rej(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${pattern}; host output:\n${out.slice(-4000)}`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
      check();
    });

  const readyLine = await waitForOutput(/HOST_READY (.*)\n/, opts.readyTimeoutMs ?? 30_000).catch(
    async (err) => {
      child.kill("SIGKILL");
      throw err;
    },
  );
  const ready = JSON.parse(readyLine.slice("HOST_READY ".length)) as {
    url: string;
    pid: number;
    functions: HostProcess["functions"];
  };
  const keys = JSON.parse(readFileSync(join(opts.stateDir, "keys.json"), "utf8")) as HostKeys;

  const kill = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return {
    url: ready.url,
    pid: ready.pid,
    keys,
    functions: ready.functions,
    output: () => out,
    waitForOutput,
    exited,
    kill,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timeout = new Promise<"timeout">((res) => setTimeout(() => res("timeout"), 10_000).unref());
      if ((await Promise.race([exited, timeout])) === "timeout") await kill("SIGKILL");
    },
  };
}
