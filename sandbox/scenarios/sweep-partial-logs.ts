import { deployFleet } from "./fleet.js";
import { fleetRows, startSweepSandbox, sweepNow } from "./sweep-common.js";
import type { Scenario } from "./types.js";

/*
 * Log Analytics answers PartialError (its result was cut): the rows present may lack exactly the
 * signing that proves an app healthy, so the sweep must conclude nothing from them. One agent is
 * frozen first, so there IS something to repair: with partial logs the sweep reports every app
 * unknown and starts nothing; with the logs whole again the next sweep repairs that app (the
 * control that shows the rail, not an empty fleet, held the repair back).
 */

const APPS = ["orders", "billing", "search"];
const VICTIM = "search";
const FULL_ROWS = 500_000;

export const sweepPartialLogs: Scenario = {
  name: "sweep-partial-logs",
  description:
    "Log Analytics answers PartialError while one agent is dead: the sweep reports unknown and starts nothing; once the logs are whole it repairs the app.",
  timeoutSeconds: 300,
  async run(ctx) {
    const sb = await startSweepSandbox(ctx);
    try {
      const rg = sb.settings.APPS_RESOURCE_GROUP!;
      await deployFleet(sb, APPS, ctx.log);
      sb.azure.containerApps.agent(rg, VICTIM).pause();
      ctx.log(`froze the agent of ${VICTIM}; observing until its renewal is overdue`);
      const deadline = Date.now() + 120_000;
      let seen = "";
      while (Date.now() < deadline && seen !== "agent-silent") {
        await sweepNow(sb, "observe", ctx.signal);
        seen = (await fleetRows(sb)).get(VICTIM)?.verdict ?? "";
        if (seen !== "agent-silent") await new Promise((r) => setTimeout(r, 2000));
      }
      ctx.log(`observed ${VICTIM}: ${seen}`);

      ctx.log("Log Analytics now cuts every result (PartialError)");
      sb.services.logsApi.setMaxRows(1);
      const partial = await sweepNow(sb, "repair", ctx.signal);
      const p = partial.output;
      const rows = await fleetRows(sb);
      const unknownApps = APPS.filter((a) => rows.get(a)?.verdict === "unknown").length;
      ctx.log(`partial sweep: ${JSON.stringify({ counts: p?.counts, problems: p?.problems })}`);

      sb.services.logsApi.setMaxRows(FULL_ROWS);
      const control = await sweepNow(sb, "repair", ctx.signal, 600_000);
      const repaired =
        control.output?.actions.filter((a) => a.app === VICTIM && a.outcome === "succeeded").length ?? 0;
      const repairsStarted = (p?.actions.length ?? 0) + (p?.serverRestarts ?? 0);
      return {
        repairsStarted,
        unknownApps,
        partialReported: (p?.problems ?? []).some((x) => x.includes("PartialError")),
        victimBeforePartial: seen,
        controlRepairs: repaired,
        pass:
          repairsStarted === 0 &&
          seen === "agent-silent" &&
          unknownApps === APPS.length &&
          (p?.problems ?? []).some((x) => x.includes("PartialError")) &&
          repaired === 1,
      };
    } finally {
      await sb.stop();
    }
  },
};
