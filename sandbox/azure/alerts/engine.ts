/**
 * Log search alerts (Log Alerts V2) for the sandbox: every rule's query runs on the logs store on
 * its evaluation frequency (sandbox clock), over its window; rows are split by the rule's
 * dimensions and measured (Count of rows, or Total/Average/Minimum/Maximum of a column); each
 * dimension combination that breaches the threshold fires ONE alert, delivered to the webhook
 * receivers in the common alert schema, and a Resolved notification (same alertId) follows when it
 * clears, if the rule auto-mitigates.
 */
import { randomUUID } from "node:crypto";
import { REAL_TIME, realDelay, type ScaledClock } from "../logs/clock.js";
import { KqlError } from "../logs/kql/errors.js";
import { type Table, valueToString } from "../logs/kql/values.js";
import type { LogStore } from "../logs/store.js";
import type { TokenIssuer } from "./issuer.js";
import type { AlertOperator, AlertRule } from "./rules.js";
import { type DeliveryResult, deliverWebhook, type WebhookReceiver } from "./webhook.js";

export type MonitorCondition = "Fired" | "Resolved";

export interface AlertNotification {
  rule: string;
  alertId: string;
  monitorCondition: MonitorCondition;
  dimensions: { name: string; value: string }[];
  metricValue: number;
  /** Sandbox-clock ms of the evaluation that raised it. */
  at: number;
  payload: CommonAlertPayload;
  /** Filled in when delivery to every receiver has finished. */
  deliveries?: DeliveryResult[];
}

export interface EvaluationResult {
  rule: string;
  at: number;
  /** One entry per dimension combination evaluated. */
  series: { dimensions: { name: string; value: string }[]; metricValue: number; breached: boolean }[];
  notifications: AlertNotification[];
  error?: string;
}

export interface AlertEngineOptions {
  store: LogStore;
  rules: readonly AlertRule[];
  /** The action group's webhook receivers (every rule uses the same action group here). */
  receivers: readonly WebhookReceiver[];
  clock?: ScaledClock;
  issuer?: TokenIssuer;
  /** CA PEM for https receivers. */
  caPem?: string;
  retryDelaysMs?: readonly number[];
  subscriptionId?: string;
  resourceGroup?: string;
  /** Base URL of the logs API, for the payload's search links. */
  logsApiUrl?: string;
}

export interface CommonAlertPayload {
  schemaId: "azureMonitorCommonAlertSchema";
  data: {
    essentials: {
      alertId: string;
      alertRule: string;
      severity: string;
      signalType: "Log";
      monitorCondition: MonitorCondition;
      monitoringService: "Log Alerts V2";
      alertTargetIDs: string[];
      configurationItems: string[];
      originAlertId: string;
      firedDateTime: string;
      resolvedDateTime?: string;
      description: string;
      essentialsVersion: "1.0";
      alertContextVersion: "1.0";
    };
    alertContext: {
      properties: Record<string, string>;
      conditionType: "LogQueryCriteria";
      condition: {
        windowSize: string;
        allOf: {
          searchQuery: string;
          metricMeasureColumn: string | null;
          targetResourceTypes: string;
          operator: AlertOperator;
          threshold: string;
          timeAggregation: string;
          dimensions: { name: string; value: string }[];
          metricValue: number;
          failingPeriods: { numberOfEvaluationPeriods: number; minFailingPeriodsToAlert: number };
          linkToSearchResultsUI: string;
          linkToFilteredSearchResultsUI: string;
          linkToSearchResultsAPI: string;
          linkToFilteredSearchResultsAPI: string;
        }[];
        windowStartTime: string;
        windowEndTime: string;
      };
    };
    customProperties: Record<string, string> | null;
  };
}

/** Azure caps a notification at 256 KB. */
export const MAX_PAYLOAD_BYTES = 256 * 1024;

interface SeriesState {
  history: boolean[];
  fired?: { alertId: string; originAlertId: string; firedAt: number };
}

function compare(value: number, op: AlertOperator, threshold: number): boolean {
  switch (op) {
    case "GreaterThan":
      return value > threshold;
    case "GreaterThanOrEqual":
      return value >= threshold;
    case "LessThan":
      return value < threshold;
    case "LessThanOrEqual":
      return value <= threshold;
    case "Equal":
      return value === threshold;
  }
}

