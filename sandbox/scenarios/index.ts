import { adminSvidRotation } from "./admin-svid-rotation.js";
import { agentDead } from "./agent-dead.js";
import { alertStorm } from "./alert-storm.js";
import { caReset } from "./ca-reset-detected.js";
import { caRotation } from "./ca-rotation.js";
import { deploy, deployDryRun, deployResume } from "./deploy.js";
import { deployVsSeed } from "./deploy-vs-seed.js";
import { hostResume } from "./host-resume.js";
import { logsAlert } from "./logs-alert.js";
import { multiReplica } from "./multi-replica.js";
import { partialUpdate } from "./partial-update.js";
import { replicaRestart } from "./replica-restart.js";
import { runcommandTwoHosts } from "./runcommand-two-hosts.js";
import { runcommandWedge } from "./runcommand-wedge.js";
import { serverHang } from "./server-hang.js";
import { serverRemoved } from "./server-removed.js";
import { spireBasics } from "./spire-basics.js";
import { sweepPartialLogs } from "./sweep-partial-logs.js";
import { sweepQuiet } from "./sweep-quiet.js";
import type { Scenario } from "./types.js";

/** Every scenario the sandbox CLI knows, in the order `list` prints them. */
export const scenarios: Scenario[] = [
  hostResume,
  spireBasics,
  partialUpdate,
  runcommandWedge,
  runcommandTwoHosts,
  logsAlert,
  replicaRestart,
  alertStorm,
  multiReplica,
  caRotation,
  caReset,
  adminSvidRotation,
  sweepQuiet,
  agentDead,
  serverHang,
  sweepPartialLogs,
  serverRemoved,
  deploy,
  deployVsSeed,
  deployDryRun,
  deployResume,
];

export function findScenario(name: string): Scenario | undefined {
  return scenarios.find((s) => s.name === name);
}
