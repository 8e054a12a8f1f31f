/**
 * Action group webhook delivery: POST the common alert schema payload, retrying on 408, 429,
 * 503, 504 and connection failures (up to 5 retries, as action groups do), with the credential the
 * receiver is configured for: the function key already in its URL, or an Entra bearer token.
 */
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { REAL_TIME, realDelay, type ScaledClock } from "../logs/clock.js";
import type { TokenIssuer } from "./issuer.js";

export type WebhookAuth =
  | { kind: "function-key" }
  | {
      kind: "entra";
      tenantId: string;
      /** The receiving app's Application ID URI or client id (ALERT_AUDIENCE). */
      audience: string;
    };

export interface WebhookReceiver {
  name: string;
  /** For function-key auth the key is part of it: https://host/api/alerts?code=<key>. */
  serviceUri: string;
  auth: WebhookAuth;
}

export const RETRY_STATUSES: ReadonlySet<number> = new Set([408, 429, 503, 504]);

export interface DeliveryAttempt {
  /** HTTP status, or 0 for a connection failure / timeout. */
  status: number;
  error?: string;
  at: number;
}

export interface DeliveryResult {
  receiver: string;
  delivered: boolean;
  attempts: DeliveryAttempt[];
}

export interface DeliveryOptions {
  clock?: ScaledClock;
  issuer?: TokenIssuer;
  /** CA PEM for https receivers. */
  caPem?: string;
  /** Delays before each retry, on the sandbox clock (default 5, 10, 20, 40, 80 s). */
  retryDelaysMs?: readonly number[];
  /** Per-attempt timeout in real ms (default 10 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = [5_000, 10_000, 20_000, 40_000, 80_000];

function post(
  url: URL,
  body: string,
  headers: Record<string, string>,
  caPem: string | undefined,
  timeoutMs: number,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    const req = send(
      url,
      {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "content-length": String(Buffer.byteLength(body)),
          ...headers,
        },
        ...(url.protocol === "https:" && caPem ? { ca: caPem } : {}),
        timeout: timeoutMs,
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    });
  });

export async function deliverWebhook(
  receiver: WebhookReceiver,
  payload: unknown,
  options: DeliveryOptions = {},
): Promise<DeliveryResult> {
  const clock = options.clock ?? REAL_TIME;
  const delays = options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
  const body = JSON.stringify(payload);
  const url = new URL(receiver.serviceUri);
  const attempts: DeliveryAttempt[] = [];
  for (let attempt = 0; attempt <= delays.length; attempt++) {
    if (attempt > 0) await sleep(realDelay(clock, delays[attempt - 1] ?? 0), options.signal);
    if (options.signal?.aborted) break;
    const headers: Record<string, string> = {};
    if (receiver.auth.kind === "entra") {
      if (!options.issuer)
        throw new Error(`receiver ${receiver.name} uses Entra auth but no token issuer is running`);
      // A fresh token per attempt, as the action group service fetches one per call.
      headers.authorization = `Bearer ${options.issuer.webhookToken({ tenantId: receiver.auth.tenantId, audience: receiver.auth.audience })}`;
    }
    try {
      const status = await post(url, body, headers, options.caPem, options.timeoutMs ?? 10_000);
      attempts.push({ status, at: clock.now() });
      if (status >= 200 && status < 300) return { receiver: receiver.name, delivered: true, attempts };
      if (!RETRY_STATUSES.has(status)) break;
    } catch (err) {
      attempts.push({ status: 0, error: (err as Error).message, at: clock.now() });
    }
  }
  return { receiver: receiver.name, delivered: false, attempts };
}
