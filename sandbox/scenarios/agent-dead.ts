import { deployFleet } from "./fleet.js";
import { countTokenLeaks } from "./replica-restart.js";
import { latestRevisions, seconds, startSweepSandbox, sweepNow, verdictEvents } from "./sweep-common.js";
import type { Scenario } from "./types.js";

/*
 * Learning #18: the spire-agent process inside one replica stops (SIGSTOP: the seed's `kill -0`
 * monitor still passes and the container looks healthy), so its SVIDs stop renewing while the app
 * keeps running. The sweep sees the agent's own SVID miss its renewal (ListAgents' expiry), calls
 * it agent-silent and re-attests that app only.
 */

const APPS = ["orders", "billing", "search"];
const VICTIM = "billing";
/** Sweeps back to back; the agent's renewal is due within 0.6 × 60 s + 10 s of its last one. */
const DETECT_TIMEOUT_MS = 150_000;

export const agentDead: Scenario = {
  name: "agent-dead",
  description:
    "The spire-agent of one replica freezes while its container keeps running (#18); the sweep finds it agent-silent and re-attests that app only.",
  timeoutSeconds: 400,
  async run(ctx) {
    const sb = await startSweepSandbox(ctx);
    try {
      const rg = sb.settings.APPS_RESOURCE_GROUP!;
      await deployFleet(sb, APPS, ctx.log);
      const first = await sweepNow(sb, "repair", ctx.signal);
      ctx.log(`first sweep: ${JSON.stringify(first.output?.counts)}`);
      const before = await latestRevisions(sb, APPS);
      const deployTokens = (
        await Promise.all(
          APPS.map(
            async (a) =>
              (
                await sb.azure.clients().containerApps.containerApps.listSecrets(rg, a)
              ).value?.find((x) => x.name === "join-token")?.value ?? "",
          ),
        )
      ).filter(Boolean);

      ctx.log(`freezing the spire-agent of ${VICTIM} (its container keeps running)`);
      sb.azure.containerApps.agent(rg, VICTIM).pause();
      const pausedAt = Date.now();

      let repairSweep: Awaited<ReturnType<typeof sweepNow>> | undefined;
      let sweeps = 0;
      while (Date.now() - pausedAt < DETECT_TIMEOUT_MS) {
        const run = await sweepNow(sb, "repair", ctx.signal, 900_000);
        sweeps++;
        const acted = run.output?.actions.find((a) => a.app === VICTIM);
        if (acted) {
          repairSweep = run;
          break;
        }
        const stray = run.output?.actions ?? [];
        if (stray.length > 0) ctx.log(`a sweep repaired ${stray.map((a) => a.app).join(", ")}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
      const repairedAt = Date.now();
      const action = repairSweep?.output?.actions.find((a) => a.app === VICTIM);
      ctx.log(`repair: ${JSON.stringify(action)}`);
      const events = await verdictEvents(sb);
      const detected = events.find(
        (e) => e.app === VICTIM && e.to !== "healthy" && Date.parse(e.at) >= pausedAt,
      );
      const after = await latestRevisions(sb, APPS);
      // Join tokens (old and new) must appear nowhere the sweep writes: logs, durable state.
      const { containerApps } = sb.azure.clients();
      const apps = await Promise.all(APPS.map((a) => containerApps.containerApps.get(rg, a)));
      const tokens = (
        await Promise.all(
          APPS.map(
            async (a) =>
              (
                await containerApps.containerApps.listSecrets(rg, a)
              ).value?.find((x) => x.name === "join-token")?.value ?? "",
          ),
        )
      ).filter(Boolean);
      const tokenLeaks = countTokenLeaks(sb, [...deployTokens, ...tokens], apps, ctx.workDir);
      const otherAppsTouched = APPS.filter((a) => a !== VICTIM && after.get(a) !== before.get(a)).length;
      const otherActions = (repairSweep?.output?.actions ?? []).filter((a) => a.app !== VICTIM).length;
      const detectedAt = detected ? Date.parse(detected.at) : undefined;
      const dueAt = detected?.dueAt ? Date.parse(detected.dueAt) : undefined;
      const verdict = detected?.to ?? "not detected";
      return {
        detectedSeconds: detectedAt ? seconds(detectedAt - pausedAt) : null,
        // Positive: found after the renewal was due (never before: no false alarm on a slow renewal).
        detectedAfterRenewalDue: detectedAt && dueAt ? seconds(detectedAt - dueAt) : null,
        repairedSeconds: seconds(repairedAt - pausedAt),
        verdict,
        repairOutcome: action?.outcome ?? "none",
        svidSigned: action?.svidSigned,
        victimRevisionChanged: after.get(VICTIM) !== before.get(VICTIM),
        otherAppsTouched: otherAppsTouched + otherActions,
        sweeps,
        tokenLeaks,
        pass:
          tokenLeaks === 0 &&
          verdict === "agent-silent" &&
          action?.verdict === "agent-silent" &&
          action.outcome === "succeeded" &&
          after.get(VICTIM) !== before.get(VICTIM) &&
          detectedAt !== undefined &&
          dueAt !== undefined &&
          detectedAt >= dueAt &&
          otherAppsTouched + otherActions === 0,
      };
    } finally {
      await sb.stop();
    }
  },
};
