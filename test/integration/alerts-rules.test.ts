/** Alert rule semantics on a hand-driven clock: splitting, aggregation, failing periods, delivery retries. */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AlertEngine } from "../../sandbox/azure/alerts/engine.js";
import { type AlertRuleDefinition, parseAlertRule } from "../../sandbox/azure/alerts/rules.js";
import { deliverWebhook } from "../../sandbox/azure/alerts/webhook.js";
import type { ScaledClock } from "../../sandbox/azure/logs/clock.js";
import { LogStore } from "../../sandbox/azure/logs/store.js";

const MIN = 60_000;

/** A clock the test moves by hand (scale 1, so delays are real milliseconds). */
function manualClock(start = Date.now()): ScaledClock & { advance(ms: number): void } {
  let t = start;
  return {
    scale: 1,
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
  };
}

function rule(
  over: Partial<AlertRuleDefinition["criteria"]["allOf"][number]> = {},
  top: Partial<AlertRuleDefinition> = {},
) {
  return parseAlertRule({
    name: "r",
    severity: 2,
    evaluationFrequency: "PT1M",
    windowSize: "PT5M",
    criteria: {
      allOf: [
        {
          query: "ContainerAppSystemLogs | where Reason == 'ContainerBackOff'",
          timeAggregation: "Count",
          dimensions: [{ name: "ContainerAppName", operator: "Include", values: ["*"] }],
          operator: "GreaterThanOrEqual",
          threshold: 2,
          ...over,
        },
      ],
    },
    ...top,
  });
}

