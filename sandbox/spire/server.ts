/**
 * A real spire-server for tests and the sandbox: join_token attestor, sqlite datastore and disk
 * key manager in its own folder, JSON logs at DEBUG to a file, a free port on 127.0.0.1 and an
 * admin unix socket with a short path.
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { ensureSpire, type SpireBinaries } from "../../scripts/install-spire.js";
import { GrpcSpireServer, type GrpcSpireServerOptions } from "../../shared/spire/grpc.js";
import { type Duration, freePort, type LogLevel, serverConfig } from "./config.js";
import {
  assertSocketPath,
  type CommandResult,
  type LogLine,
  type LogMatcher,
  LogTail,
  ManagedProcess,
  makeShortTempDir,
  type ProcessExit,
  pollUntil,
  removeOwnedDir,
  runCommand,
  StopPolling,
} from "./process.js";

export interface SpireServerOptions {
  /** Default "example.org". */
  trustDomain?: string;
  /** Folder for data, config, logs and the socket; default a new short folder under /tmp, removed on dispose(). */
  dir?: string;
  /** Default: a free port. */
  bindPort?: number;
  /** Default "24h" (SPIRE's). Seconds or a Go duration; tests go down to seconds. */
  caTtl?: Duration;
  defaultX509SvidTtl?: Duration;
  defaultJwtSvidTtl?: Duration;
  agentTtl?: Duration;
  /** SPIFFE IDs allowed to call the admin API over TCP with their X509-SVID. */
  adminIds?: readonly string[];
  /** Default DEBUG (workload signings are logged at DEBUG only). */
  logLevel?: LogLevel;
  /** false: no limit on agent attestations per second (default SPIRE's 1/s per IP). */
  attestationRateLimit?: boolean;
  /** SPIRE's audit log: every Server API call logged, to count a client's calls (see audit.ts). */
  auditLog?: boolean;
  /** Default: ensureSpire(). */
  bins?: SpireBinaries;
  /** Bound for starting up and becoming healthy (default 30 s). */
  startTimeoutMs?: number;
}

export interface SpireServerHandle {
  readonly trustDomain: string;
  readonly dir: string;
  readonly dataDir: string;
  readonly socketPath: string;
  readonly bindAddress: string;
  readonly port: number;
  readonly configFile: string;
  readonly logFile: string;
  /** stdout/stderr of the process (the few lines before log_file takes over, crash output). */
  readonly consoleFile: string;
  readonly bins: SpireBinaries;
  readonly logs: LogTail;
  readonly pid: number;
  readonly running: boolean;
  /** Resolves when the current process exits. */
  readonly exited: Promise<ProcessExit>;
  waitForLog(
    matcher: LogMatcher,
    opts?: { timeoutMs?: number; since?: number; what?: string },
  ): Promise<LogLine>;
  /** Polls `spire-server healthcheck` until healthy; fails early if the process exits. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  healthcheck(): Promise<boolean>;
  /** `spire-server <args> -socketPath <socket>`; the socket flag goes after the subcommand words. */
  cli(args: readonly string[], opts?: { input?: string; timeoutMs?: number }): Promise<CommandResult>;
  /** `bundle show -format pem`. */
  bundlePem(): Promise<string>;
  /** Writes the bundle PEM to `file` (what an agent's trust_bundle_path reads). */
  writeBundle(file: string): Promise<string>;
  /** A gRPC SpireServer over the admin socket. The caller closes it. */
  client(options?: Partial<GrpcSpireServerOptions>): GrpcSpireServer;
  pause(): void;
  resume(): void;
  kill(signal?: NodeJS.Signals): Promise<ProcessExit>;
  stop(graceMs?: number): Promise<ProcessExit>;
  /** Graceful stop, then start again with the same config, data and port; waits until healthy. */
  restart(): Promise<void>;
  /** Stops the process and removes the folder if this module created it. Safe to call twice. */
  dispose(): Promise<void>;
}

/** Where `cli` puts -socketPath: after the subcommand words (e.g. `entry show`), before the flags. */
function withSocket(args: readonly string[], socketPath: string): string[] {
  const firstFlag = args.findIndex((a) => a.startsWith("-"));
  const at = firstFlag < 0 ? args.length : firstFlag;
  return [...args.slice(0, at), "-socketPath", socketPath, ...args.slice(at)];
}

