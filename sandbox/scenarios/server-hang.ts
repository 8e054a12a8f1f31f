import { SANDBOX_SPIRE_VM } from "../environment.js";
import { pollUntil } from "../spire/index.js";
import { deployFleet } from "./fleet.js";
import { seconds, startSweepSandbox, sweepNow, sweepOperation, waitForSweep } from "./sweep-common.js";
import type { Scenario } from "./types.js";

/*
 * Learning #23: the SPIRE server process hangs (SIGSTOP: Docker still says running, the socket
 * accepts, nothing answers), and overnight every SVID expires. The sweep finds the API silent,
 * restarts the server's container by run-command (`docker restart`, never rm), waits for it to be
 * healthy, checks the CA is the one from before, and re-attests nobody: a hang is not the apps'
 * fault, and their agents renew by themselves once the server answers.
 */

const APPS = ["orders", "billing", "search"];
/** Long enough that no SVID can expire during detection and restart (renewed with >= 48 s left). */
const TTL_SECONDS = 120;

export const serverHang: Scenario = {
  name: "server-hang",
  description:
    "The SPIRE server process freezes (#23); the sweep restarts its container by run-command, checks the CA is unchanged and re-attests nobody.",
  timeoutSeconds: 400,
  async run(ctx) {
    const sb = await startSweepSandbox(ctx, {}, TTL_SECONDS);
    try {
      const rg = sb.settings.APPS_RESOURCE_GROUP!;
      await deployFleet(sb, APPS, ctx.log);
      const spireBefore = sb.spire.client();
      const rootsBefore = (await spireBefore.getBundle()).roots.map((r) => r.sha256Fingerprint).sort();
      await spireBefore.close();
      const first = await sweepNow(sb, "repair", ctx.signal);
      ctx.log(`first sweep: server ${first.output?.server.verdict}, ${JSON.stringify(first.output?.counts)}`);

      ctx.log("freezing the SPIRE server process (SIGSTOP)");
      const container = sb.azure.compute.vm(SANDBOX_SPIRE_VM.resourceGroup, SANDBOX_SPIRE_VM.name)
        .spireServer!;
      container.pause();
      const pausedAt = Date.now();

      const previous = first.output?.sweepId;
      const res = await fetch(`${sb.host.url}/api/sweep?code=${sb.host.keys.functionKeys.default}`, {
        method: "POST",
        body: "{}",
        headers: { "content-type": "application/json" },
      });
      if (res.status !== 202) throw new Error(`POST /api/sweep answered ${res.status}`);
      const detectedAt = await pollUntil(
        "the sweep to find the server hung",
        async () => {
          const op = await sweepOperation(sb);
          const st =
            op?.output?.sweepId === previous ? undefined : (op as unknown as { step?: string })?.step;
          return st && st !== "observe" ? Date.now() : undefined;
        },
        { timeoutMs: 120_000, intervalMs: 200, signal: ctx.signal },
      );
      const run = await waitForSweep(sb, previous, 300_000, ctx.signal);
      const recoveredAt = Date.now();
      const out = run.output;
      ctx.log(`sweep: ${JSON.stringify({ server: out?.server, outcome: out?.serverActionOutcome })}`);

      const spire = sb.spire.client();
      let svidsExpired = 0;
      let rootsAfter: string[] = [];
      try {
        rootsAfter = (await spire.getBundle()).roots.map((r) => r.sha256Fingerprint).sort();
        const now = Date.now();
        for (const a of await spire.listAgents())
          if ((a.x509SvidExpiresAt?.getTime() ?? 0) < now) svidsExpired++;
      } finally {
        await spire.close();
      }
      for (const app of APPS) {
        const svids = await sb.azure.containerApps.agent(rg, app).svids();
        svidsExpired += svids.filter((s) => s.notAfter.getTime() < Date.now()).length;
      }
      const reattestInstances = (
        await Promise.all(
          APPS.map(async (a) => {
            const r = await fetch(
              `${sb.host.url}/api/operations/reattest-${a}?code=${sb.host.keys.functionKeys.default}`,
            );
            return r.status === 200 ? 1 : 0;
          }),
        )
      ).reduce((x: number, y: number) => x + y, 0);
      const reattests = (out?.actions.length ?? 0) + reattestInstances;
      const caUnchanged = out?.caUnchanged === true && rootsAfter.join() === rootsBefore.join();
      return {
        detectedSeconds: seconds(detectedAt - pausedAt),
        recoveredSeconds: seconds(recoveredAt - pausedAt),
        verdict: out?.server.verdict,
        serverRestarts: out?.serverRestarts ?? 0,
        reattests,
        caUnchanged,
        svidsExpired,
        serverActionOutcome: out?.serverActionOutcome,
        pass:
          out?.server.verdict === "hung" &&
          out.serverRestarts === 1 &&
          reattests === 0 &&
          caUnchanged &&
          svidsExpired === 0,
      };
    } finally {
      await sb.stop();
    }
  },
};
