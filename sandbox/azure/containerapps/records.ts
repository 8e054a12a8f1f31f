/** The simulator's state of Container Apps: apps, their revisions, replicas and containers. */
import type { AsyncOperation } from "../arm/operations.js";
import type { JsonObject } from "../json.js";
import type { ContainerLaunch, RunningContainer } from "../runtime/types.js";
import type { ContainerView } from "./spec.js";

/** What the user asked for (secret values included); GET shows it with state and without values. */
export interface DesiredApp {
  location: string;
  tags?: JsonObject;
  identity?: JsonObject;
  kind?: string;
  managedBy?: string;
  extendedLocation?: JsonObject;
  /** Writable properties: environmentId, configuration, template, ... and anything unknown, kept as sent. */
  properties: JsonObject;
}

export type AppProvisioningState = "InProgress" | "Succeeded" | "Failed" | "Canceled" | "Deleting";

export interface AppRecord {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  desired: DesiredApp;
  provisioningState: AppProvisioningState;
  latestRevisionName?: string;
  latestReadyRevisionName?: string;
  /** Creation order. */
  revisions: RevisionRecord[];
  createdAt: Date;
  modifiedAt: Date;
  /** The operation in progress (PUT/PATCH/DELETE), if any. */
  operation?: AsyncOperation;
  deleted: boolean;
  /**
   * How many replicas the app's load asks for (its scale rules' verdict), clamped by each
   * revision to minReplicas..maxReplicas. Undefined: light load, one replica's worth.
   */
  demand?: number;
}

export type RevisionProvisioningState =
  | "Provisioning"
  | "Provisioned"
  | "Failed"
  | "Deprovisioning"
  | "Deprovisioned";
/**
 * The spec's enum (Running, Processing, Stopped, Degraded, Failed, Unknown) plus the states Azure
 * really reports beside it: ActivationFailed, RunningAtMaxScale (Azure/azure-rest-api-specs#29102),
 * Activating, ScaledToZero (microsoft/vscode-azurecontainerapps PR #1088).
 */
export type RevisionRunningState =
  | "Running"
  | "RunningAtMaxScale"
  | "Processing"
  | "Activating"
  | "ActivationFailed"
  | "ScaledToZero"
  | "Stopped"
  | "Degraded"
  | "Failed"
  | "Unknown";
export type RevisionHealthState = "Healthy" | "Unhealthy" | "None";

export interface RevisionRecord {
  name: string;
  createdTime: Date;
  lastActiveTime?: Date;
  /** The template with defaults, as the revision was created. */
  template: JsonObject;
  active: boolean;
  provisioningState: RevisionProvisioningState;
  runningState: RevisionRunningState;
  healthState: RevisionHealthState;
  provisioningError?: string;
  replicas: ReplicaRecord[];
  /** Became ready at least once. */
  everReady: boolean;
}

export type ContainerState = "Waiting" | "Running" | "Terminated";

export interface ContainerRecord {
  index: number;
  view: ContainerView;
  launch: Omit<ContainerLaunch, "workDir">;
  containerId: string;
  restartCount: number;
  state: ContainerState;
  stateDetails: string;
  ready: boolean;
  started: boolean;
  /** Instances started so far in this replica (each gets a fresh writable layer). */
  instances: number;
  running?: RunningContainer;
  workDir?: string;
  cancelBackoff?: () => void;
}

export interface ReplicaRecord {
  name: string;
  createdTime: Date;
  dir: string;
  containers: ContainerRecord[];
  stopped: boolean;
}