export async function startSpireServer(options: SpireServerOptions = {}): Promise<SpireServerHandle> {
  const bins = options.bins ?? (await ensureSpire());
  const trustDomain = options.trustDomain ?? "example.org";
  const ownsDir = options.dir === undefined;
  const dir = options.dir ?? makeShortTempDir("sps-");
  await fs.mkdir(dir, { recursive: true });
  const dataDir = path.join(dir, "data");
  await fs.mkdir(dataDir, { recursive: true });
  const socketPath = assertSocketPath(path.join(dir, "api.sock"));
  const logFile = path.join(dir, "server.log");
  const consoleFile = path.join(dir, "console.log");
  const configFile = path.join(dir, "server.conf");
  const bindAddress = "127.0.0.1";
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  let port = options.bindPort ?? (await freePort());

  const writeConfig = () =>
    fs.writeFile(
      configFile,
      serverConfig({
        trustDomain,
        dataDir,
        socketPath,
        bindAddress,
        bindPort: port,
        logFile,
        logLevel: options.logLevel ?? "DEBUG",
        caTtl: options.caTtl,
        defaultX509SvidTtl: options.defaultX509SvidTtl,
        defaultJwtSvidTtl: options.defaultJwtSvidTtl,
        agentTtl: options.agentTtl,
        adminIds: options.adminIds,
        ...(options.attestationRateLimit !== undefined && {
          attestationRateLimit: options.attestationRateLimit,
        }),
        ...(options.auditLog && { auditLog: true }),
      }),
    );

  const logs = new LogTail(logFile).start();
  let proc: ManagedProcess | undefined;
  let disposed = false;

  const spawnServer = () =>
    new ManagedProcess("spire-server", bins.serverBin, ["run", "-config", configFile], {
      cwd: dir,
      consoleFile,
    });

  const healthcheck = async () => {
    const res = await runCommand(bins.serverBin, ["healthcheck", "-socketPath", socketPath], {
      timeoutMs: 5_000,
    });
    return res.code === 0;
  };

  const waitHealthy = async (timeoutMs = startTimeoutMs) => {
    const current = proc;
    if (!current) throw new Error("spire-server is not started");
    let exited = false;
    void current.exited.then(() => {
      exited = true;
    });
    await pollUntil(
      "spire-server to become healthy",
      async () => {
        if (exited) {
          const console = await fs.readFile(consoleFile, "utf8").catch(() => "");
          await logs.poll();
          throw new StopPolling(
            `spire-server exited (${JSON.stringify(current.exitStatus)}) before becoming healthy.\n` +
              `console:\n${console.split("\n").slice(-15).join("\n")}\nlog:\n${logs.tailText(15)}`,
          );
        }
        return (await healthcheck()) ? true : undefined;
      },
      { timeoutMs, intervalMs: 150 },
    ).catch((err: unknown) => {
      throw err instanceof StopPolling
        ? err
        : new Error(`${(err as Error).message}\nlog:\n${logs.tailText(15)}`);
    });
  };

  // A free port can be taken between picking it and binding: pick again (bounded).
  for (let attempt = 1; ; attempt++) {
    await writeConfig();
    const mark = logs.mark();
    proc = spawnServer();
    try {
      await waitHealthy();
      break;
    } catch (err) {
      await proc.stop(2_000);
      await logs.poll();
      const portTaken = logs.find(/address already in use/, mark) !== undefined;
      if (!portTaken || options.bindPort !== undefined || attempt >= 3) {
        logs.stop();
        if (ownsDir) await removeOwnedDir(dir);
        throw err;
      }
      port = await freePort();
    }
  }

  const current = (): ManagedProcess => {
    if (!proc) throw new Error("spire-server is not started");
    return proc;
  };

  const handle: SpireServerHandle = {
    trustDomain,
    dir,
    dataDir,
    socketPath,
    bindAddress,
    get port() {
      return port;
    },
    configFile,
    logFile,
    consoleFile,
    bins,
    logs,
    get pid() {
      return current().pid;
    },
    get running() {
      return current().running;
    },
    get exited() {
      return current().exited;
    },
    waitForLog(matcher, opts = {}) {
      return logs.waitFor(matcher, {
        timeoutMs: opts.timeoutMs ?? 30_000,
        since: opts.since,
        what: opts.what,
        abort: current().exited,
      });
    },
    waitHealthy,
    healthcheck,
    cli(args, opts = {}) {
      return runCommand(bins.serverBin, withSocket(args, socketPath), {
        input: opts.input,
        timeoutMs: opts.timeoutMs ?? 15_000,
      });
    },
    async bundlePem() {
      const res = await handle.cli(["bundle", "show", "-format", "pem"]);
      if (res.code !== 0 || !res.stdout.includes("BEGIN CERTIFICATE")) {
        throw new Error(`bundle show failed (exit ${res.code}): ${res.stderr || res.stdout}`);
      }
      return res.stdout;
    },
    async writeBundle(file) {
      const pem = await handle.bundlePem();
      await fs.writeFile(file, pem);
      return pem;
    },
    client(opts = {}) {
      return new GrpcSpireServer({ trustDomain, target: { kind: "unix", socketPath }, ...opts });
    },
    pause: () => current().pause(),
    resume: () => current().resume(),
    kill: (signal) => current().kill(signal),
    stop: (graceMs) => current().stop(graceMs),
    async restart() {
      await current().stop();
      proc = spawnServer();
      await waitHealthy();
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      if (proc) await proc.stop(3_000);
      logs.stop();
      if (ownsDir) await removeOwnedDir(dir);
    },
  };
  return handle;
}
