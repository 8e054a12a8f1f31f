import { runTwoHosts } from "../spire/runcommand-hosts.js";
import type { Scenario } from "./types.js";

const seconds = (ms: number) => Math.round(ms / 10) / 100;

export const runcommandTwoHosts: Scenario = {
  name: "runcommand-two-hosts",
  description:
    "Two host processes re-attest 6 apps in run-command mode against one simulated VM: the per-VM blob lease (Azurite) keeps one run-command at a time, the VM never wedges, and no join token or private key is readable from anything ARM served or was sent.",
  // A fresh machine builds SPIRE first (about 5 minutes on 2 cores); the run itself is ~40 s.
  timeoutSeconds: 1_500,
  async run(ctx) {
    const started = Date.now();
    const r = await runTwoHosts({ workDir: ctx.workDir, log: ctx.log, signal: ctx.signal });
    for (const h of r.hosts)
      ctx.log(`host ${h.host}: exit ${h.exitCode}, ${h.apps} apps in ${seconds(h.ms)} s`);
    const hostsOk = r.hosts.every((h) => h.exitCode === 0 && h.error === undefined);
    return {
      maxConcurrentRunCommands: r.maxConcurrentRunCommands,
      wedges: r.wedges,
      secretsInArm: r.secretsInArm,
      apps: r.apps,
      runCommands: r.runCommandsCreated,
      armResponsesScanned: r.runCommandResponsesScanned,
      seconds: seconds(Date.now() - started),
      pass:
        hostsOk && r.apps === 6 && r.maxConcurrentRunCommands === 1 && r.wedges === 0 && r.secretsInArm === 0,
    };
  },
};
