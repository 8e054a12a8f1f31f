/**
 * The seed's `agent-proxy` sidecar, for real: writes the trust bundle (SPIRE_TRUST_BUNDLE, or a
 * file in a mounted secret volume named by SPIRE_TRUST_BUNDLE_PATH) to a file, starts a real
 * spire-agent with the join token against the local SPIRE server (whatever SPIRE_SERVER_ADDR
 * says), and supervises it like the seed's entrypoint after learning #18: a monitor loop restarts
 * the agent process if it dies (the data dir survives, so it comes back on its stored SVID); if
 * the agent cannot start at all, the container exits, and Container Apps restarts it with a
 * fresh writable layer, so a spent token crash-loops (learnings #5, #26). The agent's log is the
 * container's console log. Every other container is simulated.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import type { SpireBinaries } from "../../../scripts/install-spire.js";
import { type SpireAgentHandle, startSpireAgent } from "../../spire/agent.js";
import type { LogLevel } from "../../spire/config.js";
import { SimulatedContainerRuntime } from "./simulated.js";
import type {
  AgentProcessControl,
  ContainerExit,
  ContainerLaunch,
  ContainerRuntime,
  RunningContainer,
} from "./types.js";

export interface SpireSidecarRuntimeOptions {
  /** The local SPIRE server every sidecar reaches, whatever its SPIRE_SERVER_ADDR says. */
  server: { address: string; port: number; trustDomain: string };
  bins?: SpireBinaries;
  /** Agent log level (default INFO: attestation and SVID rotation lines). */
  logLevel?: LogLevel;
  /** Also run the non-sidecar containers with this runtime (default: simulated). */
  others?: ContainerRuntime;
}

const AGENT_UP = /Starting agent APIs|Starting Workload and SDS APIs/;

/** Maps a path inside the container to the host folder of the volume mounted there. */
function hostPath(launch: ContainerLaunch, containerPath: string): string | undefined {
  for (const m of launch.mounts) {
    const rel = relative(m.mountPath, containerPath);
    if (rel === "" || rel.startsWith("..") || rel.startsWith(sep)) continue;
    const target = resolve(m.hostDir, rel);
    // Only files inside the mounted volume: a path can never reach beyond it.
    if (target.startsWith(`${resolve(m.hostDir)}${sep}`)) return target;
  }
  return undefined;
}

class Sidecar implements RunningContainer {
  readonly ready: Promise<void>;
  readonly exited: Promise<ContainerExit>;
  private resolveReady: () => void = () => {};
  private resolveExit: (e: ContainerExit) => void = () => {};
  private agentHandle: SpireAgentHandle | undefined;
  private stopping = false;
  private finished = false;
  private monitor: NodeJS.Timeout | undefined;
  private forwarded = 0;
  private agentStarts = 0;

  constructor(
    private readonly launch: ContainerLaunch,
    private readonly options: SpireSidecarRuntimeOptions,
  ) {
    this.ready = new Promise((r) => {
      this.resolveReady = r;
    });
    this.exited = new Promise((r) => {
      this.resolveExit = r;
    });
  }

  private say(line: string): void {
    this.launch.console("stdout", `[entrypoint] ${line}`);
  }

  /** The container's main process ends: the agent goes with it. */
  private exit(exitCode: number, reason: string): void {
    if (this.finished) return;
    this.finished = true;
    if (this.monitor) clearInterval(this.monitor);
    this.forwardLogs();
    const agent = this.agentHandle;
    void (async () => {
      await agent?.dispose().catch(() => {});
      this.resolveExit({ exitCode, reason });
    })();
  }

  private forwardLogs(): void {
    const logs = this.agentHandle?.logs;
    if (!logs) return;
    for (; this.forwarded < logs.lines.length; this.forwarded++) {
      const line = logs.lines[this.forwarded];
      if (line) this.launch.console(line.level === "error" ? "stderr" : "stdout", line.raw);
    }
  }

  private bundleFile(): string | undefined {
    const env = this.launch.env;
    const file = join(this.launch.workDir, "conf", "trust-bundle.pem");
    mkdirSync(join(this.launch.workDir, "conf"), { recursive: true });
    if (env.SPIRE_TRUST_BUNDLE?.includes("BEGIN CERTIFICATE")) {
      writeFileSync(file, env.SPIRE_TRUST_BUNDLE);
      return file;
    }
    const path = env.SPIRE_TRUST_BUNDLE_PATH;
    if (path) {
      const source = hostPath(this.launch, path);
      if (!source) {
        this.say(`SPIRE_TRUST_BUNDLE_PATH ${path} is not inside a mounted volume`);
        return undefined;
      }
      try {
        writeFileSync(file, readFileSync(source));
        return file;
      } catch {
        this.say(`cannot read the trust bundle at ${path}`);
        return undefined;
      }
    }
    this.say("no trust bundle: set SPIRE_TRUST_BUNDLE (PEM) or SPIRE_TRUST_BUNDLE_PATH");
    return undefined;
  }

