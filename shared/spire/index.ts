export { describeBundle, describeRoot, pemToDerList, rootFingerprints, sha256Fingerprint } from "./bundle.js";
export { generateSvidKeyAndCsr, type SvidKeyAndCsr } from "./csr.js";
export {
  SpireApiError,
  SpireInputError,
  SpireUnsupportedError,
  STATUS_CODES,
  statusCodeName,
} from "./errors.js";
export {
  createGrpcSpireServer,
  GrpcSpireServer,
  type GrpcSpireServerOptions,
  type GrpcTarget,
  protoDir,
} from "./grpc.js";
export { chunk, collectPages, mapLimited, type Page } from "./paging.js";
export {
  cliFailure,
  createRunCommandSpireServer,
  entriesJson,
  type RunCommandClock,
  RunCommandError,
  RunCommandSpireServer,
  type RunCommandSpireServerOptions,
} from "./runcommand/adapter.js";
export {
  isNotFoundError,
  isTerminalExecution,
  isTerminalProvisioning,
  type RunCommandExecutionState,
  type RunCommandInputParameter,
  type RunCommandInstanceView,
  type RunCommandOutputStore,
  type RunCommandsClient,
  type VirtualMachineRunCommand,
} from "./runcommand/azure.js";
export {
  type BuiltScript,
  buildScript,
  type CallOutput,
  type CliCall,
  type ExecMode,
  type ParsedScriptOutput,
  parseScriptOutput,
} from "./runcommand/script.js";
export * from "./types.js";
export {
  parseSelectorString,
  sameSelectors,
  validateAgentFilter,
  validateEntryId,
  validateEntrySpec,
  validateEntryUpdate,
  validateSelector,
  validateSpiffeIdInput,
  validateTtlSeconds,
  validateUuid,
} from "./validate.js";