function measure(rule: AlertRule, table: Table, rows: Table["rows"]): number {
  if (rule.timeAggregation === "Count") return rows.length;
  const i = table.columns.findIndex((c) => c.name === rule.metricMeasureColumn);
  const values = rows.map((r) => r[i]).filter((v): v is number => typeof v === "number");
  if (values.length === 0) return 0;
  switch (rule.timeAggregation) {
    case "Total":
      return values.reduce((a, b) => a + b, 0);
    case "Average":
      return values.reduce((a, b) => a + b, 0) / values.length;
    case "Minimum":
      return Math.min(...values);
    case "Maximum":
      return Math.max(...values);
  }
}

export class AlertEngine {
  readonly notifications: AlertNotification[] = [];
  readonly evaluations: EvaluationResult[] = [];
  private readonly clock: ScaledClock;
  private readonly state = new Map<string, Map<string, SeriesState>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly chains = new Map<string, Promise<void>>();
  private readonly listeners = new Set<(n: AlertNotification) => void>();
  private readonly abort = new AbortController();
  private running = false;
  private receivers: readonly WebhookReceiver[];

  constructor(private readonly options: AlertEngineOptions) {
    this.clock = options.clock ?? REAL_TIME;
    this.receivers = options.receivers;
    for (const rule of options.rules) {
      if (options.rules.filter((r) => r.name === rule.name).length > 1)
        throw new Error(`two alert rules are named ${rule.name}`);
    }
  }

  get rules(): readonly AlertRule[] {
    return this.options.rules;
  }

  /** Replaces the action group's receivers (e.g. once the Functions host is up and its key known). */
  setReceivers(receivers: readonly WebhookReceiver[]): void {
    this.receivers = receivers;
  }