  async start(): Promise<void> {
    const env = this.launch.env;
    const token = env.JOIN_TOKEN ?? "";
    if (token === "") {
      this.say("JOIN_TOKEN is empty");
      this.exit(1, "Error");
      return;
    }
    const bundle = this.bundleFile();
    if (!bundle) {
      this.exit(1, "Error");
      return;
    }
    const trustDomain = env.SPIRE_TRUST_DOMAIN || this.options.server.trustDomain;
    if (!/^[a-z0-9._-]{1,255}$/.test(trustDomain)) {
      this.say("SPIRE_TRUST_DOMAIN is not a trust domain name");
      this.exit(1, "Error");
      return;
    }
    const server = this.options.server;
    this.say(
      `starting spire-agent against ${env.SPIRE_SERVER_ADDR ?? "(SPIRE_SERVER_ADDR unset)"} (sandbox: ${server.address}:${server.port})`,
    );
    try {
      this.agentHandle = await startSpireAgent({
        serverAddress: server.address,
        serverPort: server.port,
        trustDomain,
        trustBundlePath: bundle,
        joinToken: token,
        dir: join(this.launch.workDir, "agent"),
        dataDir: join(this.launch.workDir, "data", "agent"),
        name: this.launch.replica,
        logLevel: this.options.logLevel ?? "INFO",
        ...(this.options.bins && { bins: this.options.bins }),
      });
    } catch (err) {
      this.say(`cannot start spire-agent: ${(err as Error).message}`);
      this.exit(1, "Error");
      return;
    }
    if (this.stopping || this.finished) {
      // Stopped while the agent was starting: it must not outlive its container.
      await this.agentHandle.dispose();
      return;
    }
    this.agentStarts = 1;
    if (!(await this.waitUp())) return;
    this.resolveReady();
    this.monitor = setInterval(() => this.tick(), this.launch.profile.sidecarMonitorIntervalMs);
  }

  /** Waits for the agent to open its APIs; exits the container when it does not. */
  private async waitUp(): Promise<boolean> {
    const agent = this.agentHandle;
    if (!agent) return false;
    const mark = agent.logs.mark();
    const timeoutMs = this.launch.profile.sidecarAgentStartTimeoutMs;
    try {
      await agent.waitForLog(AGENT_UP, {
        since: mark,
        timeoutMs,
        what: "the agent to open the Workload API",
      });
      this.forwardLogs();
      return true;
    } catch {
      if (this.stopping) return false;
      this.forwardLogs();
      const status = agent.running
        ? `not up after ${timeoutMs} ms`
        : `exited (${JSON.stringify(await agent.exited)})`;
      this.say(`spire-agent could not start: ${status}; exiting`);
      this.exit(1, "Error");
      return false;
    }
  }

  /** The seed's monitor loop: `kill -0 $SPIRE_PID` or restart. A SIGSTOPped agent passes it. */
  private tick(): void {
    this.forwardLogs();
    const agent = this.agentHandle;
    if (!agent || this.stopping || this.finished || agent.running) return;
    this.say(`spire-agent (pid ${agent.pid}) died; restarting it`);
    if (this.monitor) clearInterval(this.monitor);
    this.monitor = undefined;
    void (async () => {
      await agent.restart();
      this.agentStarts += 1;
      if (!(await this.waitUp())) return;
      if (!this.stopping && !this.finished) {
        this.monitor = setInterval(() => this.tick(), this.launch.profile.sidecarMonitorIntervalMs);
      }
    })();
  }

  get agent(): AgentProcessControl {
    const self = this;
    return {
      get pid() {
        return self.agentHandle?.running ? self.agentHandle.pid : undefined;
      },
      get running() {
        return self.agentHandle?.running ?? false;
      },
      get starts() {
        return self.agentStarts;
      },
      kill(signal: NodeJS.Signals = "SIGKILL") {
        void self.agentHandle?.kill(signal);
      },
      pause() {
        self.agentHandle?.pause();
      },
      resume() {
        self.agentHandle?.resume();
      },
      get workloadSocketPath() {
        return self.agentHandle?.socketPath;
      },
      async svids() {
        const handle = self.agentHandle;
        if (!handle) throw new Error("the sidecar has no agent");
        return (await handle.fetchX509Svids()).map((s) => ({
          spiffeId: s.spiffeId,
          serialNumber: s.serialNumber,
          notBefore: s.notBefore,
          notAfter: s.notAfter,
          certChainDer: s.certChainDer,
        }));
      },
    };
  }

  /** The agent's handle (for tests that fetch SVIDs from its Workload API). */
  get handle(): SpireAgentHandle | undefined {
    return this.agentHandle;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.exit(137, "Stopped");
    await this.exited;
  }
}

/** Runs a real spire-agent in every replica's sidecar (the container with JOIN_TOKEN). */
export class SpireSidecarRuntime implements ContainerRuntime {
  private readonly others: ContainerRuntime;
  private readonly live = new Set<Sidecar>();

  constructor(private readonly options: SpireSidecarRuntimeOptions) {
    this.others = options.others ?? new SimulatedContainerRuntime();
  }

  async start(launch: ContainerLaunch): Promise<RunningContainer> {
    if (!launch.sidecar) return this.others.start(launch);
    const sidecar = new Sidecar(launch, this.options);
    this.live.add(sidecar);
    void sidecar.exited.then(() => this.live.delete(sidecar));
    void sidecar.start().catch((err: unknown) => {
      launch.console("stderr", `[entrypoint] ${(err as Error).message}`);
    });
    return sidecar;
  }

  async close(): Promise<void> {
    await Promise.all([...this.live].map((s) => s.stop()));
    await this.others.close();
  }
}
