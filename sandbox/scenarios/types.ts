import type { ProfileName } from "../azure/profiles.js";

/** A scripted scenario run by `npm run sandbox -- scenario <name>` in a fresh environment. */
export interface ScenarioContext {
  /** A fresh, empty folder owned by this run; removed afterwards unless --keep is given. */
  workDir: string;
  /** Progress for people; goes to stderr so `--json` keeps stdout to the one JSON object. */
  log(message: string): void;
  /** Aborted when the run is interrupted or times out; long waits should honour it. */
  signal: AbortSignal;
  /** Azure latencies to simulate (`--profile`); scenarios that honour it say so; default `fast`. */
  profile?: ProfileName;
}

/** Figures a scenario reports; `pass` decides the exit code. */
export type ScenarioResult = { pass: boolean } & Record<string, unknown>;

export interface Scenario {
  name: string;
  description: string;
  /** Upper bound for the whole run; the CLI aborts the scenario after it. */
  timeoutSeconds: number;
  run(ctx: ScenarioContext): Promise<ScenarioResult>;
}
