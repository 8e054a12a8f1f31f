import { X509Certificate } from "node:crypto";
import { SANDBOX_SPIRE_VM } from "../environment.js";
import { pollUntil } from "../spire/index.js";
import { deployFleet } from "./fleet.js";
import { seconds, startSweepSandbox, sweepNow } from "./sweep-common.js";
import type { Scenario } from "./types.js";

/*
 * Learning #25: the SPIRE server's container is removed and run again with an empty data dir, so
 * the server starts over with a new CA and an empty datastore; every agent's identity is now
 * worthless. The sweep sees none of Key Vault's roots in the server's bundle (ca-reset) and runs the
 * deploy workflow, which rotates the bundle, puts the workload entries back and re-attests every
 * app, paced at SPIRE's attestation rate limit; every workload SVID then chains to the new CA
 * (checked here from each agent's Workload API, independently of the sweep's own check).
 */

const APPS = ["orders", "billing", "search"];
/** Long enough that the old agents are still running when the re-attestations replace them. */
const TTL_SECONDS = 120;

const WIPE = [
  "set -e",
  "docker rm -f spire-server",
  "docker run -d --name spire-server --restart unless-stopped ghcr.io/spiffe/spire-server:1.15.3 -config /opt/spire/conf/server/server.conf",
].join("\n");

export const serverRemoved: Scenario = {
  name: "server-removed",
  description:
    "The SPIRE server's container is removed and run again with an empty data dir (#25); the sweep finds ca-reset, rotates the bundle and re-attests every app onto the new CA.",
  timeoutSeconds: 600,
  async run(ctx) {
    const sb = await startSweepSandbox(ctx, {}, TTL_SECONDS);
    try {
      const rg = sb.settings.APPS_RESOURCE_GROUP!;
      await deployFleet(sb, APPS, ctx.log);
      const first = await sweepNow(sb, "repair", ctx.signal);
      ctx.log(`first sweep: server ${first.output?.server.verdict}, ${JSON.stringify(first.output?.counts)}`);

      ctx.log("removing the spire-server container and running a fresh one (data dir and CA gone)");
      const { compute } = sb.azure.clients();
      const { resourceGroup, name } = SANDBOX_SPIRE_VM;
      const removedAt = Date.now();
      const vm = await compute.virtualMachines.get(resourceGroup, name);
      await compute.virtualMachineRunCommands
        .createOrUpdate(resourceGroup, name, "recreate-spire-server", {
          location: vm.location,
          source: { script: WIPE },
          timeoutInSeconds: 120,
        })
        .pollUntilDone({ abortSignal: ctx.signal });
      await pollUntil(
        "the recreate run-command to finish",
        async () => {
          const rc = await compute.virtualMachineRunCommands.getByVirtualMachine(
            resourceGroup,
            name,
            "recreate-spire-server",
            { expand: "instanceView" },
          );
          const state = rc.instanceView?.executionState;
          return state && !["Pending", "Running", "Unknown"].includes(state) ? state : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 250, signal: ctx.signal },
      );
      await compute.virtualMachineRunCommands
        .delete(resourceGroup, name, "recreate-spire-server")
        .pollUntilDone({ abortSignal: ctx.signal });
      await sb.spire.waitHealthy(30_000);

      const run = await sweepNow(sb, "repair", ctx.signal, 540_000);
      const recoveredAt = Date.now();
      const out = run.output;
      ctx.log(
        `sweep: ${JSON.stringify({ server: out?.server, outcome: out?.serverActionOutcome, actions: out?.actions })}`,
      );

      // Every app's workload SVID, from its agent's Workload API, must chain to a root of the
      // server's new bundle.
      const spire = sb.spire.client();
      let roots: X509Certificate[] = [];
      try {
        roots = (await spire.getBundle()).roots.map((r) => new X509Certificate(r.pem));
      } finally {
        await spire.close();
      }
      let chained = 0;
      for (const app of APPS) {
        const svids = await sb.azure.containerApps.agent(rg, app).svids();
        const workload = svids.find((s) => s.spiffeId.includes("/ests/"));
        const chain = workload?.certChainDer.map((d) => new X509Certificate(d)) ?? [];
        const top = chain.at(-1);
        if (top && roots.some((root) => top.checkIssued(root) && top.verify(root.publicKey))) chained++;
      }
      const appsReattested = out?.actions.filter((a) => a.outcome === "succeeded").length ?? 0;
      return {
        verdict: out?.server.verdict,
        appsReattested,
        allChainToNewCa: chained === APPS.length,
        secondsToRecovered: seconds(recoveredAt - removedAt),
        entriesRestored: out?.entriesRestored,
        sweepChainsToNewCa: out?.chainsToNewCa,
        serverActionOutcome: out?.serverActionOutcome,
        pass: out?.server.verdict === "ca-reset" && appsReattested === APPS.length && chained === APPS.length,
      };
    } finally {
      await sb.stop();
    }
  },
};
