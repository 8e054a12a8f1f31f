import { vmRunCommandOptions } from "../azure/vm-runcommand-options.js";
import { PermanentError } from "../errors.js";
import type { Logger } from "../logging.js";
import { createHostBlobServiceClient, type Services } from "../services.js";
import { RunCommandExecutor } from "../spire/runcommand/executor.js";

/*
 * The hung server's repair (#23): `docker restart` of the SPIRE server's container on its VM, as
 * one managed run-command under the VM's lock (the same blob lease the run-command SPIRE adapter
 * takes, so it never overlaps another run-command on the VM). Restart keeps the container and its
 * data dir; nothing here can remove either.
 */

/** One run-command executor for the server's VM (under its lock), for a container verb. */
async function vmExecutor(
  s: Services,
  log: Logger,
  env: NodeJS.ProcessEnv,
  what: string,
  namePrefix: string,
): Promise<RunCommandExecutor> {
  const { spire } = s.config;
  const vmRef = spire.vm;
  if (!vmRef) {
    throw new PermanentError(
      "NoServerVm",
      `${what} needs its VM: set SPIRE_VM_RESOURCE_GROUP and SPIRE_VM_NAME`,
    );
  }
  const storage = createHostBlobServiceClient(s.credential, env);
  return new RunCommandExecutor({
    ...(await vmRunCommandOptions(s.config, vmRef, s.compute, storage, log)),
    namePrefix,
  });
}

export async function restartServerContainer(
  s: Services,
  log: Logger,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ restarted: boolean; detail: string }> {
  const { spire } = s.config;
  const executor = await vmExecutor(s, log, env, "restarting a hung SPIRE server", "spire-autopilot-sweep");
  try {
    const [out] = await executor.runCalls([{ op: "server_container_restart" }]);
    if (!out) return { restarted: false, detail: "the run-command gave no output for docker restart" };
    const text = (out.exitCode === 0 ? out.stdout : out.stderr).trim().slice(0, 500);
    return out.exitCode === 0
      ? { restarted: true, detail: `docker restart ${spire.serverContainer}: ${text || "ok"}` }
      : { restarted: false, detail: `docker restart exited ${out.exitCode}: ${text}` };
  } finally {
    await executor.close();
  }
}

/**
 * The deploy's way back for an unreachable server over the API: `docker start` of its container
 * when docker says it is stopped (never rm; a running one is left alone), one run-command.
 */
export async function startServerContainer(
  s: Services,
  log: Logger,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ started: boolean; detail: string }> {
  const { spire } = s.config;
  const executor = await vmExecutor(s, log, env, "starting a stopped SPIRE server", "spire-autopilot-deploy");
  try {
    const [out] = await executor.runCalls([{ op: "server_container_start" }]);
    if (!out) return { started: false, detail: "the run-command gave no output for docker start" };
    const text = (out.exitCode === 0 ? out.stdout : out.stderr).trim().slice(0, 500);
    if (out.exitCode !== 0) return { started: false, detail: `docker start exited ${out.exitCode}: ${text}` };
    return text === "running"
      ? { started: false, detail: `${spire.serverContainer} is running; nothing started` }
      : { started: true, detail: `docker start ${spire.serverContainer}: ${text || "ok"}` };
  } finally {
    await executor.close();
  }
}
