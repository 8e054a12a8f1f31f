/**
 * The HTTP triggers' input edges, on @azure/functions' own HttpRequest over a streamed native
 * Request (the worker's stream mode): bodies are abandoned past 256 KB whatever they declare, and
 * the alert webhook validates and bounds the apps it looks up before any ARM call.
 */
import { HttpRequest, type InvocationContext } from "@azure/functions";
import type { DurableClient } from "durable-functions";
import { describe, expect, it } from "vitest";
import { ALERT_LOOKUP_CONCURRENCY, alertsHttpHandler } from "../../functions/alerts.js";
import { MAX_BODY_BYTES, readJsonBody } from "../../functions/http.js";
import { MAX_ALERT_APPS } from "../../shared/alerts.js";
import type { AppLookup } from "../../shared/containerapp/lookup.js";

/** A body of `total` bytes in 16 KB chunks, pulled only when read; counts what was pulled. */
function streamedRequest(total: number, headers: Record<string, string> = {}) {
  const chunk = new Uint8Array(16 * 1024).fill(0x20);
  let pulled = 0;
  const body = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (pulled >= total) return controller.close();
        const n = Math.min(chunk.byteLength, total - pulled);
        pulled += n;
        controller.enqueue(chunk.subarray(0, n));
      },
    },
    { highWaterMark: 0 },
  );
  const nativeRequest = new Request("http://127.0.0.1/api/alerts", {
    method: "POST",
    body,
    headers,
    duplex: "half",
  } as RequestInit);
  // The worker builds requests this way in stream mode (createStreamRequest).
  const request = new HttpRequest({ nativeRequest } as never);
  return { request, pulled: () => pulled };
}

const jsonRequest = (value: unknown) =>
  new HttpRequest({
    method: "POST",
    url: "http://127.0.0.1/api/alerts",
    body: { string: JSON.stringify(value) },
    headers: { "content-type": "application/json" },
  });

describe("readJsonBody", () => {
  it("stops reading a chunked body past 256 KB (no Content-Length) and answers 413", async () => {
    const { request, pulled } = streamedRequest(10 * 1024 * 1024);
    expect(request.headers.get("content-length")).toBeNull();
    const r = await readJsonBody(request, false);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.response.status).toBe(413);
    expect(pulled()).toBeLessThanOrEqual(MAX_BODY_BYTES + 64 * 1024);
  });

  it("refuses a declared Content-Length over the limit without reading", async () => {
    const { request, pulled } = streamedRequest(1024, { "content-length": String(MAX_BODY_BYTES + 1) });
    const r = await readJsonBody(request, false);
    expect(!r.ok && r.response.status).toBe(413);
    expect(pulled()).toBe(0);
  });

  it("reads a body of exactly the limit", async () => {
    const { request } = streamedRequest(MAX_BODY_BYTES);
    const r = await readJsonBody(request, true);
    // 256 KB of spaces is an empty JSON body, not a too-large one.
    expect(r).toEqual({ ok: true, value: undefined });
  });

  it("parses a small JSON body", async () => {
    expect(await readJsonBody(jsonRequest({ a: 1 }), false)).toEqual({ ok: true, value: { a: 1 } });
  });
});

function alert(apps: string[]) {
  return {
    schemaId: "azureMonitorCommonAlertSchema",
    data: {
      essentials: {
        alertId: "/subscriptions/s/providers/Microsoft.AlertsManagement/alerts/1",
        alertRule: "spire-agent-attestation-failures",
        severity: "Sev1",
        signalType: "Log",
        monitorCondition: "Fired",
        monitoringService: "Log Alerts V2",
      },
      alertContext: {
        condition: { allOf: [{ dimensions: apps.map((value) => ({ name: "ContainerAppName", value })) }] },
      },
    },
  };
}

const config = {
  apps: { resourceGroup: "rg", managedTag: { name: "spire-autopilot", value: "managed" } },
  alerts: { cooldownSeconds: 900 },
} as Parameters<typeof alertsHttpHandler>[0]["config"];

const context = { log: () => undefined, info: () => undefined, warn: () => undefined } as never;
const noClient = {
  getStatus: () => Promise.reject(new Error("no durable client in this test")),
  startNew: () => Promise.reject(new Error("no durable client in this test")),
} as unknown as DurableClient;

function countingLookup() {
  let inFlight = 0;
  const seen = { calls: 0, maxInFlight: 0 };
  const lookupApp = async (name: string): Promise<AppLookup> => {
    seen.calls++;
    inFlight++;
    seen.maxInFlight = Math.max(seen.maxInFlight, inFlight);
    await new Promise((r) => setTimeout(r, 5));
    inFlight--;
    return { kind: "notFound", name };
  };
  return { lookupApp, seen };
}

describe("alert webhook: app names from dimensions", () => {
  it("refuses an invalid name with 400 naming it, and looks nothing up", async () => {
    const { lookupApp, seen } = countingLookup();
    const handler = alertsHttpHandler({ config, lookupApp });
    const res = await handler(
      jsonRequest(alert(["good-app", "../vm/x"])),
      noClient,
      context as InvocationContext,
    );
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.jsonBody)).toContain("../vm/x");
    expect(seen.calls).toBe(0);
  });

  it(`refuses more than ${MAX_ALERT_APPS} apps with 400, looking nothing up`, async () => {
    const { lookupApp, seen } = countingLookup();
    const handler = alertsHttpHandler({ config, lookupApp });
    const names = Array.from({ length: MAX_ALERT_APPS + 1 }, (_, i) => `app-${i}`);
    const res = await handler(jsonRequest(alert(names)), noClient, context as InvocationContext);
    expect(res.status).toBe(400);
    expect(seen.calls).toBe(0);
  });

  it(`looks ${MAX_ALERT_APPS} apps up at most ${ALERT_LOOKUP_CONCURRENCY} at a time`, async () => {
    const { lookupApp, seen } = countingLookup();
    const handler = alertsHttpHandler({ config, lookupApp });
    const names = Array.from({ length: MAX_ALERT_APPS }, (_, i) => `app-${i}`);
    const res = await handler(jsonRequest(alert(names)), noClient, context as InvocationContext);
    expect(res.status).toBe(404);
    expect(seen.calls).toBe(MAX_ALERT_APPS);
    expect(seen.maxInFlight).toBeLessThanOrEqual(ALERT_LOOKUP_CONCURRENCY);
    expect(seen.maxInFlight).toBeGreaterThan(1);
  });
});
