import { ensureSpire } from "../../scripts/install-spire.js";
import { armRunCommandsClient } from "../../shared/azure/runcommands.js";
import { RunCommandSpireServer } from "../../shared/spire/runcommand/adapter.js";
import { spireServerContainer } from "../azure/compute/spire-container.js";
import { FAST_PROFILE, startAzureSimulator } from "../azure/index.js";
import { type SpireServerHandle, startSpireServer } from "../spire/index.js";
import type { Scenario } from "./types.js";

const TD = "sandbox.spire-autopilot.test";
const RG = "rg-spire";
const VM = "vm-spire-server";
const BATCHES = 20;
const seconds = (ms: number) => Math.round(ms / 10) / 100;

export const runcommandWedge: Scenario = {
  name: "runcommand-wedge",
  description: `Against the Azure simulator and a real spire-server: ${BATCHES} run-command adapter batches back to back on a fresh VM leave the wedge counter at 0; a naive client that deletes as soon as executionState says Succeeded wedges the VM (#20, #34).`,
  // A fresh machine builds SPIRE first (about 5 minutes on 2 cores).
  timeoutSeconds: 1_500,
  async run(ctx) {
    const started = Date.now();
    ctx.log("providing spire-server");
    const bins = await ensureSpire({ log: (l) => ctx.log(l) });
    let server: SpireServerHandle | undefined;
    const sim = await startAzureSimulator({
      // The VM stays "fresh" (guest agent settling) for the whole run: the cooldown rule always applies.
      profile: {
        ...FAST_PROFILE,
        vmFreshMs: 3_600_000,
        runCommandPickupMs: 50,
        provisioningLagMs: 250,
        wedgeCooldownMs: 300,
      },
      log: (l) => ctx.log(`simulator: ${l}`),
    });
    try {
      server = await startSpireServer({ trustDomain: TD, bins, logLevel: "INFO" });
      await sim.compute.addVm({ resourceGroup: RG, name: VM, spireServer: spireServerContainer(server) });
      const compute = sim.clients().compute;
      const adapter = new RunCommandSpireServer({
        client: armRunCommandsClient(compute),
        resourceGroup: RG,
        vmName: VM,
        location: "eastus",
        trustDomain: TD,
        pollIntervalMs: 100,
        cooldownMs: 400,
        timeoutSeconds: 60,
      });

      ctx.log(`adapter: ${BATCHES} batches (tokens for 5 apps each, health checks between)`);
      const adapterStarted = Date.now();
      let adapterTokens = 0;
      for (let i = 0; i < BATCHES; i++) {
        if (ctx.signal.aborted) throw new Error("aborted");
        if (i % 2 === 0) {
          const tokens = await adapter.createJoinTokens(
            ["a", "b", "c", "d", "e"].map((x) => `spiffe://${TD}/agent/batch${i}-${x}`),
            600,
          );
          adapterTokens += tokens.length;
        } else if (!(await adapter.health()).healthy) {
          throw new Error("the server reported unhealthy through the adapter");
        }
      }
      await adapter.close();
      const adapterWedges = sim.counters.wedges;
      const adapterSeconds = seconds(Date.now() - adapterStarted);
      ctx.log(
        `adapter: ${BATCHES} batches in ${adapterSeconds} s, ${adapterTokens} tokens, wedges ${adapterWedges}`,
      );

      ctx.log("naive client: create, poll executionState until Succeeded, delete at once");
      await new Promise((r) => setTimeout(r, 500)); // past the cooldown after the adapter's last delete
      const rc = compute.virtualMachineRunCommands;
      const source = { script: "docker exec spire-server /opt/spire/bin/spire-server healthcheck" };
      let naiveCompleted = 0;
      let naiveStuck = false;
      for (let i = 0; i < 3 && !naiveStuck; i++) {
        const name = `naive-${i}`;
        await rc.createOrUpdate(RG, VM, name, { location: "eastus", source }).submitted();
        const deadline = Date.now() + 5_000;
        let succeeded = false;
        while (Date.now() < deadline && !ctx.signal.aborted) {
          const v = await rc.getByVirtualMachine(RG, VM, name, { expand: "instanceView" });
          if (v.instanceView?.executionState === "Succeeded") {
            succeeded = true;
            break;
          }
          await new Promise((r) => setTimeout(r, 100));
        }
        if (!succeeded) {
          // What deploy.sh saw on a wedged VM: the poll loop never sees a result (#34).
          naiveStuck = true;
          ctx.log(`naive client: ${name} never reached Succeeded within 5 s: the VM agent is wedged`);
          break;
        }
        naiveCompleted += 1;
        await rc.delete(RG, VM, name).pollUntilDone({ abortSignal: ctx.signal });
      }
      const naiveWedges = sim.counters.wedges - adapterWedges;
      ctx.log(`naive client: ${naiveCompleted} run-command(s) completed, wedges ${naiveWedges}`);
      const counters = sim.counters.snapshot().runCommands;
      return {
        adapterBatches: BATCHES,
        adapterWedges,
        adapterTokens,
        adapterSeconds,
        naiveWedges,
        naiveCompleted,
        naiveStuck,
        runCommandsCreated: counters.created,
        blockedByWedge: counters.blockedByWedge,
        seconds: seconds(Date.now() - started),
        pass: adapterWedges === 0 && adapterTokens === (BATCHES / 2) * 5 && naiveWedges >= 1 && naiveStuck,
      };
    } finally {
      await sim.stop();
      await server?.dispose();
    }
  },
};
