import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type HostProcess, startHostProcess } from "../../sandbox/host/process.js";
import { readJournal } from "../../sandbox/host/samples/journal.js";

const SAMPLE_APP = resolve(import.meta.dirname, "../../sandbox/host/samples/app.ts");

interface Status {
  runtimeStatus: string;
  output: unknown;
  customStatus: unknown;
  input: unknown;
}

let dir: string;
let host: HostProcess;
let key: string;
let journal: string;

async function start(orchestrator: string, input: unknown, id?: string): Promise<string> {
  const res = await fetch(
    `${host.url}/api/samples/start/${orchestrator}?code=${key}${id ? `&id=${id}` : ""}`,
    {
      method: "POST",
      body: JSON.stringify(input),
    },
  );
  expect(res.status).toBe(202);
  const body = (await res.json()) as { id: string; statusQueryGetUri: string };
  expect(res.headers.get("location")).toBe(body.statusQueryGetUri);
  return body.id;
}

async function status(id: string): Promise<Status> {
  const res = await fetch(`${host.url}/api/samples/status/${id}?code=${key}`);
  expect(res.status).toBe(200);
  return (await res.json()) as Status;
}

async function until(id: string, pred: (s: Status) => boolean, timeoutMs = 15_000): Promise<Status> {
  const deadline = Date.now() + timeoutMs;
  let last: Status | undefined;
  while (Date.now() < deadline) {
    last = await status(id);
    if (pred(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`instance ${id} never satisfied the condition; last status ${JSON.stringify(last)}`);
}

const finished = (s: Status) => ["Completed", "Failed", "Terminated"].includes(s.runtimeStatus);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "host-test-"));
  journal = join(dir, "journal.ndjson");
  host = await startHostProcess({
    appEntry: SAMPLE_APP,
    stateDir: join(dir, "state"),
    env: { SAMPLE_JOURNAL: journal, SAMPLE_TICK_SCHEDULE: "0 0 0 1 1 *" },
  });
  key = host.keys.functionKeys.default!;
});

