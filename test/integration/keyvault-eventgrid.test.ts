import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SecretClient } from "@azure/keyvault-secrets";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SandboxTokenCredential } from "../../sandbox/azure/credential.js";
import { scaledClock } from "../../sandbox/azure/logs/clock.js";
import { type LoopbackTls, makeLoopbackTls } from "../../sandbox/azure/tls.js";
import { EventSubscriptionFailed } from "../../sandbox/emulators/eventgrid.js";
import { type KeyVaultServer, NEAR_EXPIRY_MS, startKeyVault } from "../../sandbox/emulators/keyvault.js";

/*
 * The Key Vault emulator's Event Grid events, delivered to a plain webhook receiver: the handshake
 * comes first, events follow Key Vault's schema, filters apply, failures are retried on Event
 * Grid's schedule. 1000x clock: Event Grid's 10 s and 30 s retry delays take 10 and 30 real ms.
 */

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

type Answer = (r: Received) => { status: number; body?: string };

const handshakeOk: Answer = (r) => {
  const [event] = JSON.parse(r.body) as Array<{ data: { validationCode: string } }>;
  return { status: 200, body: JSON.stringify({ validationResponse: event?.data.validationCode }) };
};

let tls: LoopbackTls;
let vault: KeyVaultServer;
let client: SecretClient;
let receiver: Server;
let receiverUrl: string;
let received: Received[] = [];
let answer: Answer = () => ({ status: 200 });
const clock = scaledClock(1000);
const subscriptions: Array<{ delete(): void }> = [];

const notifications = () =>
  received
    .filter((r) => r.headers["aeg-event-type"] === "Notification")
    .map((r) => ({ headers: r.headers, events: JSON.parse(r.body) as Array<Record<string, unknown>> }));