let server: Server;
let url = "";
const statuses: number[] = [];
let script: number[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const status = script.shift() ?? 200;
      statuses.push(status);
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

function backoff(store: LogStore, app: string): void {
  store.ingestSystem({
    app,
    revision: `${app}--1`,
    replica: `${app}--1-x`,
    reason: "ContainerBackOff",
    type: "Warning",
    log: "Back-off restarting failed container",
  });
}

describe("alert rule evaluation", () => {
  it("splits by dimension, counts rows, fires once per combination and resolves", async () => {
    const clock = manualClock();
    const store = new LogStore({ clock });
    const engine = new AlertEngine({ store, rules: [rule()], receivers: [], clock });
    backoff(store, "a");
    backoff(store, "a");
    backoff(store, "b");
    const [first] = await engine.evaluate();
    expect(first?.series).toEqual(
      expect.arrayContaining([
        { dimensions: [{ name: "ContainerAppName", value: "a" }], metricValue: 2, breached: true },
        { dimensions: [{ name: "ContainerAppName", value: "b" }], metricValue: 1, breached: false },
      ]),
    );
    expect(first?.notifications.map((n) => [n.monitorCondition, n.dimensions[0]?.value])).toEqual([
      ["Fired", "a"],
    ]);
    clock.advance(MIN);
    backoff(store, "b");
    backoff(store, "b");
    const [second] = await engine.evaluate();
    expect(second?.notifications.map((n) => [n.monitorCondition, n.dimensions[0]?.value])).toEqual([
      ["Fired", "b"],
    ]);
    clock.advance(4.5 * MIN); // a's rows leave the window; b's last two are still in
    const [third] = await engine.evaluate();
    expect(third?.notifications.map((n) => [n.monitorCondition, n.dimensions[0]?.value])).toEqual([
      ["Resolved", "a"],
    ]);
    expect(engine.firing().map((f) => f.dimensions)).toEqual(['[{"name":"ContainerAppName","value":"b"}]']);
    await engine.stop();
  });

  it("needs M of the last N evaluations to breach (failingPeriods)", async () => {
    const clock = manualClock();
    const store = new LogStore({ clock });
    const r = rule(
      { threshold: 1, failingPeriods: { numberOfEvaluationPeriods: 3, minFailingPeriodsToAlert: 2 } },
      { windowSize: "PT1M" },
    );
    const engine = new AlertEngine({ store, rules: [r], receivers: [], clock });
    backoff(store, "a");
    expect((await engine.evaluate())[0]?.notifications).toEqual([]);
    clock.advance(2 * MIN);
    expect((await engine.evaluate())[0]?.notifications).toEqual([]); // clean period
    backoff(store, "a");
    expect((await engine.evaluate())[0]?.notifications.map((n) => n.monitorCondition)).toEqual(["Fired"]);
    await engine.stop();
  });

  it("without dimensions an empty result is a series: LessThan fires on silence", async () => {
    const clock = manualClock();
    const store = new LogStore({ clock });
    const silence = rule({
      query: "Syslog | where ProcessName == 'spire-server'",
      dimensions: [],
      operator: "LessThan",
      threshold: 1,
    });
    const engine = new AlertEngine({ store, rules: [silence], receivers: [], clock });
    expect((await engine.evaluate())[0]?.notifications.map((n) => n.monitorCondition)).toEqual(["Fired"]);
    store.ingestSyslog('{"level":"info","msg":"alive"}');
    expect((await engine.evaluate())[0]?.notifications.map((n) => n.monitorCondition)).toEqual(["Resolved"]);
    await engine.stop();
  });

  it("measures a column (Total) and honours Exclude", async () => {
    const clock = manualClock();
    const store = new LogStore({ clock });
    const total = rule({
      query: "ContainerAppSystemLogs | summarize restarts = count() by ContainerAppName",
      timeAggregation: "Total",
      metricMeasureColumn: "restarts",
      dimensions: [{ name: "ContainerAppName", operator: "Exclude", values: ["noisy"] }],
      operator: "GreaterThan",
      threshold: 1,
    });
    const engine = new AlertEngine({ store, rules: [total], receivers: [], clock });
    for (const app of ["noisy", "noisy", "noisy", "quiet", "busy", "busy"]) backoff(store, app);
    const [result] = await engine.evaluate();
    expect(result?.series.map((s) => [s.dimensions[0]?.value, s.metricValue, s.breached])).toEqual([
      ["quiet", 1, false],
      ["busy", 2, true],
    ]);
    await engine.stop();
  });

  it("a broken query sends nothing and keeps the error", async () => {
    const clock = manualClock();
    const engine = new AlertEngine({
      store: new LogStore({ clock }),
      rules: [rule({ query: "ContainerAppSystemLogs | mv-expand Log" })],
      receivers: [],
      clock,
    });
    const [result] = await engine.evaluate();
    expect(result?.notifications).toEqual([]);
    expect(result?.error).toContain("'mv-expand'");
    await engine.stop();
  });

  it("rejects invalid definitions with the field named", () => {
    expect(() => rule({ timeAggregation: "Total" })).toThrow(/metricMeasureColumn/);
    expect(() => rule({ queryFile: "agent-attestation-failures" })).toThrow(
      /exactly one of query and queryFile/,
    );
    expect(() => rule({}, { evaluationFrequency: "5 minutes" })).toThrow(/evaluationFrequency/);
  });
});

describe("webhook delivery", () => {
  const receiver = () => ({ name: "hook", serviceUri: url, auth: { kind: "function-key" as const } });

  it("retries 408/429/503/504 up to 5 times, then gives up", async () => {
    statuses.length = 0;
    script = [503, 503, 503, 503, 503, 503, 503];
    const result = await deliverWebhook(receiver(), { x: 1 }, { retryDelaysMs: [1, 1, 1, 1, 1] });
    expect(result.delivered).toBe(false);
    expect(result.attempts.map((a) => a.status)).toEqual([503, 503, 503, 503, 503, 503]);
    script = [];
  });

  it("succeeds after retryable answers, and does not retry other errors", async () => {
    script = [408, 429, 504, 200];
    expect(
      (await deliverWebhook(receiver(), {}, { retryDelaysMs: [1, 1, 1, 1, 1] })).attempts.map(
        (a) => a.status,
      ),
    ).toEqual([408, 429, 504, 200]);
    script = [400];
    expect(
      (await deliverWebhook(receiver(), {}, { retryDelaysMs: [1, 1, 1, 1, 1] })).attempts.map(
        (a) => a.status,
      ),
    ).toEqual([400]);
    script = [];
  });

  it("retries when nothing listens", async () => {
    const result = await deliverWebhook(
      { ...receiver(), serviceUri: "http://127.0.0.1:1/hook" },
      {},
      { retryDelaysMs: [1, 1] },
    );
    expect(result.attempts).toHaveLength(3);
    expect(result.attempts.every((a) => a.status === 0 && a.error)).toBe(true);
  });
});
