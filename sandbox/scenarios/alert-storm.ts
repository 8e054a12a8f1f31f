import { deployFleet } from "./fleet.js";
import { operation, startFleetSandbox, waitForOperation } from "./replica-restart.js";
import type { Scenario } from "./types.js";

/*
 * Action groups retry and alert rules re-fire: the same alert delivered 50 times within a minute,
 * 10 at a time, must start exactly one re-attestation.
 */

const APP = "storm";
const DELIVERIES = 50;
const BURST = 10;

function firedAlert(app: string) {
  return {
    schemaId: "azureMonitorCommonAlertSchema",
    data: {
      essentials: {
        alertId: `/subscriptions/00000000-0000-4000-8000-000000000000/providers/Microsoft.AlertsManagement/alerts/storm-${app}`,
        alertRule: "spire-agent-attestation-failures",
        severity: "Sev1",
        signalType: "Log",
        monitorCondition: "Fired",
        monitoringService: "Log Alerts V2",
        firedDateTime: new Date().toISOString(),
      },
      alertContext: {
        conditionType: "LogQueryCriteria",
        condition: {
          windowSize: "PT5M",
          allOf: [
            {
              dimensions: [{ name: "ContainerAppName", value: app }],
              metricValue: 4,
              operator: "GreaterThan",
            },
          ],
        },
      },
    },
  };
}

export const alertStorm: Scenario = {
  name: "alert-storm",
  description: `The same alert delivered ${DELIVERIES} times within a minute starts exactly one re-attestation.`,
  timeoutSeconds: 1_500,
  async run(ctx) {
    const sb = await startFleetSandbox(ctx);
    try {
      await deployFleet(sb, [APP], ctx.log);
      const url = `${sb.host.url}/api/alerts?code=${sb.host.keys.functionKeys.default}`;
      const body = JSON.stringify(firedAlert(APP));
      const counts = { started: 0, alreadyRunning: 0, coolingDown: 0, other: 0 };
      const started = Date.now();
      for (let sent = 0; sent < DELIVERIES; sent += BURST) {
        const answers = await Promise.all(
          Array.from({ length: BURST }, async () => {
            const res = await fetch(url, {
              method: "POST",
              body,
              headers: { "content-type": "application/json" },
            });
            return res.status === 202 ? ((await res.json()) as Record<string, string[]>) : undefined;
          }),
        );
        for (const a of answers) {
          if (!a) counts.other++;
          else if (a.started?.includes(APP)) counts.started++;
          else if (a.alreadyRunning?.includes(APP)) counts.alreadyRunning++;
          else if (a.coolingDown?.includes(APP)) counts.coolingDown++;
          else counts.other++;
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
      const deliverySeconds = Math.round((Date.now() - started) / 100) / 10;
      ctx.log(`delivered ${DELIVERIES} alerts in ${deliverySeconds} s: ${JSON.stringify(counts)}`);
      const op = (await operation(sb, `reattest-${APP}`))
        ? await waitForOperation(sb, `reattest-${APP}`, 600_000, ctx.signal)
        : undefined;
      return {
        deliveries: DELIVERIES,
        deliverySeconds,
        runs: counts.started,
        ...counts,
        outcome: op?.output?.outcome ?? op?.runtimeStatus ?? "none",
        pass:
          counts.started === 1 &&
          counts.other === 0 &&
          deliverySeconds < 60 &&
          op?.output?.outcome === "succeeded",
      };
    } finally {
      await sb.stop();
    }
  },
};