async function until<T>(read: () => T, ok: (v: T) => boolean, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function subscribe(opts: { subjectIn?: string[]; includedEventTypes?: string[] } = {}) {
  answer = (r) =>
    r.headers["aeg-event-type"] === "SubscriptionValidation" ? handshakeOk(r) : { status: 202 };
  const sub = await vault.subscribeEventGrid({
    name: "test-sub",
    endpointUrl: `${receiverUrl}/hook?code=k`,
    ...opts,
  });
  subscriptions.push(sub);
  return sub;
}

beforeAll(async () => {
  tls = await makeLoopbackTls();
  vault = await startKeyVault({ tls, clock, subscriptionId: "sub-1", resourceGroup: "rg-spire" });
  client = new SecretClient(vault.vaultUrl, new SandboxTokenCredential(), {
    tlsOptions: { ca: tls.caPem },
    disableChallengeResourceVerification: true,
    retryOptions: { maxRetries: 0 },
  });
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const r = { headers: req.headers, body: Buffer.concat(chunks).toString("utf8") };
      received.push(r);
      const a = answer(r);
      res.writeHead(a.status, { "content-type": "application/json" }).end(a.body ?? "");
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});

afterEach(() => {
  for (const s of subscriptions.splice(0)) s.delete();
  received = [];
});

afterAll(async () => {
  await vault?.close();
  await new Promise((r) => receiver?.close(r));
});

describe("the Key Vault emulator's Event Grid subscriptions", () => {
  it("validates the endpoint first, and keeps no subscription whose endpoint fails the handshake", async () => {
    answer = () => ({ status: 200, body: "{}" });
    await expect(
      vault.subscribeEventGrid({ name: "no-echo", endpointUrl: `${receiverUrl}/hook` }),
    ).rejects.toBeInstanceOf(EventSubscriptionFailed);
    answer = () => ({ status: 401 });
    await expect(
      vault.subscribeEventGrid({ name: "denied", endpointUrl: `${receiverUrl}/hook` }),
    ).rejects.toThrow(/handshake failed .* answered 401/);
    const [validation] = received;
    expect(validation?.headers["aeg-event-type"]).toBe("SubscriptionValidation");
    const [event] = JSON.parse(validation?.body ?? "[]") as Array<Record<string, unknown>>;
    expect(event).toMatchObject({
      eventType: "Microsoft.EventGrid.SubscriptionValidationEvent",
      topic: vault.resourceId,
      data: { validationCode: expect.any(String) },
    });
    received = [];
    await client.setSecret("unsubscribed", "value-1");
    await new Promise((r) => setTimeout(r, 100));
    expect(received).toEqual([]);
  });

  it("publishes SecretNewVersionCreated in the Event Grid schema, with Key Vault's data and never the value", async () => {
    const sub = await subscribe();
    const set = await client.setSecret("spire-trust-bundle", "PEM-SECRET-VALUE", {
      contentType: "application/x-pem-file",
    });
    const [n] = await until(notifications, (ns) => ns.length >= 1);
    expect(n?.headers).toMatchObject({
      "aeg-event-type": "Notification",
      "aeg-subscription-name": "TEST-SUB",
      "aeg-delivery-count": "0",
      "aeg-metadata-version": "1",
    });
    expect(n?.events).toEqual([
      {
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        topic: `/subscriptions/sub-1/resourceGroups/rg-spire/providers/Microsoft.KeyVault/vaults/${vault.vaultName}`,
        subject: "spire-trust-bundle",
        eventType: "Microsoft.KeyVault.SecretNewVersionCreated",
        eventTime: expect.any(String),
        data: {
          Id: set.properties.id,
          VaultName: vault.vaultName,
          ObjectType: "Secret",
          ObjectName: "spire-trust-bundle",
          Version: set.properties.version,
          NBF: null,
          EXP: null,
        },
        dataVersion: "1",
        metadataVersion: "1",
      },
    ]);
    expect(received.map((r) => r.body).join("")).not.toContain("PEM-SECRET-VALUE");
    await sub.waitIdle();
  });

  it("raises SecretNearExpiry at once for material that expires within 30 days, and SecretExpired at expiry", async () => {
    const sub = await subscribe({ subjectIn: ["short-lived"] });
    // 60 simulated seconds: 60 real ms at 1000x.
    const expiresOn = new Date(Math.ceil((clock.now() + 60_000) / 1000) * 1000);
    const set = await client.setSecret("short-lived", "v", { expiresOn });
    const events = await until(
      () => notifications().flatMap((n) => n.events),
      (es) => es.length >= 3,
    );
    expect(events.map((e) => e.eventType)).toEqual([
      "Microsoft.KeyVault.SecretNewVersionCreated",
      "Microsoft.KeyVault.SecretNearExpiry",
      "Microsoft.KeyVault.SecretExpired",
    ]);
    for (const e of events) {
      expect(e.data).toMatchObject({ Version: set.properties.version, EXP: expiresOn.getTime() / 1000 });
    }
    // The emulator records an attempt once the receiver has answered, after the receiver saw it.
    const expired = await until(
      () => sub.attempts.find((a) => a.eventType.endsWith("SecretExpired")),
      (a) => a !== undefined,
    );
    expect(expired?.at).toBeGreaterThanOrEqual(expiresOn.getTime());
    expect(NEAR_EXPIRY_MS).toBe(30 * 86_400_000);
  });

  it("raises nothing for an older version's expiry once a newer version exists", async () => {
    await subscribe({ subjectIn: ["rotated"] });
    await client.setSecret("rotated", "old", {
      expiresOn: new Date(Math.ceil((clock.now() + 200_000) / 1000) * 1000),
    });
    await client.setSecret("rotated", "new");
    await new Promise((r) => setTimeout(r, 400)); // 400 simulated seconds: past the old exp
    expect(notifications().flatMap((n) => n.events.map((e) => e.eventType))).toEqual([
      "Microsoft.KeyVault.SecretNewVersionCreated",
      "Microsoft.KeyVault.SecretNearExpiry",
      "Microsoft.KeyVault.SecretNewVersionCreated",
    ]);
  });

  it("delivers only what the subscription's filters let through", async () => {
    const sub = await subscribe({
      subjectIn: ["Spire-Trust-Bundle"],
      includedEventTypes: ["Microsoft.KeyVault.SecretNearExpiry"],
    });
    await client.setSecret("spire-trust-bundle", "a");
    await client.setSecret("other-secret", "b", { expiresOn: new Date(Date.now() + 86_400_000) });
    await client.setSecret("spire-trust-bundle", "c", { expiresOn: new Date(Date.now() + 86_400_000) });
    const events = await until(
      () => notifications().flatMap((n) => n.events),
      (es) => es.length >= 1,
    );
    await sub.waitIdle();
    expect(events.map((e) => `${e.eventType} ${e.subject}`)).toEqual([
      "Microsoft.KeyVault.SecretNearExpiry spire-trust-bundle",
    ]);
  });

  it("retries a failed delivery on Event Grid's schedule, and never retries a 400", async () => {
    const sub = await subscribe({ subjectIn: ["flaky", "refused"] });
    let failures = 2;
    answer = (r) => {
      const [e] = JSON.parse(r.body) as Array<{ subject: string }>;
      if (e?.subject === "refused") return { status: 400 };
      return failures-- > 0 ? { status: 500 } : { status: 202 };
    };
    await client.setSecret("flaky", "x");
    await client.setSecret("refused", "y");
    await sub.waitIdle(5000);
    const flaky = sub.attempts.filter((a) => a.subject === "flaky");
    expect(flaky.map((a) => [a.deliveryCount, a.status])).toEqual([
      [0, 500],
      [1, 500],
      [2, 202],
    ]);
    // 10 s, then 30 s (simulated), as Event Grid waits.
    expect((flaky[1]?.at ?? 0) - (flaky[0]?.at ?? 0)).toBeGreaterThanOrEqual(10_000);
    expect((flaky[2]?.at ?? 0) - (flaky[1]?.at ?? 0)).toBeGreaterThanOrEqual(30_000);
    expect(sub.attempts.filter((a) => a.subject === "refused").map((a) => a.status)).toEqual([400]);
    expect(sub.deadLettered.map((d) => [d.event.subject, d.lastStatus])).toEqual([["refused", 400]]);
  });

  it("gives up after maxDeliveryAttempts", async () => {
    const sub = await subscribe({ subjectIn: ["doomed"] });
    const first = await vault.subscribeEventGrid({
      name: "bounded",
      endpointUrl: `${receiverUrl}/hook`,
      subjectIn: ["doomed"],
      maxDeliveryAttempts: 3,
    });
    subscriptions.push(first);
    answer = () => ({ status: 503 });
    await client.setSecret("doomed", "z");
    await first.waitIdle(5000);
    expect(first.attempts.map((a) => a.deliveryCount)).toEqual([0, 1, 2]);
    expect(first.deadLettered[0]?.reason).toMatch(/3 delivery attempts failed/);
    sub.delete();
  });
});