  onNotification(listener: (n: AlertNotification) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Evaluates every enabled rule now, then on each rule's frequency (sandbox clock). */
  start(): void {
    if (this.running) return;
    this.running = true;
    for (const rule of this.options.rules) {
      if (!rule.enabled) continue;
      const tick = async () => {
        if (!this.running) return;
        await this.evaluateRule(rule);
        if (!this.running) return;
        const t = setTimeout(
          () => {
            this.timers.delete(t);
            void tick();
          },
          realDelay(this.clock, rule.evaluationFrequencyMs),
        );
        t.unref();
        this.timers.add(t);
      };
      void tick();
    }
  }

  /** Stops evaluating; pending retries are abandoned, deliveries in progress finish. */
  async stop(): Promise<void> {
    this.running = false;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.abort.abort();
    await this.idle();
  }

  /** Resolves when every delivery started so far has finished. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** One evaluation of every enabled rule (or the named one), now. */
  async evaluate(ruleName?: string): Promise<EvaluationResult[]> {
    const rules = this.options.rules.filter(
      (r) => r.enabled && (ruleName === undefined || r.name === ruleName),
    );
    if (ruleName !== undefined && rules.length === 0)
      throw new Error(`no enabled alert rule named ${ruleName}`);
    const out: EvaluationResult[] = [];
    for (const rule of rules) out.push(await this.evaluateRule(rule));
    return out;
  }

  /** Dimension combinations currently firing, per rule. */
  firing(): { rule: string; alertId: string; dimensions: string }[] {
    return [...this.state].flatMap(([rule, series]) =>
      [...series].flatMap(([dims, s]) =>
        s.fired ? [{ rule, alertId: s.fired.alertId, dimensions: dims }] : [],
      ),
    );
  }

  private async evaluateRule(rule: AlertRule): Promise<EvaluationResult> {
    const at = this.clock.now();
    const result: EvaluationResult = { rule: rule.name, at, series: [], notifications: [] };
    let table: Table;
    try {
      table = this.options.store.query(rule.query, { start: at - rule.windowSizeMs, end: at }, { now: at });
      for (const d of rule.dimensions) {
        if (!table.columns.some((c) => c.name === d.name))
          throw new Error(`the query has no column '${d.name}' to split by`);
      }
      if (rule.metricMeasureColumn && !table.columns.some((c) => c.name === rule.metricMeasureColumn)) {
        throw new Error(`the query has no column '${rule.metricMeasureColumn}' to measure`);
      }
    } catch (err) {
      // Azure marks the rule unhealthy and sends nothing; keep the error for whoever looks.
      result.error = err instanceof KqlError ? `${err.kind}: ${err.message}` : (err as Error).message;
      this.evaluations.push(result);
      return result;
    }

    const dimIndex = rule.dimensions.map((d) => table.columns.findIndex((c) => c.name === d.name));
    const groups = new Map<string, { dims: { name: string; value: string }[]; rows: Table["rows"] }>();
    for (const row of table.rows) {
      const dims = rule.dimensions.map((d, i) => ({
        name: d.name,
        value: valueToString(row[dimIndex[i] ?? -1] ?? null),
      }));
      const kept = rule.dimensions.every((d, i) => {
        const v = dims[i]?.value ?? "";
        const listed = d.values.includes("*") || d.values.includes(v);
        return d.operator === "Include" ? listed : !d.values.includes(v);
      });
      if (!kept) continue;
      const k = JSON.stringify(dims);
      const g = groups.get(k) ?? { dims, rows: [] };
      g.rows.push(row);
      groups.set(k, g);
    }

    const series = this.state.get(rule.name) ?? new Map<string, SeriesState>();
    this.state.set(rule.name, series);
    // Without dimensions an empty result is still one series (a LessThan rule fires on silence).
    if (rule.dimensions.length === 0 && groups.size === 0) groups.set("[]", { dims: [], rows: [] });
    // Series seen before but absent now measure as no rows.
    for (const k of series.keys()) {
      if (!groups.has(k))
        groups.set(k, { dims: JSON.parse(k) as { name: string; value: string }[], rows: [] });
    }

    const { numberOfEvaluationPeriods: n, minFailingPeriodsToAlert: m } = rule.failingPeriods;
    for (const [k, g] of groups) {
      const metricValue = measure(rule, table, g.rows);
      const breached = compare(metricValue, rule.operator, rule.threshold);
      result.series.push({ dimensions: g.dims, metricValue, breached });
      const s = series.get(k) ?? { history: [] };
      series.set(k, s);
      s.history.push(breached);
      if (s.history.length > n) s.history.splice(0, s.history.length - n);
      const failing = s.history.filter(Boolean).length;
      if (!s.fired && failing >= m) {
        const id = randomUUID();
        s.fired = { alertId: this.alertIdFor(id), originAlertId: id, firedAt: at };
        result.notifications.push(this.notify(rule, s, "Fired", g.dims, metricValue, at));
      } else if (s.fired && !breached && rule.autoMitigate) {
        result.notifications.push(this.notify(rule, s, "Resolved", g.dims, metricValue, at));
        s.fired = undefined;
        s.history = [];
      }
      if (!s.fired && s.history.every((b) => !b) && g.rows.length === 0) series.delete(k);
    }
    this.evaluations.push(result);
    return result;
  }

  private alertIdFor(id: string): string {
    return `/subscriptions/${this.options.subscriptionId ?? "00000000-0000-4000-8000-000000000000"}/providers/Microsoft.AlertsManagement/alerts/${id}`;
  }

  private notify(
    rule: AlertRule,
    s: SeriesState,
    condition: MonitorCondition,
    dims: { name: string; value: string }[],
    metricValue: number,
    at: number,
  ): AlertNotification {
    const fired = s.fired as NonNullable<SeriesState["fired"]>;
    const payload = this.payload(rule, fired, condition, dims, metricValue, at);
    const notification: AlertNotification = {
      rule: rule.name,
      alertId: fired.alertId,
      monitorCondition: condition,
      dimensions: dims,
      metricValue,
      at,
      payload,
    };
    this.notifications.push(notification);
    for (const l of this.listeners) l(notification);
    // Notifications of one alert go out in order (Fired before its Resolved); alerts in parallel.
    const previous = this.chains.get(fired.alertId) ?? Promise.resolve();
    const delivery = previous.then(async () => {
      notification.deliveries = await Promise.all(
        this.receivers.map((r) =>
          deliverWebhook(r, payload, {
            clock: this.clock,
            issuer: this.options.issuer,
            caPem: this.options.caPem,
            retryDelaysMs: this.options.retryDelaysMs,
            signal: this.abort.signal,
          }).catch((err: unknown) => ({
            receiver: r.name,
            delivered: false,
            attempts: [{ status: 0, error: (err as Error).message, at: this.clock.now() }],
          })),
        ),
      );
    });
    this.chains.set(fired.alertId, delivery);
    this.inFlight.add(delivery);
    void delivery.finally(() => {
      this.inFlight.delete(delivery);
      if (this.chains.get(fired.alertId) === delivery) this.chains.delete(fired.alertId);
    });
    return notification;
  }

  private payload(
    rule: AlertRule,
    fired: NonNullable<SeriesState["fired"]>,
    condition: MonitorCondition,
    dims: { name: string; value: string }[],
    metricValue: number,
    at: number,
  ): CommonAlertPayload {
    const sub = this.options.subscriptionId ?? "00000000-0000-4000-8000-000000000000";
    const rg = this.options.resourceGroup ?? "rg-sandbox-monitoring";
    const workspace = this.options.store.workspaceId;
    const workspaceResource = `/subscriptions/${sub}/resourcegroups/${rg}/providers/microsoft.operationalinsights/workspaces/${workspace}`;
    const start = new Date(at - rule.windowSizeMs).toISOString();
    const end = new Date(at).toISOString();
    const api = `${this.options.logsApiUrl ?? "https://api.loganalytics.io"}/v1/workspaces/${workspace}/query`;
    const filtered =
      dims.length > 0
        ? `${rule.query.trimEnd()}\n| where ${dims.map((d) => `${d.name} == ${JSON.stringify(d.value)}`).join(" and ")}`
        : rule.query;
    const link = (q: string) =>
      `${api}?query=${encodeURIComponent(q)}&timespan=${encodeURIComponent(`${start}/${end}`)}`;
    let searchQuery = rule.query;
    const build = (): CommonAlertPayload => ({
      schemaId: "azureMonitorCommonAlertSchema",
      data: {
        essentials: {
          alertId: fired.alertId,
          alertRule: rule.name,
          severity: `Sev${rule.severity}`,
          signalType: "Log",
          monitorCondition: condition,
          monitoringService: "Log Alerts V2",
          alertTargetIDs: [workspaceResource],
          configurationItems: dims.length > 0 ? dims.map((d) => d.value) : [workspace],
          originAlertId: fired.originAlertId,
          firedDateTime: new Date(fired.firedAt).toISOString(),
          ...(condition === "Resolved" ? { resolvedDateTime: new Date(at).toISOString() } : {}),
          description: rule.description,
          essentialsVersion: "1.0",
          alertContextVersion: "1.0",
        },
        alertContext: {
          properties: {},
          conditionType: "LogQueryCriteria",
          condition: {
            windowSize: rule.windowSize,
            allOf: [
              {
                searchQuery,
                metricMeasureColumn: rule.metricMeasureColumn ?? null,
                targetResourceTypes: "['Microsoft.OperationalInsights/workspaces']",
                operator: rule.operator,
                threshold: String(rule.threshold),
                timeAggregation: rule.timeAggregation,
                dimensions: dims,
                metricValue,
                failingPeriods: rule.failingPeriods,
                linkToSearchResultsUI: `https://portal.azure.com/#blade/Microsoft_Azure_Monitoring_Logs/LogsBlade/source/Alerts.EmailLinks/scope/${encodeURIComponent(workspaceResource)}`,
                linkToFilteredSearchResultsUI: `https://portal.azure.com/#blade/Microsoft_Azure_Monitoring_Logs/LogsBlade/source/Alerts.EmailLinks/scope/${encodeURIComponent(workspaceResource)}`,
                linkToSearchResultsAPI: link(rule.query),
                linkToFilteredSearchResultsAPI: link(filtered),
              },
            ],
            windowStartTime: start,
            windowEndTime: end,
          },
        },
        customProperties: null,
      },
    });
    let payload = build();
    // Results are never embedded; only an enormous query could push it over the cap.
    if (Buffer.byteLength(JSON.stringify(payload)) > MAX_PAYLOAD_BYTES) {
      searchQuery = `${rule.query.slice(0, 4096)}...`;
      payload = build();
    }
    return payload;
  }
}
