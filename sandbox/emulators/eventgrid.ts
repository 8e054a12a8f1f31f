/**
 * Event Grid's push delivery to webhook subscriptions of one system topic (here: a vault's), as
 * Microsoft Learn describes it ("Webhook event delivery", "Event Grid message delivery and retry",
 * "Event filtering"):
 *  - creating a subscription sends a SubscriptionValidation handshake (`aeg-event-type:
 *    SubscriptionValidation`, an array with one Microsoft.EventGrid.SubscriptionValidationEvent
 *    carrying data.validationCode); the endpoint must answer 200 with `{"validationResponse":
 *    code}`, else the subscription fails to provision and receives nothing;
 *  - each matching event is POSTed alone in an array (maxEventsPerBatch 1, the default) with
 *    `aeg-event-type: Notification`, `aeg-subscription-name`, `aeg-delivery-count` (0 first),
 *    `aeg-data-version` and `aeg-metadata-version`;
 *  - 200-204 is delivered; 400, 401, 403 and 413 are never retried (dead-lettered, or dropped when
 *    no dead-letter destination is set); anything else, or no answer in 30 s, is retried after
 *    10 s, 30 s, 1 min, 5 min, 10 min, 30 min, 1 h, 3 h, 6 h, then every 12 h, until
 *    maxDeliveryAttempts (default 30) or the event's time to live (default 1440 min) runs out;
 *  - filters: includedEventTypes, and the advanced filter StringIn on subject (case-insensitive).
 * Times run on the sandbox clock. Nothing here decides for the product: it only delivers.
 */
import { randomUUID } from "node:crypto";
import { REAL_TIME, realDelay, type ScaledClock } from "../azure/logs/clock.js";

export interface EventGridEvent {
  id: string;
  topic: string;
  subject: string;
  eventType: string;
  eventTime: string;
  data: Record<string, unknown>;
  dataVersion: string;
  metadataVersion: "1";
}

export interface EventSubscriptionOptions {
  name: string;
  /** The webhook, with any key in its query string. */
  endpointUrl: string;
  /** Default: every event type of the topic. */
  includedEventTypes?: readonly string[];
  /** Advanced filter `subject StringIn [...]` (case-insensitive); default: every subject. */
  subjectIn?: readonly string[];
  /** Delays between attempts on the sandbox clock; default Event Grid's schedule. */
  retryDelaysMs?: readonly number[];
  maxDeliveryAttempts?: number;
  eventTimeToLiveMinutes?: number;
  /** Real ms to wait for an answer (Event Grid waits 30 s). */
  responseTimeoutMs?: number;
}

export interface DeliveryAttempt {
  eventId: string;
  eventType: string;
  subject: string;
  /** 0 for the first attempt, as aeg-delivery-count counts. */
  deliveryCount: number;
  /** HTTP status, or 0 when the endpoint did not answer. */
  status: number;
  /** Sandbox time of the attempt. */
  at: number;
}

export interface EventSubscription {
  readonly name: string;
  readonly attempts: readonly DeliveryAttempt[];
  /** Events given up on (not retriable, attempts or time to live exhausted). */
  readonly deadLettered: ReadonlyArray<{ event: EventGridEvent; reason: string; lastStatus: number }>;
  /** Delivered or given up on: nothing of this subscription is still waiting for a retry. */
  idle(): boolean;
  /** Bounded wait until idle(). */
  waitIdle(timeoutMs?: number): Promise<void>;
  delete(): void;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
export const EVENT_GRID_RETRY_DELAYS_MS: readonly number[] = [
  10_000,
  30_000,
  MINUTE,
  5 * MINUTE,
  10 * MINUTE,
  30 * MINUTE,
  HOUR,
  3 * HOUR,
  6 * HOUR,
  12 * HOUR,
];
const NOT_RETRIED = new Set([400, 401, 403, 413]);

export class EventSubscriptionFailed extends Error {
  override readonly name = "EventSubscriptionFailed";
}

const ci = (values: readonly string[] | undefined) =>
  values ? new Set(values.map((v) => v.toLowerCase())) : undefined;

/** One Event Grid system topic and its webhook subscriptions. */
export class EventGridTopic {
  private readonly subscriptions = new Map<string, Subscription>();
  private closed = false;

  constructor(
    /** The source's resource id, stamped as each event's topic. */
    readonly topic: string,
    private readonly clock: ScaledClock = REAL_TIME,
    private readonly log: (line: string) => void = () => undefined,
  ) {}

