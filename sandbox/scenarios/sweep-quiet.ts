import { deployFleet } from "./fleet.js";
import { startSweepSandbox, sweepNow } from "./sweep-common.js";
import type { Scenario } from "./types.js";

/*
 * A healthy fleet swept ten times: every app healthy every time, nothing repaired, and the same
 * handful of calls per sweep (they grow with pages, not apps).
 */

const APPS = ["orders", "billing", "search"];
const SWEEPS = 10;

export const sweepQuiet: Scenario = {
  name: "sweep-quiet",
  description: `A healthy fleet of ${APPS.length} apps swept ${SWEEPS} times: nothing is repaired; the calls per sweep are reported.`,
  timeoutSeconds: 300,
  async run(ctx) {
    const sb = await startSweepSandbox(ctx);
    try {
      await deployFleet(sb, APPS, ctx.log);
      let repairs = 0;
      let healthySweeps = 0;
      const callsSeen = new Set<string>();
      let callsPerSweep: Record<string, number> = {};
      const verdicts: string[] = [];
      for (let i = 0; i < SWEEPS; i++) {
        const run = await sweepNow(sb, "repair", ctx.signal);
        const out = run.output;
        if (!out) throw new Error(`sweep ${i + 1} ended ${run.runtimeStatus} without output`);
        repairs += out.actions.length + out.serverRestarts;
        if (out.server.verdict === "healthy" && out.counts.healthy === APPS.length) healthySweeps++;
        else
          verdicts.push(
            `${i + 1}: server ${out.server.verdict}, ${JSON.stringify(out.counts)} ${out.problems.join("; ")}`,
          );
        callsPerSweep = out.calls;
        callsSeen.add(JSON.stringify(out.calls));
        ctx.log(`sweep ${i + 1}: server ${out.server.verdict}, ${JSON.stringify(out.counts)}`);
      }
      return {
        sweeps: SWEEPS,
        healthySweeps,
        repairs,
        callsPerSweep,
        callsSameEverySweep: callsSeen.size === 1,
        notHealthy: verdicts,
        pass: repairs === 0 && healthySweeps === SWEEPS && callsSeen.size === 1,
      };
    } finally {
      await sb.stop();
    }
  },
};
