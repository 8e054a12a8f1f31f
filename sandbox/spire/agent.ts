/**
 * A real spire-agent: join-token attestation, `trust_bundle_path` (never insecure_bootstrap),
 * disk key manager, its own data dir and Workload API socket, unix workload attestor.
 * Reusable as "the agent sidecar of one simulated Container App replica".
 */
import { X509Certificate } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { ensureSpire, type SpireBinaries } from "../../scripts/install-spire.js";
import { registerSecret } from "../../shared/logging.js";
import { agentConfig, type LogLevel } from "./config.js";
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

export interface SpireAgentOptions {
  /** Server address and port (e.g. from SpireServerHandle.bindAddress/port). */
  serverAddress: string;
  serverPort: number;
  trustDomain: string;
  /** PEM file of the trust bundle the agent verifies the server with. */
  trustBundlePath: string;
  /** Single-use token; may be omitted when `dataDir` already holds the agent's SVID (a restart). */
  joinToken?: string;
  /** Folder for config, logs and (by default) data and socket; default a new short folder under /tmp. */
  dir?: string;
  dataDir?: string;
  /** Workload API socket; default `<dir>/agent.sock`. */
  socketPath?: string;
  logLevel?: LogLevel;
  bins?: SpireBinaries;
  /** For logs and errors, e.g. the replica name. */
  name?: string;
}

export interface WorkloadSvid {
  spiffeId: string;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  /** Leaf first. */
  certChainDer: Buffer[];
}

export interface SpireAgentHandle {
  readonly name: string;
  readonly dir: string;
  readonly dataDir: string;
  readonly socketPath: string;
  readonly configFile: string;
  readonly logFile: string;
  readonly consoleFile: string;
  readonly logs: LogTail;
  readonly pid: number;
  readonly running: boolean;
  readonly exited: Promise<ProcessExit>;
  /** When the current process was started (ms since epoch). */
  readonly startedAt: number;
  waitForLog(
    matcher: LogMatcher,
    opts?: { timeoutMs?: number; since?: number; what?: string },
  ): Promise<LogLine>;
  /** Until `spire-agent healthcheck` passes (the agent serves the Workload API only after attesting). */
  waitHealthy(timeoutMs?: number): Promise<void>;
  healthcheck(): Promise<boolean>;
  /** X509-SVIDs the Workload API gives a caller with this process's uid/gid (or the given ones). */
  fetchX509Svids(opts?: { uid?: number; gid?: number; timeoutMs?: number }): Promise<WorkloadSvid[]>;
  /** Polls fetchX509Svids until an SVID with `spiffeId` is served. */
  waitForWorkloadSvid(
    spiffeId: string,
    opts?: { timeoutMs?: number; uid?: number; gid?: number },
  ): Promise<WorkloadSvid>;
  cli(
    args: readonly string[],
    opts?: { timeoutMs?: number; uid?: number; gid?: number },
  ): Promise<CommandResult>;
  pause(): void;
  resume(): void;
  kill(signal?: NodeJS.Signals): Promise<ProcessExit>;
  stop(graceMs?: number): Promise<ProcessExit>;
  /** Stop, then start the same config and data dir again (the token file is kept; a stored SVID wins). */
  restart(): Promise<void>;
  dispose(): Promise<void>;
}

/** Splits concatenated DER certificates (the Workload API's x509_svid field). */
export function splitDerChain(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf[off] !== 0x30) throw new Error(`not a DER SEQUENCE at offset ${off}`);
    const first = buf[off + 1] ?? 0;
    let len: number;
    let header: number;
    if (first < 0x80) {
      len = first;
      header = 2;
    } else {
      const n = first & 0x7f;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + (buf[off + 2 + i] ?? 0);
      header = 2 + n;
    }
    out.push(buf.subarray(off, off + header + len));
    off += header + len;
  }
  return out;
}

export function parseFetchX509Output(stdout: string): WorkloadSvid[] {
  const parsed = JSON.parse(stdout) as { svids?: { spiffe_id?: string; x509_svid?: string }[] };
  return (parsed.svids ?? []).map((s) => {
    const chain = splitDerChain(Buffer.from(s.x509_svid ?? "", "base64"));
    const leaf = new X509Certificate(chain[0] ?? Buffer.alloc(0));
    return {
      spiffeId: s.spiffe_id ?? "",
      serialNumber: leaf.serialNumber.toLowerCase(),
      notBefore: new Date(leaf.validFrom),
      notAfter: new Date(leaf.validTo),
      certChainDer: chain,
    };
  });
}