afterAll(async () => {
  await host?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("HTTP triggers", () => {
  it("serves the registered route with params, query, headers and body", async () => {
    const res = await fetch(`${host.url}/api/samples/echo/alice?x=1`, {
      method: "PUT",
      headers: { "x-probe": "p" },
      body: "hello",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-sample")).toBe("yes");
    expect(await res.json()).toEqual({
      method: "PUT",
      params: { name: "alice" },
      query: { x: "1" },
      header: "p",
      body: "hello",
      functionName: "sampleEcho",
    });
    const optional = (await (await fetch(`${host.url}/api/samples/echo`)).json()) as { params: unknown };
    expect(optional.params).toEqual({});
  });

  it("answers 405 with Allow for a wrong method and 404 for an unknown route", async () => {
    const res = await fetch(`${host.url}/api/samples/echo/x`, { method: "DELETE" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET, PUT");
    expect((await fetch(`${host.url}/api/nope`)).status).toBe(404);
    expect((await fetch(`${host.url}/elsewhere`)).status).toBe(404);
  });

  it("enforces function keys from the keys file (query or header) and admin level", async () => {
    expect((await fetch(`${host.url}/api/samples/status/x`)).status).toBe(401);
    expect((await fetch(`${host.url}/api/samples/status/x?code=wrong`)).status).toBe(401);
    expect((await fetch(`${host.url}/api/samples/status/x?code=${key}`)).status).toBe(404);
    expect(
      (await fetch(`${host.url}/api/samples/status/x`, { headers: { "x-functions-key": key } })).status,
    ).toBe(404);
    expect((await fetch(`${host.url}/api/samples/admin?code=${key}`)).status).toBe(401);
    const admin = await fetch(`${host.url}/api/samples/admin?code=${host.keys.masterKey}`);
    expect(admin.status).toBe(200);
    expect(await admin.text()).toBe("admin ok");
  });

  it("turns a handler exception into a 500 and logs it", async () => {
    expect((await fetch(`${host.url}/api/samples/throws`)).status).toBe(500);
    await host.waitForOutput(/\[sampleThrows\] error: Error: sample failure/, 5000);
  });
});

describe("durable orchestrations", () => {
  it("runs a sequence of activities with customStatus, through the durable client", async () => {
    const id = await start("sampleSequence", { steps: 3 });
    const s = await until(id, finished);
    expect(s).toMatchObject({
      runtimeStatus: "Completed",
      output: [0, 10, 20],
      customStatus: { completed: 3, of: 3 },
    });
    expect(s.input).toEqual({ steps: 3 });
  });

  it("fans out with Task.all", async () => {
    const id = await start("sampleFanOut", ["a", "b", "c", "d"]);
    expect((await until(id, finished)).output).toEqual(["Hello a", "Hello b", "Hello c", "Hello d"]);
  });

  it("races a durable timer against an external event with Task.any", async () => {
    const waiting = await start("sampleRace", { timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 300));
    const raised = await fetch(`${host.url}/api/samples/raise/${waiting}/approval?code=${key}`, {
      method: "POST",
      body: JSON.stringify({ by: "ops" }),
    });
    expect(raised.status).toBe(202);
    expect((await until(waiting, finished)).output).toEqual({ winner: "approval", value: { by: "ops" } });

    const timedOut = await start("sampleRace", { timeoutMs: 300 });
    expect((await until(timedOut, finished)).output).toEqual({ winner: "timer" });
  });

  it("fires a durable timer no earlier than asked, on orchestration time", async () => {
    const id = await start("sampleTimer", { delayMs: 700 });
    const out = (await until(id, finished)).output as { virtualElapsedMs: number };
    expect(out.virtualElapsedMs).toBeGreaterThanOrEqual(700);
    expect(out.virtualElapsedMs).toBeLessThan(5000);
  });

  it("retries a failing activity with callActivityWithRetry, and gives up after maxNumberOfAttempts", async () => {
    const ok = await start("sampleRetry", { key: "twice", failTimes: 2, attempts: 3 });
    expect((await until(ok, finished)).output).toBe("ok after 2 failures");
    const fails = readJournal(journal).filter((e) => e.key === "twice");
    expect(fails.map((e) => e.event)).toEqual(["fail", "fail", "done"]);

    const gaveUp = await start("sampleRetry", { key: "always", failTimes: 10, attempts: 2 });
    const s = await until(gaveUp, finished);
    expect(s.runtimeStatus).toBe("Completed");
    expect((s.output as { failed: string }).failed).toMatch(/flaky failure 2 of 10/);
    expect(readJournal(journal).filter((e) => e.key === "always")).toHaveLength(2);
  });

  it("runs a sub-orchestration and returns its result to the parent", async () => {
    const id = await start("sampleParent", "zed");
    expect((await until(id, finished)).output).toEqual(["Hello zed-child", "Hello zed-parent"]);
  });

  it("continues as new with fresh history until done", async () => {
    const id = await start("sampleCounter", { count: 0, until: 3 });
    expect((await until(id, finished)).output).toEqual({ finalCount: 3 });
    const counts = readJournal(journal)
      .filter((e) => e.key.startsWith("count-"))
      .map((e) => e.key);
    expect(counts).toEqual(["count-0", "count-1", "count-2"]);
  });

  it("waits for an external event, and can be terminated", async () => {
    const id = await start("sampleWaiter", null);
    await until(id, (s) => s.runtimeStatus === "Running");
    await fetch(`${host.url}/api/samples/raise/${id}/go?code=${key}`, { method: "POST", body: '"now"' });
    expect((await until(id, finished)).output).toBe("Hello after-now");

    const other = await start("sampleWaiter", null);
    await until(other, (s) => s.runtimeStatus === "Running");
    expect(
      (await fetch(`${host.url}/api/samples/terminate/${other}?code=${key}`, { method: "POST" })).status,
    ).toBe(202);
    expect(await until(other, finished)).toMatchObject({
      runtimeStatus: "Terminated",
      output: "terminated by test",
    });
  });

  it("refuses to start a second instance with the id of a running one", async () => {
    const id = await start("sampleWaiter", null, "fixed-id-1");
    await until(id, (s) => s.runtimeStatus === "Running");
    const again = await fetch(`${host.url}/api/samples/start/sampleWaiter?code=${key}&id=fixed-id-1`, {
      method: "POST",
      body: "null",
    });
    expect(again.status).toBe(500);
    // What the durable client got: the extension's answer under NonRunningStates (host.json).
    const rpc = await fetch(`${host.url}/durabletask/orchestrators/sampleWaiter/fixed-id-1`, {
      method: "POST",
      body: "null",
    });
    expect(rpc.status).toBe(500);
    expect(await rpc.json()).toMatchObject({
      ExceptionMessage: "An Orchestration instance with the status Running already exists.",
      ExceptionType: "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException",
    });
    await fetch(`${host.url}/api/samples/terminate/${id}?code=${key}`, { method: "POST" });
    // A finished instance is overridable: the same id starts again.
    await until(id, finished);
    expect(
      (
        await fetch(`${host.url}/durabletask/orchestrators/sampleWaiter/fixed-id-1`, {
          method: "POST",
          body: "null",
        })
      ).status,
    ).toBe(202);
    await until(id, (st) => st.runtimeStatus === "Running");
    await fetch(`${host.url}/api/samples/terminate/${id}?code=${key}`, { method: "POST" });
  });

  it("serves the public status webhook only with the system key", async () => {
    const id = await start("sampleSequence", { steps: 1 });
    await until(id, finished);
    const base = `${host.url}/runtime/webhooks/durabletask/instances/${id}`;
    expect((await fetch(base)).status).toBe(401);
    const res = await fetch(`${base}?code=${host.keys.systemKeys.durabletask_extension}`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as Status).runtimeStatus).toBe("Completed");
  });
});

// The management API as the extension answers it (HttpApiHandler.HandleGetStatusRequestAsync and
// DurableClient.GetDurableOrchestrationStatusAsync in Azure/azure-functions-durable-extension).
describe("management API, as the Durable Functions extension answers it", () => {
  const webhook = (id: string, query = "") =>
    `${host.url}/runtime/webhooks/durabletask/instances/${id}?code=${host.keys.systemKeys.durabletask_extension}${query}`;

  it("answers 200 for a Failed instance (500 only with returnInternalServerErrorOnFailure), with the extension's failure prefix", async () => {
    const id = await start("sampleFails", null);
    await until(id, finished);
    const res = await fetch(webhook(id));
    expect(res.status).toBe(200);
    expect(res.headers.get("location")).toBeNull();
    const body = (await res.json()) as Status;
    expect(body.runtimeStatus).toBe("Failed");
    expect(body.output).toMatch(/^Orchestrator function 'sampleFails' failed: sample orchestration failure/);
    expect((await fetch(webhook(id, "&returnInternalServerErrorOnFailure=true"))).status).toBe(500);
    // The RPC endpoint durable-functions' getStatus calls is the same handler.
    expect((await fetch(`${host.url}/durabletask/instances/${id}`)).status).toBe(200);
  });

  it("answers 200 for a Terminated instance", async () => {
    const id = await start("sampleWaiter", null);
    await until(id, (st) => st.runtimeStatus === "Running");
    await fetch(`${host.url}/api/samples/terminate/${id}?code=${key}`, { method: "POST" });
    await until(id, finished);
    const res = await fetch(webhook(id));
    expect(res.status).toBe(200);
    expect(((await res.json()) as Status).runtimeStatus).toBe("Terminated");
  });

  it("answers a running instance 202 with Retry-After 5 and its own URL as Location", async () => {
    const id = await start("sampleWaiter", null);
    await until(id, (st) => st.runtimeStatus === "Running");
    const url = webhook(id);
    const res = await fetch(url);
    expect(res.status).toBe(202);
    expect(res.headers.get("retry-after")).toBe("5");
    expect(res.headers.get("location")).toBe(url);
    await fetch(`${host.url}/api/samples/terminate/${id}?code=${key}`, { method: "POST" });
  });

  it("writes createdTime and lastUpdatedTime in whole seconds", async () => {
    const id = await start("sampleSequence", { steps: 1 });
    await until(id, finished);
    const body = (await (await fetch(webhook(id))).json()) as {
      createdTime: string;
      lastUpdatedTime: string;
    };
    expect(body.createdTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(body.lastUpdatedTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const listed = (await (await fetch(`${host.url}/durabletask/instances/`)).json()) as Array<{
      createdTime: string;
    }>;
    expect(listed.every((s) => /:\d\dZ$/.test(s.createdTime))).toBe(true);
  });

  it("shows history as historyEvents in the extension's shape", async () => {
    const id = await start("sampleSequence", { steps: 2 });
    await until(id, finished);
    const plain = (await (await fetch(webhook(id, "&showHistory=true"))).json()) as {
      history?: unknown;
      historyEvents: Array<Record<string, unknown>>;
    };
    expect(plain.history).toBeUndefined();
    const types = plain.historyEvents.map((e) => e.EventType);
    expect(types[0]).toBe("ExecutionStarted");
    expect(types.at(-1)).toBe("ExecutionCompleted");
    expect(types).not.toContain("TaskScheduled");
    expect(types).not.toContain("OrchestratorStarted");
    expect(types).not.toContain("OrchestratorCompleted");
    expect(types.filter((t) => t === "TaskCompleted")).toHaveLength(2);
    for (const e of plain.historyEvents) {
      expect(e).not.toHaveProperty("EventId");
      expect(e).not.toHaveProperty("IsPlayed");
    }
    expect(plain.historyEvents[0]).toMatchObject({ FunctionName: "sampleSequence" });
    const done = plain.historyEvents.find((e) => e.EventType === "TaskCompleted")!;
    expect(done).toMatchObject({ FunctionName: "sampleStep" });
    expect(done).toHaveProperty("ScheduledTime");
    expect(done).not.toHaveProperty("Result");
    expect(done).not.toHaveProperty("TaskScheduledId");
    expect(plain.historyEvents.at(-1)).toMatchObject({ OrchestrationStatus: "Completed" });
    expect(plain.historyEvents.at(-1)).not.toHaveProperty("Result");

    const withOutput = (await (
      await fetch(webhook(id, "&showHistory=true&showHistoryOutput=true"))
    ).json()) as { historyEvents: Array<Record<string, unknown>> };
    // Step 0 returns 0 and step 1 returns 10, parsed from the stored JSON text.
    expect(
      withOutput.historyEvents.filter((e) => e.EventType === "TaskCompleted").map((e) => e.Result),
    ).toEqual([0, 10]);
    expect(withOutput.historyEvents.find((e) => e.EventType === "TaskCompleted")).toMatchObject({
      Result: 0,
    });
  });

  it("answers an unknown instance 404 with no body, on the webhook and the RPC endpoint", async () => {
    for (const url of [webhook("no-such-instance"), `${host.url}/durabletask/instances/no-such-instance`]) {
      const res = await fetch(url);
      expect(res.status).toBe(404);
      expect(await res.text()).toBe("");
    }
    // durable-functions' getStatus still reads that as "not found".
    const viaClient = await fetch(`${host.url}/api/samples/status/no-such-instance?code=${key}`);
    expect(viaClient.status).toBe(404);
    expect(((await viaClient.json()) as { error: string }).error).toMatch(/replied with HTTP 404 response/);
  });

  it("waits the full retry interval after the last failed attempt before failing the call", async () => {
    const id = await start("sampleRetry", { key: "last-wait", failTimes: 10, attempts: 2 });
    expect(((await until(id, finished)).output as { failed: string }).failed).toMatch(/flaky failure 2/);
    const { historyEvents } = (await (await fetch(webhook(id, "&showHistory=true"))).json()) as {
      historyEvents: Array<{ EventType: string; Timestamp: string; FireAt?: string }>;
    };
    const timers = historyEvents.filter((e) => e.EventType === "TimerCreated");
    const failures = historyEvents.filter((e) => e.EventType === "TaskFailed");
    expect(failures).toHaveLength(2);
    expect(timers).toHaveLength(2);
    // 50 ms after the first failure, 100 ms (50 x 2) after the last one.
    const waited = timers.map((t, i) => Date.parse(t.FireAt!) - Date.parse(failures[i]!.Timestamp));
    expect(waited[0]).toBeGreaterThanOrEqual(45);
    expect(waited[1]).toBeGreaterThanOrEqual(95);
  });

  it("stops retrying without a timer once retryTimeoutInMilliseconds has passed, and the call never returns (durable-js#629)", async () => {
    const id = await start("sampleRetry", {
      key: "budget",
      failTimes: 100,
      attempts: 50,
      retryTimeoutMs: 120,
    });
    // Failures at ~0, ~50, ~150 ms: the third is past the 120 ms budget, so no further attempt.
    const deadline = Date.now() + 10_000;
    while (readJournal(journal).filter((e) => e.key === "budget").length < 3 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 800));
    expect(readJournal(journal).filter((e) => e.key === "budget")).toHaveLength(3);
    expect((await status(id)).runtimeStatus).toBe("Running");
    await fetch(`${host.url}/api/samples/terminate/${id}?code=${key}`, { method: "POST" });
  });
});

describe("Event Grid triggers, behind the extension's webhook", () => {
  const hook = (query: string) => `${host.url}/runtime/webhooks/eventgrid?${query}`;
  const sysKey = () => host.keys.systemKeys.eventgrid_extension!;
  const event = (id: string, data: Record<string, unknown> = {}) => ({
    id,
    topic: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v",
    subject: "bundle",
    eventType: "Sample.Happened",
    eventTime: "2026-12-01T00:00:00Z",
    data,
    dataVersion: "1",
    metadataVersion: "1",
  });
  const deliver = (
    body: string,
    type: string | undefined,
    query = `functionName=sampleEvents&code=${sysKey()}`,
  ) =>
    fetch(hook(query), {
      method: "POST",
      headers: { "content-type": "application/json", ...(type ? { "aeg-event-type": type } : {}) },
      body,
    });
  const invocations = () => readJournal(journal).filter((e) => e.fn === "sampleEvents");

  it("keeps an eventgrid_extension system key in keys.json and lists the function", () => {
    expect(sysKey()).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(host.functions).toContainEqual(
      expect.objectContaining({ name: "sampleEvents", kind: "eventGrid" }),
    );
  });

  it("answers the subscription validation handshake with the validation code", async () => {
    const res = await deliver(
      JSON.stringify([
        {
          ...event("v1"),
          eventType: "Microsoft.EventGrid.SubscriptionValidationEvent",
          data: { validationCode: "512d38b6-c7b8-40c8-89fe-f46f9e9622b6", validationUrl: "https://x" },
        },
      ]),
      "SubscriptionValidation",
    );
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ validationResponse: "512d38b6-c7b8-40c8-89fe-f46f9e9622b6" });
    expect(invocations()).toHaveLength(0);
  });

  it("invokes the function once per event of a notification and answers 202", async () => {
    const res = await deliver(JSON.stringify([event("n1"), event("n2")]), "Notification");
    expect(res.status).toBe(202);
    expect(await res.text()).toBe("");
    expect(
      invocations()
        .map((e) => e.key)
        .sort(),
    ).toEqual(["n1|Sample.Happened|bundle", "n2|Sample.Happened|bundle"]);
    // One event as a bare object is one invocation too; header values are case-insensitive.
    expect((await deliver(JSON.stringify(event("n3")), "notification")).status).toBe(202);
    expect(invocations().filter((e) => e.key.startsWith("n3|"))).toHaveLength(1);
  });

  it("answers 500 with the failure when any invocation fails, after running every event", async () => {
    const res = await deliver(JSON.stringify([event("f1", { fail: true }), event("f2")]), "Notification");
    expect(res.status).toBe(500);
    expect(await res.text()).toContain("sample event f1 failed");
    expect(invocations().filter((e) => e.key.startsWith("f2|"))).toHaveLength(1);
  });

  it("answers malformed deliveries as the host does: 400 without a known aeg-event-type, 500 for bad JSON", async () => {
    const before = invocations().length;
    expect((await deliver(JSON.stringify([event("m1")]), undefined)).status).toBe(400);
    expect((await deliver(JSON.stringify([event("m2")]), "Bogus")).status).toBe(400);
    const notJson = await deliver("{not json", "Notification");
    expect(notJson.status).toBe(500);
    expect(await notJson.text()).toBe("");
    expect((await deliver('"a string"', "Notification")).status).toBe(500);
    expect((await deliver("[{}]", "SubscriptionValidation")).status).toBe(500);
    expect((await deliver("", "Unsubscribe")).status).toBe(202);
    expect(invocations().length).toBe(before);
  });

  it("requires the eventgrid_extension key or the master key, and a known functionName", async () => {
    const body = JSON.stringify([event("k1")]);
    expect((await deliver(body, "Notification", "functionName=sampleEvents")).status).toBe(401);
    expect((await deliver(body, "Notification", "functionName=sampleEvents&code=wrong")).status).toBe(401);
    const fnKey = `functionName=sampleEvents&code=${host.keys.functionKeys.default}`;
    expect((await deliver(body, "Notification", fnKey)).status).toBe(401);
    const durableKey = `functionName=sampleEvents&code=${host.keys.systemKeys.durabletask_extension}`;
    expect((await deliver(body, "Notification", durableKey)).status).toBe(401);
    const unknown = await deliver(body, "Notification", `functionName=nope&code=${sysKey()}`);
    expect(unknown.status).toBe(404);
    expect(await unknown.text()).toBe("cannot find function: 'nope'");
    expect((await deliver(body, "Notification", `code=${sysKey()}`)).status).toBe(404);
    expect(invocations().filter((e) => e.key.startsWith("k1|"))).toHaveLength(0);
    const master = await deliver(
      body,
      "Notification",
      `functionName=sampleEvents&code=${host.keys.masterKey}`,
    );
    expect(master.status).toBe(202);
  });
});

describe("restarts", () => {
  it("fails an instance whose replay diverges from its history (non-determinism)", async () => {
    const stateDir = join(dir, "nondet");
    const env = { SAMPLE_JOURNAL: join(dir, "nondet.ndjson"), SAMPLE_TICK_SCHEDULE: "0 0 0 1 1 *" };
    const v1 = await startHostProcess({ appEntry: SAMPLE_APP, stateDir, env });
    const k = v1.keys.functionKeys.default!;
    const res = await fetch(`${v1.url}/api/samples/start/sampleWaiter?code=${k}`, {
      method: "POST",
      body: "null",
    });
    const { id } = (await res.json()) as { id: string };
    const deadline = Date.now() + 10_000;
    while (!readJournal(env.SAMPLE_JOURNAL).some((e) => e.key === "before-wait")) {
      if (Date.now() > deadline) throw new Error("v1 never ran its first activity");
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 300));
    await v1.stop();

    const v2 = await startHostProcess({
      appEntry: SAMPLE_APP,
      stateDir,
      env: { ...env, SAMPLE_VARIANT: "changed" },
    });
    try {
      await fetch(`${v2.url}/api/samples/raise/${id}/go?code=${k}`, { method: "POST", body: '"x"' });
      const deadline2 = Date.now() + 10_000;
      let s: Status | undefined;
      while (Date.now() < deadline2) {
        s = (await (await fetch(`${v2.url}/api/samples/status/${id}?code=${k}`)).json()) as Status;
        if (s.runtimeStatus !== "Running") break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(s?.runtimeStatus).toBe("Failed");
      expect(String(s?.output)).toMatch(
        /Non-deterministic workflow detected: .*action #0 is CallActivity\(sampleStep\).*records CallActivity\(sampleHello\)/,
      );
      expect(readJournal(env.SAMPLE_JOURNAL).some((e) => e.key === "after-x")).toBe(false);
    } finally {
      await v2.stop();
    }
  });
});

describe("timer triggers", () => {
  it("fire on their NCRONTAB schedule, scaled by the host's time scale", async () => {
    const timerJournal = join(dir, "ticks.ndjson");
    // Every virtual minute at 60x: about once a real second.
    const fast = await startHostProcess({
      appEntry: SAMPLE_APP,
      stateDir: join(dir, "timers"),
      timeScale: 60,
      env: { SAMPLE_JOURNAL: timerJournal, SAMPLE_TICK_SCHEDULE: "0 * * * * *" },
    });
    try {
      const deadline = Date.now() + 8000;
      while (
        readJournal(timerJournal).filter((e) => e.event === "tick").length < 3 &&
        Date.now() < deadline
      ) {
        await new Promise((r) => setTimeout(r, 100));
      }
      const ticks = readJournal(timerJournal).filter((e) => e.event === "tick");
      expect(ticks.length).toBeGreaterThanOrEqual(3);
      const gaps = ticks.slice(1).map((t, i) => t.at - ticks[i]!.at);
      for (const gap of gaps) {
        expect(gap).toBeGreaterThan(500);
        expect(gap).toBeLessThan(2000);
      }
    } finally {
      await fast.stop();
    }
  });
});