  /** Creates a subscription; rejects (and keeps nothing) when the handshake fails. */
  async subscribe(options: EventSubscriptionOptions): Promise<EventSubscription> {
    if (this.subscriptions.has(options.name.toLowerCase())) {
      throw new EventSubscriptionFailed(`An event subscription named ${options.name} already exists`);
    }
    const code = randomUUID();
    const validation = [
      {
        id: randomUUID(),
        topic: this.topic,
        subject: "",
        data: { validationCode: code, validationUrl: `${options.endpointUrl.split("?")[0]}?validate` },
        eventType: "Microsoft.EventGrid.SubscriptionValidationEvent",
        eventTime: new Date(this.clock.now()).toISOString(),
        metadataVersion: "1",
        dataVersion: "2",
      },
    ];
    const url = new URL(options.endpointUrl);
    let status = 0;
    let answer: unknown;
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "aeg-event-type": "SubscriptionValidation",
          "aeg-subscription-name": options.name.toUpperCase(),
          "aeg-delivery-count": "0",
          "aeg-data-version": "2",
          "aeg-metadata-version": "1",
        },
        body: JSON.stringify(validation),
        signal: AbortSignal.timeout(options.responseTimeoutMs ?? 30_000),
      });
      status = res.status;
      const text = await res.text();
      try {
        answer = JSON.parse(text);
      } catch {
        answer = text;
      }
    } catch (err) {
      throw new EventSubscriptionFailed(
        `Webhook validation handshake failed for ${url.origin}${url.pathname}: ${(err as Error).message}`,
      );
    }
    const echoed = (answer as { validationResponse?: unknown } | null)?.validationResponse;
    if (status !== 200 || echoed !== code) {
      throw new EventSubscriptionFailed(
        `Webhook validation handshake failed for ${url.origin}${url.pathname}: it answered ${status}${
          status === 200 ? " without the validation code" : ""
        }`,
      );
    }
    const sub = new Subscription(options, this.clock, this.log, () =>
      this.subscriptions.delete(options.name.toLowerCase()),
    );
    this.subscriptions.set(options.name.toLowerCase(), sub);
    this.log(`[eventgrid] subscription ${options.name} validated and active`);
    return sub;
  }

  /** Stamps the topic and hands the event to every matching subscription. */
  publish(
    event: Omit<EventGridEvent, "topic" | "id" | "metadataVersion"> & { id?: string },
  ): EventGridEvent | undefined {
    if (this.closed) return undefined;
    const full: EventGridEvent = {
      ...event,
      id: event.id ?? randomUUID(),
      topic: this.topic,
      metadataVersion: "1",
    };
    for (const s of this.subscriptions.values()) s.offer(full);
    return full;
  }

  close(): void {
    this.closed = true;
    for (const s of [...this.subscriptions.values()]) s.delete();
  }
}

class Subscription implements EventSubscription {
  readonly attempts: DeliveryAttempt[] = [];
  readonly deadLettered: Array<{ event: EventGridEvent; reason: string; lastStatus: number }> = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private inFlight = 0;
  private deleted = false;
  private readonly types: Set<string> | undefined;
  private readonly subjects: Set<string> | undefined;

  constructor(
    private readonly options: EventSubscriptionOptions,
    private readonly clock: ScaledClock,
    private readonly log: (line: string) => void,
    private readonly onDelete: () => void,
  ) {
    this.types = ci(options.includedEventTypes);
    this.subjects = ci(options.subjectIn);
  }

  get name() {
    return this.options.name;
  }

  offer(event: EventGridEvent): void {
    if (this.types && !this.types.has(event.eventType.toLowerCase())) return;
    if (this.subjects && !this.subjects.has(event.subject.toLowerCase())) return;
    void this.attempt(event, 0, this.clock.now());
  }

  private async attempt(event: EventGridEvent, deliveryCount: number, firstAt: number): Promise<void> {
    if (this.deleted) return;
    this.inFlight += 1;
    let status = 0;
    try {
      const res = await fetch(this.options.endpointUrl, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "aeg-event-type": "Notification",
          "aeg-subscription-name": this.options.name.toUpperCase(),
          "aeg-delivery-count": String(deliveryCount),
          "aeg-data-version": event.dataVersion,
          "aeg-metadata-version": event.metadataVersion,
        },
        body: JSON.stringify([event]),
        signal: AbortSignal.timeout(this.options.responseTimeoutMs ?? 30_000),
      });
      status = res.status;
      await res.arrayBuffer();
    } catch {
      status = 0;
    } finally {
      this.inFlight -= 1;
    }
    const at = this.clock.now();
    this.attempts.push({
      eventId: event.id,
      eventType: event.eventType,
      subject: event.subject,
      deliveryCount,
      status,
      at,
    });
    if (status >= 200 && status <= 204) return;
    const giveUp = (reason: string) => {
      this.deadLettered.push({ event, reason, lastStatus: status });
      this.log(`[eventgrid] ${this.name}: gave up on ${event.eventType} ${event.id}: ${reason}`);
    };
    if (NOT_RETRIED.has(status)) return giveUp(`the endpoint answered ${status}, which is not retried`);
    const attempts = deliveryCount + 1;
    if (attempts >= (this.options.maxDeliveryAttempts ?? 30)) {
      return giveUp(`${attempts} delivery attempts failed (last ${status || "no answer"})`);
    }
    const delays = this.options.retryDelaysMs ?? EVENT_GRID_RETRY_DELAYS_MS;
    const delay = delays[Math.min(deliveryCount, delays.length - 1)] ?? 0;
    const ttl = (this.options.eventTimeToLiveMinutes ?? 1440) * MINUTE;
    if (at + delay - firstAt > ttl) return giveUp(`the event's time to live (${ttl / MINUTE} min) ran out`);
    this.log(
      `[eventgrid] ${this.name}: delivery ${attempts} of ${event.eventType} ${event.id} got ${status || "no answer"}; retrying in ${delay} ms`,
    );
    const timer = setTimeout(
      () => {
        this.timers.delete(timer);
        void this.attempt(event, deliveryCount + 1, firstAt);
      },
      realDelay(this.clock, delay),
    );
    timer.unref();
    this.timers.add(timer);
  }

  idle(): boolean {
    return this.inFlight === 0 && this.timers.size === 0;
  }

  async waitIdle(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    // A delivery starts in offer() synchronously, so idle() is meaningful right after publishing.
    while (!this.idle()) {
      if (Date.now() > deadline)
        throw new Error(`subscription ${this.name} still busy after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  delete(): void {
    this.deleted = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.onDelete();
  }
}
