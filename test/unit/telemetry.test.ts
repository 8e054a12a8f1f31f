import { metrics } from "@opentelemetry/api";
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";
import { afterEach, describe, expect, it } from "vitest";
import { createFleetMetrics, gaugeValues, METRIC } from "../../shared/telemetry/fleetMetrics.js";
import { startTelemetry, stopTelemetry } from "../../shared/telemetry/setup.js";

const NOW = Date.parse("2026-03-01T12:00:00Z");

describe("gaugeValues", () => {
  it.each([
    [
      {
        app: "a",
        verdict: "healthy",
        agentExpiresAt: "2026-03-01T13:00:00Z",
        workloadExpiresAt: "2026-03-01T12:30:00Z",
      },
      { agentSeconds: 3600, workloadSeconds: 1800, healthy: 1 },
    ],
    [
      { app: "b", verdict: "agent-silent", agentExpiresAt: new Date("2026-03-01T11:59:00Z") },
      { agentSeconds: -60, workloadSeconds: undefined, healthy: 0 },
    ],
    [
      { app: "c", verdict: "unknown", agentExpiresAt: "garbage" },
      { agentSeconds: undefined, healthy: 0 },
    ],
  ])("%j → %j", (app, expected) => {
    expect(gaugeValues([app], NOW)[0]).toMatchObject(expected);
  });
});

describe("fleet metrics through an in-memory exporter", () => {
  let provider: MeterProvider | undefined;
  afterEach(async () => provider?.shutdown());

  async function collect(record: (m: ReturnType<typeof createFleetMetrics>) => void, now: () => number) {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    provider = new MeterProvider({ readers: [reader] });
    const m = createFleetMetrics(provider.getMeter("spire-autopilot"), now);
    record(m);
    await reader.forceFlush();
    const points = new Map<string, Array<{ attributes: Record<string, unknown>; value: unknown }>>();
    for (const rm of exporter.getMetrics())
      for (const sm of rm.scopeMetrics)
        for (const metric of sm.metrics)
          points.set(
            metric.descriptor.name,
            metric.dataPoints.map((p) => ({ attributes: p.attributes, value: p.value })),
          );
    return points;
  }

  it("exports per-app expiry gauges, the verdict and repairs", async () => {
    const points = await collect(
      (m) =>
        m.recordSweep(
          [
            {
              app: "orders",
              verdict: "healthy",
              agentExpiresAt: "2026-03-01T13:00:00Z",
              workloadExpiresAt: "2026-03-01T12:10:00Z",
            },
            { app: "billing", verdict: "token-spent", agentExpiresAt: "2026-03-01T12:05:00Z" },
          ],
          [{ app: "billing", action: "reattest" }],
        ),
      () => NOW,
    );
    expect(points.get(METRIC.agentSvidRemaining)).toEqual([
      { attributes: { app: "orders" }, value: 3600 },
      { attributes: { app: "billing" }, value: 300 },
    ]);
    expect(points.get(METRIC.workloadSvidRemaining)).toEqual([{ attributes: { app: "orders" }, value: 600 }]);
    expect(points.get(METRIC.verdict)).toEqual([
      { attributes: { app: "orders", verdict: "healthy" }, value: 1 },
      { attributes: { app: "billing", verdict: "token-spent" }, value: 0 },
    ]);
    expect(points.get(METRIC.repairs)).toEqual([
      { attributes: { app: "billing", action: "reattest" }, value: 1 },
    ]);
  });

  it("repairs recorded after the verdicts add to the counter without replacing the gauges", async () => {
    const points = await collect(
      (m) => {
        m.recordSweep(
          [{ app: "billing", verdict: "agent-silent", agentExpiresAt: "2026-03-01T12:05:00Z" }],
          [],
        );
        m.recordRepairs([{ app: "billing", action: "reattest" }]);
        m.recordRepairs([{ app: "billing", action: "reattest" }]);
      },
      () => NOW,
    );
    expect(points.get(METRIC.repairs)).toEqual([
      { attributes: { app: "billing", action: "reattest" }, value: 2 },
    ]);
    expect(points.get(METRIC.agentSvidRemaining)).toEqual([{ attributes: { app: "billing" }, value: 300 }]);
  });

  it("the expiry gauges count down between sweeps (computed when collected)", async () => {
    let now = NOW;
    const points = await collect(
      (m) => {
        m.recordSweep([{ app: "orders", verdict: "healthy", agentExpiresAt: "2026-03-01T13:00:00Z" }], []);
        now = NOW + 600_000;
      },
      () => now,
    );
    expect(points.get(METRIC.agentSvidRemaining)?.[0]?.value).toBe(3000);
  });

  it("a later sweep replaces the apps reported", async () => {
    const points = await collect(
      (m) => {
        m.recordSweep([{ app: "gone", verdict: "healthy" }], []);
        m.recordSweep([{ app: "orders", verdict: "healthy" }], []);
      },
      () => NOW,
    );
    expect(points.get(METRIC.verdict)?.map((p) => p.attributes.app)).toEqual(["orders"]);
  });
});

describe("startTelemetry", () => {
  it("does nothing without an Application Insights connection string", () => {
    expect(startTelemetry({})).toBe(false);
    expect(metrics.getMeterProvider().constructor.name).toBe("NoopMeterProvider");
  });

  it("with one, the distro becomes the global meter provider the fleet metrics use", async () => {
    try {
      // An unroutable ingestion endpoint: nothing leaves the machine.
      const started = startTelemetry({
        APPLICATIONINSIGHTS_CONNECTION_STRING:
          "InstrumentationKey=00000000-0000-4000-8000-000000000000;IngestionEndpoint=http://127.0.0.1:9/",
      });
      expect(started).toBe(true);
      expect(metrics.getMeterProvider().constructor.name).not.toBe("NoopMeterProvider");
    } finally {
      await stopTelemetry();
    }
  });
});
