export type { SpireServerContainer } from "./compute/docker.js";
export type { VmHandle, VmOptions } from "./compute/service.js";
export { spireServerContainer } from "./compute/spire-container.js";
export type { KeyVaultSecretResolver } from "./containerapps/service.js";
export { SimControlClient } from "./control.js";
export type { CounterSnapshot } from "./counters.js";
export { SANDBOX_TOKEN_PREFIX, SandboxTokenCredential } from "./credential.js";
export type { FaultSettings, FaultUpdate } from "./faults.js";
export { azureProfile, FAST_PROFILE, type LatencyProfile } from "./profiles.js";
export { SimulatedContainerRuntime } from "./runtime/simulated.js";
export { SpireSidecarRuntime, type SpireSidecarRuntimeOptions } from "./runtime/spire-sidecar.js";
export type {
  AgentProcessControl,
  ContainerLaunch,
  ContainerRuntime,
  RunningContainer,
} from "./runtime/types.js";
export {
  AzureSimulator,
  type AzureSimulatorOptions,
  SANDBOX_SUBSCRIPTION_ID,
  type SimulatorClients,
  startAzureSimulator,
} from "./simulator.js";