export async function startSpireAgent(options: SpireAgentOptions): Promise<SpireAgentHandle> {
  const bins = options.bins ?? (await ensureSpire());
  const ownsDir = options.dir === undefined;
  const dir = options.dir ?? makeShortTempDir("spa-");
  await fs.mkdir(dir, { recursive: true });
  const dataDir = options.dataDir ?? path.join(dir, "data");
  await fs.mkdir(dataDir, { recursive: true });
  const socketPath = assertSocketPath(options.socketPath ?? path.join(dir, "agent.sock"));
  await fs.mkdir(path.dirname(socketPath), { recursive: true });
  const logFile = path.join(dir, "agent.log");
  const consoleFile = path.join(dir, "console.log");
  const configFile = path.join(dir, "agent.conf");
  const name = options.name ?? path.basename(dir);

  let joinTokenFile: string | undefined;
  if (options.joinToken !== undefined) {
    registerSecret(options.joinToken);
    // A file (0600) rather than -joinToken: the token stays out of the process list.
    joinTokenFile = path.join(dir, "join_token");
    await fs.writeFile(joinTokenFile, options.joinToken, { mode: 0o600 });
  }
  await fs.writeFile(
    configFile,
    agentConfig({
      trustDomain: options.trustDomain,
      serverAddress: options.serverAddress,
      serverPort: options.serverPort,
      trustBundlePath: options.trustBundlePath,
      dataDir,
      socketPath,
      logFile,
      logLevel: options.logLevel ?? "DEBUG",
      joinTokenFile,
    }),
  );

  const logs = new LogTail(logFile).start();
  const spawnAgent = () =>
    new ManagedProcess(`spire-agent ${name}`, bins.agentBin, ["run", "-config", configFile], {
      cwd: dir,
      consoleFile,
    });
  let proc = spawnAgent();
  let startedAt = Date.now();
  let disposed = false;

  const cli = (args: readonly string[], opts: { timeoutMs?: number; uid?: number; gid?: number } = {}) =>
    runCommand(bins.agentBin, args, { timeoutMs: opts.timeoutMs ?? 15_000, uid: opts.uid, gid: opts.gid });

  const healthcheck = async () =>
    (await cli(["healthcheck", "-socketPath", socketPath], { timeoutMs: 5_000 })).code === 0;

  const exitedError = async (what: string) => {
    const console = await fs.readFile(consoleFile, "utf8").catch(() => "");
    await logs.poll();
    return new StopPolling(
      `spire-agent ${name} exited (${JSON.stringify(proc.exitStatus)}) while waiting for ${what}.\n` +
        `console:\n${console.split("\n").slice(-10).join("\n")}\nlog:\n${logs.tailText(15)}`,
    );
  };

  const fetchX509Svids = async (opts: { uid?: number; gid?: number; timeoutMs?: number } = {}) => {
    const res = await cli(
      ["api", "fetch", "x509", "-socketPath", socketPath, "-output", "json", "-timeout", "5s"],
      {
        timeoutMs: opts.timeoutMs ?? 10_000,
        uid: opts.uid,
        gid: opts.gid,
      },
    );
    if (res.code !== 0)
      throw new Error(`api fetch x509 failed (exit ${res.code}): ${(res.stderr || res.stdout).trim()}`);
    return parseFetchX509Output(res.stdout);
  };

  const handle: SpireAgentHandle = {
    name,
    dir,
    dataDir,
    socketPath,
    configFile,
    logFile,
    consoleFile,
    logs,
    get pid() {
      return proc.pid;
    },
    get running() {
      return proc.running;
    },
    get exited() {
      return proc.exited;
    },
    get startedAt() {
      return startedAt;
    },
    waitForLog(matcher, opts = {}) {
      return logs.waitFor(matcher, {
        timeoutMs: opts.timeoutMs ?? 30_000,
        since: opts.since,
        what: opts.what,
        abort: proc.exited,
      });
    },
    async waitHealthy(timeoutMs = 30_000) {
      await pollUntil(
        `spire-agent ${name} to attest and become healthy`,
        async () => {
          if (!proc.running) throw await exitedError("health");
          return (await healthcheck()) ? true : undefined;
        },
        { timeoutMs, intervalMs: 150 },
      );
    },
    healthcheck,
    fetchX509Svids,
    async waitForWorkloadSvid(spiffeId, opts = {}) {
      return pollUntil(
        `a workload SVID for ${spiffeId} from agent ${name}`,
        async () => {
          if (!proc.running) throw await exitedError(`an SVID for ${spiffeId}`);
          const svids = await fetchX509Svids(opts);
          return svids.find((s) => s.spiffeId === spiffeId);
        },
        { timeoutMs: opts.timeoutMs ?? 30_000, intervalMs: 200 },
      );
    },
    cli,
    pause: () => proc.pause(),
    resume: () => proc.resume(),
    kill: (signal) => proc.kill(signal),
    stop: (graceMs) => proc.stop(graceMs),
    async restart() {
      await proc.stop();
      proc = spawnAgent();
      startedAt = Date.now();
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      await proc.stop(3_000);
      logs.stop();
      if (ownsDir) await removeOwnedDir(dir);
    },
  };
  return handle;
}
