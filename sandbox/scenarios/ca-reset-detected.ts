import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { SandboxCredential } from "../../shared/azure/credential.js";
import { loadConfig } from "../../shared/config.js";
import { createFleetTableClient } from "../../shared/services.js";
import { listCaResets, readLastRotation } from "../../shared/trust/ledger.js";
import { SANDBOX_SPIRE_VM, startSandbox } from "../environment.js";
import { pollUntil } from "../spire/index.js";
import { rotateNow } from "./bundle.js";
import type { Scenario } from "./types.js";

/*
 * Learning #25: someone recreates the SPIRE server's container and its data dir (datastore, CA
 * keys) is gone, so the server starts over with a new self-signed CA. Done here as it happens on
 * the VM: a run-command that runs `docker rm -f` and `docker run` on the simulated VM. The next
 * rotation finds none of Key Vault's roots in the server's bundle, writes the new bundle and
 * records a `ca-reset` event with both sets of roots in the fleet table.
 */

// No scheduled run may interleave with the scripted ones: once a year, at New Year.
const NEVER_DURING_THE_RUN = "0 0 0 1 1 *";

const WIPE = [
  "set -e",
  "docker rm -f spire-server",
  "docker run -d --name spire-server --restart unless-stopped ghcr.io/spiffe/spire-server:1.15.3 -config /opt/spire/conf/server/server.conf",
].join("\n");

export const caReset: Scenario = {
  name: "ca-reset-detected",
  description:
    "The SPIRE server's container is recreated (docker rm + docker run on the VM: data dir and CA gone); the next rotation writes the new bundle and records a ca-reset.",
  timeoutSeconds: 240,
  async run(ctx) {
    const sb = await startSandbox({
      stateDir: ctx.workDir,
      port: 0,
      timeScale: 1,
      echoHost: false,
      log: (m) => ctx.log(m),
      settings: { BUNDLE_ROTATION_SCHEDULE: NEVER_DURING_THE_RUN },
    });
    try {
      const first = await rotateNow(sb, "deploy", ctx.signal);
      ctx.log(`first rotation: ${first.output.action} in ${first.seconds} s`);
      const unchanged = await rotateNow(sb, "check", ctx.signal);
      ctx.log(`second rotation: ${unchanged.output.action} in ${unchanged.seconds} s`);

      ctx.log("recreating the spire-server container on the VM (its data dir and CA are destroyed)");
      const { compute } = sb.azure.clients();
      const { resourceGroup, name } = SANDBOX_SPIRE_VM;
      const vm = await compute.virtualMachines.get(resourceGroup, name);
      await compute.virtualMachineRunCommands
        .createOrUpdate(resourceGroup, name, "recreate-spire-server", {
          location: vm.location,
          source: { script: WIPE },
          timeoutInSeconds: 120,
        })
        .pollUntilDone({ abortSignal: ctx.signal });
      const view = await pollUntil(
        "the run-command to finish",
        async () => {
          const rc = await compute.virtualMachineRunCommands.getByVirtualMachine(
            resourceGroup,
            name,
            "recreate-spire-server",
            { expand: "instanceView" },
          );
          const state = rc.instanceView?.executionState;
          return state && !["Pending", "Running", "Unknown"].includes(state) ? rc.instanceView : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 250, signal: ctx.signal },
      );
      if (view?.executionState !== "Succeeded") {
        throw new Error(
          `the recreate run-command ended ${view?.executionState}: ${view?.error ?? view?.output}`,
        );
      }
      await compute.virtualMachineRunCommands
        .delete(resourceGroup, name, "recreate-spire-server")
        .pollUntilDone({ abortSignal: ctx.signal });
      await sb.spire.waitHealthy(30_000);

      const reset = await rotateNow(sb, "after the VM maintenance", ctx.signal);
      ctx.log(`rotation after the reset: ${reset.output.action} in ${reset.seconds} s`);

      const config = loadConfig(sb.settings);
      const table = createFleetTableClient(config, new SandboxCredential(), sb.settings);
      const events = await listCaResets(table);
      const last = await readLastRotation(table);
      const key = sb.host.keys.functionKeys.default;
      const status = (await (await fetch(`${sb.host.url}/api/bundle?code=${key}`)).json()) as {
        match: boolean | null;
        vault: { version?: string } | null;
      };

      // Durable history, customStatus and outputs carry fingerprints, never the bundle's PEM.
      const instances = join(ctx.workDir, "host", "instances");
      const pemInDurableState = readdirSync(instances)
        .map((f) => readFileSync(join(instances, f), "utf8"))
        .filter((text) => text.includes("BEGIN CERTIFICATE")).length;

      const out = reset.output;
      const event = events.at(-1);
      const caResetDetected =
        out.action === "ca-reset" &&
        out.caReset !== undefined &&
        out.caReset.vaultRoots.every((f) => !out.caReset!.serverRoots.includes(f)) &&
        events.length === 1 &&
        event !== undefined &&
        event.vaultFingerprints.join() === out.caReset.vaultRoots.join() &&
        event.serverFingerprints.join() === out.caReset.serverRoots.join();
      return {
        caResetDetected,
        actions: [first.output.action, unchanged.output.action, out.action],
        versions: [first.output.version, unchanged.output.version, out.version],
        caResetEvents: events.length,
        lastCaResetAt: last?.lastCaResetAt,
        statusMatch: status.match,
        rotationSeconds: { first: first.seconds, unchanged: unchanged.seconds, reset: reset.seconds },
        stepSeconds: out.stepSeconds,
        pemInDurableState,
        spireApi: sb.settings.SPIRE_API,
        pass:
          caResetDetected &&
          pemInDurableState === 0 &&
          first.output.action === "first-write" &&
          unchanged.output.action === "unchanged" &&
          unchanged.output.version === first.output.version &&
          out.version !== first.output.version &&
          last?.lastCaResetAt !== undefined &&
          status.match === true &&
          status.vault?.version === out.version,
      };
    } finally {
      await sb.stop();
    }
  },
};
