export { type AdminSvid, adminTcpTarget, mintAdminSvid } from "./admin.js";
export {
  parseFetchX509Output,
  type SpireAgentHandle,
  type SpireAgentOptions,
  splitDerChain,
  startSpireAgent,
  type WorkloadSvid,
} from "./agent.js";
export { type ApiCallCount, countServerApiCalls } from "./audit.js";
export { type Duration, freePort, type LogLevel } from "./config.js";
export { LocalRunCommands, type LocalRunCommandsOptions } from "./local-run-commands.js";
export {
  type CommandResult,
  type LogLine,
  type LogMatcher,
  LogTail,
  ManagedProcess,
  makeShortTempDir,
  type ProcessExit,
  pollUntil,
  removeOwnedDir,
} from "./process.js";
export { type SpireServerHandle, type SpireServerOptions, startSpireServer } from "./server.js";
