// The app's configuration: settings declared once (config/settings.ts), validated at load
// (config/load.ts) into a typed AppConfig (config/assemble.ts), documented from the same table
// (config/docs.ts).
export type {
  AlertAuth,
  AppConfig,
  ServiceEndpoint,
  SpireConfig,
  SpireGrpcTarget,
  SpireVm,
} from "./config/assemble.js";
export {
  describeSettings,
  exampleLocalSettings,
  type LocalSettingsFile,
  SETTINGS,
  type SettingInfo,
} from "./config/docs.js";
export { ConfigError, type ConfigProblem, loadConfig, type ProblemKind } from "./config/load.js";
export type { SettingGroup, SettingName } from "./config/settings.js";
export type { HostPort, Selector } from "./config/validators.js";
