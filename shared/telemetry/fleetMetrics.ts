import { type Meter, metrics } from "@opentelemetry/api";

/*
 * The sweep's figures as OpenTelemetry metrics, where Azure users alert: per app the seconds until
 * its agent SVID and its workload SVID expire (computed when the metric is collected, so the
 * gauge keeps counting down between sweeps), its verdict, and the repairs made. Alert "expires
 * within 1 h" as spire_autopilot.agent_svid.remaining < 3600, the counterpart of cert-manager's
 * certmanager_certificate_expiration_timestamp_seconds.
 */

export const METER_NAME = "spire-autopilot";

export const METRIC = {
  agentSvidRemaining: "spire_autopilot.agent_svid.remaining",
  workloadSvidRemaining: "spire_autopilot.workload_svid.remaining",
  verdict: "spire_autopilot.app.verdict",
  repairs: "spire_autopilot.repairs",
} as const;

export interface SweptApp {
  app: string;
  verdict: string;
  agentExpiresAt?: Date | string;
  workloadExpiresAt?: Date | string;
}

export interface Repair {
  app: string;
  /** What was done, e.g. "reattest", "restart-server". */
  action: string;
}

export interface FleetMetrics {
  /** The sweep's verdicts replace the previous sweep's: an app no longer swept stops reporting. */
  recordSweep(apps: SweptApp[], repairs: Repair[]): void;
  /** Repairs made after the verdicts were recorded (the sweep records its verdicts before it acts). */
  recordRepairs(repairs: Repair[]): void;
}

const epoch = (t: Date | string | undefined) => {
  if (t === undefined) return undefined;
  const ms = new Date(t).getTime();
  return Number.isNaN(ms) ? undefined : ms;
};

/** Pure: what each gauge reports for one sweep's apps at `now`. */
export function gaugeValues(apps: SweptApp[], now: number) {
  const remaining = (t: Date | string | undefined) => {
    const ms = epoch(t);
    return ms === undefined ? undefined : Math.round((ms - now) / 1000);
  };
  return apps.map((a) => ({
    app: a.app,
    verdict: a.verdict,
    agentSeconds: remaining(a.agentExpiresAt),
    workloadSeconds: remaining(a.workloadExpiresAt),
    /** 1 when healthy, 0 otherwise: one series per app that an alert can watch. */
    healthy: a.verdict === "healthy" ? 1 : 0,
  }));
}

export function createFleetMetrics(
  meter: Meter = metrics.getMeter(METER_NAME),
  now: () => number = Date.now,
): FleetMetrics {
  let latest: SweptApp[] = [];
  const agent = meter.createObservableGauge(METRIC.agentSvidRemaining, {
    unit: "s",
    description: "Seconds until the app's SPIRE agent SVID expires (negative: expired)",
  });
  const workload = meter.createObservableGauge(METRIC.workloadSvidRemaining, {
    unit: "s",
    description: "Seconds until the app's workload SVID expires (negative: expired)",
  });
  const verdict = meter.createObservableGauge(METRIC.verdict, {
    description: "1 when the app's last sweep verdict is healthy, else 0; the verdict is an attribute",
  });
  const repairs = meter.createCounter(METRIC.repairs, {
    description: "Repairs the sweep made, by app and action",
  });
  meter.addBatchObservableCallback(
    (observer) => {
      for (const g of gaugeValues(latest, now())) {
        const attributes = { app: g.app };
        if (g.agentSeconds !== undefined) observer.observe(agent, g.agentSeconds, attributes);
        if (g.workloadSeconds !== undefined) observer.observe(workload, g.workloadSeconds, attributes);
        observer.observe(verdict, g.healthy, { ...attributes, verdict: g.verdict });
      }
    },
    [agent, workload, verdict],
  );
  return {
    recordSweep(apps, made) {
      latest = apps.map((a) => ({ ...a }));
      for (const r of made) repairs.add(1, { app: r.app, action: r.action });
    },
    recordRepairs(made) {
      for (const r of made) repairs.add(1, { app: r.app, action: r.action });
    },
  };
}

let shared: FleetMetrics | undefined;

/**
 * The process's one FleetMetrics, on the global meter provider (the distro's, once setup.ts ran):
 * what the sweep's record activity calls with its verdicts and repairs.
 */
export function getFleetMetrics(): FleetMetrics {
  shared ??= createFleetMetrics();
  return shared;
}
