/**
 * How replicas' containers run. The Container Apps model decides when a container starts,
 * restarts (with backoff) or stops; a ContainerRuntime makes it run. The default simulates every
 * container; the SPIRE sidecar runtime runs a real spire-agent in the sidecar.
 */
import type { LatencyProfile } from "../profiles.js";

export interface ContainerLaunch {
  resourceGroup: string;
  app: string;
  revision: string;
  replica: string;
  container: string;
  image: string;
  /** Resolved environment: plain values and secret values. */
  env: Record<string, string>;
  command: string[];
  args: string[];
  /** Volumes mounted into the container: its path → a host folder with the files. */
  mounts: { mountPath: string; hostDir: string }[];
  /** A fresh folder for this container instance, its writable layer: a restart gets a new one. */
  workDir: string;
  /** The sidecar: the container whose env carries JOIN_TOKEN. */
  sidecar: boolean;
  profile: LatencyProfile;
  /** Appends a line to the container's console log. */
  console(stream: "stdout" | "stderr", line: string): void;
}

export interface ContainerExit {
  exitCode: number;
  reason: string;
}

/** The SPIRE agent process inside a sidecar, for faults (learning #18). */
export interface AgentProcessControl {
  readonly pid: number | undefined;
  readonly running: boolean;
  /** Kills the agent process; the entrypoint's monitor loop restarts it (data dir kept). */
  kill(signal?: NodeJS.Signals): void;
  /** SIGSTOP: the process hangs, looks alive to `kill -0`, stops renewing SVIDs. */
  pause(): void;
  resume(): void;
  /** How many times the entrypoint started the agent in this container instance. */
  readonly starts: number;
  /** The agent's Workload API socket on the host. */
  readonly workloadSocketPath: string | undefined;
  /** X509-SVIDs its Workload API serves to a caller with this process's uid. */
  svids(): Promise<
    { spiffeId: string; serialNumber: string; notBefore: Date; notAfter: Date; certChainDer: Buffer[] }[]
  >;
}

export interface RunningContainer {
  /** Resolves when the container is ready; stays pending if it exits first. */
  readonly ready: Promise<void>;
  /** Resolves when the container's main process ends. */
  readonly exited: Promise<ContainerExit>;
  /** Stops the container (SIGTERM, then SIGKILL); resolves when it is gone. */
  stop(): Promise<void>;
  readonly agent?: AgentProcessControl;
}

export interface ContainerRuntime {
  start(launch: ContainerLaunch): Promise<RunningContainer>;
  /** Stops whatever is still running. */
  close(): Promise<void>;
}
