import { pollUntil } from "../spire/index.js";
import { fleetAppSpec } from "./fleet.js";
import { operation, startFleetSandbox } from "./replica-restart.js";
import type { Scenario } from "./types.js";

/*
 * One join token cannot serve several replicas: an app that scales to 3 runs 3 real agents on the
 * same token, and all but the first crash-loop on it. spire-autopilot must refuse such an app,
 * saying how to fix it, and never touch it (a re-attestation would only hand the next spent token
 * to the same crash loop).
 */

const APP = "wide";
const FIX = "set minReplicas = maxReplicas = 1";

export const multiReplica: Scenario = {
  name: "multi-replica",
  description: `An app scaled 1..3 crash-loops on its one join token; spire-autopilot refuses it ("${FIX}") and never touches it.`,
  timeoutSeconds: 600,
  async run(ctx) {
    const sb = await startFleetSandbox(ctx);
    try {
      const rg = sb.settings.APPS_RESOURCE_GROUP!;
      const { containerApps } = sb.azure.clients();
      const spire = sb.spire.client();
      let token: string;
      let bundle: string;
      try {
        bundle = (await spire.getBundle()).pem;
        const [created] = await spire.createJoinTokens(
          [`spiffe://${sb.settings.SPIRE_TRUST_DOMAIN}/agent/${APP}`],
          600,
        );
        token = created!.value;
      } finally {
        await spire.close();
      }
      const spec = fleetAppSpec(sb, APP, token, bundle);
      spec.template!.scale = { minReplicas: 1, maxReplicas: 3 };
      await containerApps.containerApps.createOrUpdate(rg, APP, spec).pollUntilDone();
      const deployed = await containerApps.containerApps.get(rg, APP);
      const revision = deployed.latestRevisionName!;
      ctx.log(`deployed ${APP} (1..3 replicas); load scales it out to 3`);
      sb.azure.containerApps.setDemand(rg, APP, 3);

      const sidecar = `${APP}-spiffe-proxy`;
      const restarts = await pollUntil(
        "replicas 2 and 3 to crash-loop on the spent token",
        async () => {
          const reps =
            (await containerApps.containerAppsRevisionReplicas.listReplicas(rg, APP, revision)).value ?? [];
          const counts = reps
            .map((r) => r.containers?.find((c) => c.name === sidecar))
            .map((c) => ({ ready: c?.ready === true, restarts: c?.restartCount ?? 0 }))
            .sort((a, b) => a.restarts - b.restarts);
          return counts.length === 3 && counts[0]!.ready && counts[1]!.restarts > 0 && counts[2]!.restarts > 0
            ? counts.map((c) => c.restarts)
            : undefined;
        },
        { timeoutMs: 120_000, intervalMs: 500, signal: ctx.signal },
      );
      ctx.log(`sidecar restart counts per replica: ${restarts.join(", ")}`);

      const putsBefore = sb.azure.counters.snapshot().containerApps.puts;
      const res = await fetch(
        `${sb.host.url}/api/apps/${APP}/reattest?code=${sb.host.keys.functionKeys.default}`,
        {
          method: "POST",
          body: JSON.stringify({ reason: "scenario" }),
          headers: { "content-type": "application/json" },
        },
      );
      const answer = (await res.json().catch(() => ({}))) as { error?: string };
      ctx.log(`POST /api/apps/${APP}/reattest answered ${res.status}: ${answer.error ?? ""}`);
      // The crash loop's alert fires too; the webhook must refuse the app the same way.
      const forApp = () =>
        sb.services.alerts.notifications.filter(
          (n) => n.monitorCondition === "Fired" && n.dimensions.some((d) => d.value === APP) && n.deliveries,
        );
      await pollUntil(
        "the crash loop's alert to be delivered",
        async () => (forApp().length > 0 ? true : undefined),
        {
          timeoutMs: 120_000,
          intervalMs: 500,
          signal: ctx.signal,
        },
      ).catch(() => undefined);
      const alertAnswers = forApp().flatMap((n) =>
        n.deliveries!.flatMap((d) => d.attempts.map((a) => a.status)),
      );
      ctx.log(`the alert for ${APP} was answered: ${alertAnswers.join(", ") || "(no alert fired)"}`);
      const putsToRefusedApp = sb.azure.counters.snapshot().containerApps.puts - putsBefore;
      const after = await containerApps.containerApps.get(rg, APP);
      const runStarted = (await operation(sb, `reattest-${APP}`)) !== undefined;
      const refused = res.status === 422 && (answer.error ?? "").includes(FIX);
      return {
        refused,
        status: res.status,
        reason: answer.error,
        putsToRefusedApp,
        runStarted,
        revisionUnchanged: after.latestRevisionName === revision,
        sidecarRestartsPerReplica: restarts,
        alertAnswers,
        pass:
          refused &&
          putsToRefusedApp === 0 &&
          !runStarted &&
          alertAnswers.every((status) => status === 422) &&
          after.latestRevisionName === revision &&
          restarts.filter((n) => n > 0).length === 2,
      };
    } finally {
      await sb.stop();
    }
  },
};
