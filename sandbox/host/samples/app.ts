// Sample functions for the local host's own tests and the host-resume scenario. They are NOT
// part of the product: functions/index.ts never imports this file.
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from "@azure/functions";
import * as df from "durable-functions";
import { readJournal, record } from "./journal.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- activities

df.app.activity("sampleStep", {
  handler: async (input: { step: number; delayMs?: number }) => {
    record("sampleStep", "start", String(input.step));
    await sleep(input.delayMs ?? 0);
    record("sampleStep", "done", String(input.step));
    return input.step * 10;
  },
});

df.app.activity("sampleHello", {
  handler: (name: string) => {
    record("sampleHello", "done", name);
    return `Hello ${name}`;
  },
});

/** Fails its first `failTimes` calls for a key, then succeeds: for retry tests. */
df.app.activity("sampleFlaky", {
  handler: (input: { key: string; failTimes: number }) => {
    const journal = process.env.SAMPLE_JOURNAL;
    const calls = journal
      ? readJournal(journal).filter((e) => e.fn === "sampleFlaky" && e.key === input.key).length
      : 0;
    if (calls < input.failTimes) {
      record("sampleFlaky", "fail", input.key);
      throw new Error(`flaky failure ${calls + 1} of ${input.failTimes}`);
    }
    record("sampleFlaky", "done", input.key);
    return `ok after ${calls} failures`;
  },
});

// ---------------------------------------------------------------- orchestrations

df.app.orchestration("sampleSequence", function* (context) {
  const input = context.df.getInput() as { steps: number; delayMs?: number };
  const results: number[] = [];
  for (let step = 0; step < input.steps; step++) {
    results.push(yield context.df.callActivity("sampleStep", { step, delayMs: input.delayMs }));
    context.df.setCustomStatus({ completed: step + 1, of: input.steps });
  }
  return results;
});

df.app.orchestration("sampleFanOut", function* (context) {
  const names = context.df.getInput() as string[];
  const tasks = names.map((n) => context.df.callActivity("sampleHello", n));
  return yield context.df.Task.all(tasks);
});

df.app.orchestration("sampleRace", function* (context) {
  const { timeoutMs } = context.df.getInput() as { timeoutMs: number };
  const deadline = new Date(context.df.currentUtcDateTime.getTime() + timeoutMs);
  const timer = context.df.createTimer(deadline);
  const approval = context.df.waitForExternalEvent("approval");
  const winner = yield context.df.Task.any([timer, approval]);
  if (winner === approval) {
    timer.cancel();
    return { winner: "approval", value: approval.result };
  }
  return { winner: "timer" };
});

df.app.orchestration("sampleTimer", function* (context) {
  const { delayMs } = context.df.getInput() as { delayMs: number };
  const start = context.df.currentUtcDateTime.getTime();
  yield context.df.createTimer(new Date(start + delayMs));
  return { virtualElapsedMs: context.df.currentUtcDateTime.getTime() - start };
});

df.app.orchestration("sampleRetry", function* (context) {
  const input = context.df.getInput() as {
    key: string;
    failTimes: number;
    attempts: number;
    retryTimeoutMs?: number;
  };
  const retry = new df.RetryOptions(50, input.attempts);
  retry.backoffCoefficient = 2;
  if (input.retryTimeoutMs !== undefined) retry.retryTimeoutInMilliseconds = input.retryTimeoutMs;
  try {
    return yield context.df.callActivityWithRetry("sampleFlaky", retry, {
      key: input.key,
      failTimes: input.failTimes,
    });
  } catch (err) {
    return { failed: (err as Error).message };
  }
});

/** Fails after one activity: an unhandled orchestrator error. */
df.app.orchestration("sampleFails", function* (context) {
  yield context.df.callActivity("sampleHello", "doomed");
  throw new Error("sample orchestration failure");
});

df.app.orchestration("sampleParent", function* (context) {
  const name = context.df.getInput() as string;
  const child = yield context.df.callSubOrchestrator("sampleChild", name);
  const own = yield context.df.callActivity("sampleHello", `${name}-parent`);
  return [child, own];
});

df.app.orchestration("sampleChild", function* (context) {
  const name = context.df.getInput() as string;
  return yield context.df.callActivity("sampleHello", `${name}-child`);
});

df.app.orchestration("sampleCounter", function* (context) {
  const state = context.df.getInput() as { count: number; until: number };
  yield context.df.callActivity("sampleHello", `count-${state.count}`);
  if (state.count + 1 < state.until) {
    context.df.continueAsNew({ count: state.count + 1, until: state.until });
    return undefined;
  }
  return { finalCount: state.count + 1 };
});

/** Changes shape when SAMPLE_VARIANT=changed, to prove replay divergence is detected. */
df.app.orchestration("sampleWaiter", function* (context) {
  if (process.env.SAMPLE_VARIANT === "changed") {
    yield context.df.callActivity("sampleStep", { step: 99 });
  } else {
    yield context.df.callActivity("sampleHello", "before-wait");
  }
  const go = yield context.df.waitForExternalEvent("go");
  const after = yield context.df.callActivity("sampleHello", `after-${String(go)}`);
  return after;
});

// ---------------------------------------------------------------- HTTP + client

df.app.client.http("sampleStart", {
  route: "samples/start/{orchestrator}",
  methods: ["POST"],
  authLevel: "function",
  handler: async (request: HttpRequest, client: df.DurableClient) => {
    const text = await request.text();
    const input = text ? JSON.parse(text) : undefined;
    const instanceId = await client.startNew(request.params.orchestrator!, {
      input,
      instanceId: request.query.get("id") ?? undefined,
    });
    return client.createCheckStatusResponse(request, instanceId);
  },
});

df.app.client.http("sampleStatus", {
  route: "samples/status/{id}",
  methods: ["GET"],
  authLevel: "function",
  handler: async (request: HttpRequest, client: df.DurableClient): Promise<HttpResponseInit> => {
    try {
      const status = await client.getStatus(request.params.id!);
      return { jsonBody: status };
    } catch (err) {
      return { status: 404, jsonBody: { error: (err as Error).message } };
    }
  },
});

df.app.client.http("sampleRaise", {
  route: "samples/raise/{id}/{event}",
  methods: ["POST"],
  authLevel: "function",
  handler: async (request: HttpRequest, client: df.DurableClient): Promise<HttpResponseInit> => {
    const text = await request.text();
    await client.raiseEvent(request.params.id!, request.params.event!, text ? JSON.parse(text) : undefined);
    return { status: 202 };
  },
});

df.app.client.http("sampleTerminate", {
  route: "samples/terminate/{id}",
  methods: ["POST"],
  authLevel: "function",
  handler: async (request: HttpRequest, client: df.DurableClient): Promise<HttpResponseInit> => {
    await client.terminate(request.params.id!, "terminated by test");
    return { status: 202 };
  },
});

app.http("sampleEcho", {
  route: "samples/echo/{name?}",
  methods: ["GET", "PUT"],
  authLevel: "anonymous",
  handler: async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    context.log("echo called");
    return {
      status: 200,
      headers: { "x-sample": "yes" },
      jsonBody: {
        method: request.method,
        params: request.params,
        query: Object.fromEntries(request.query),
        header: request.headers.get("x-probe"),
        body: await request.text(),
        functionName: context.functionName,
      },
    };
  },
});

app.http("sampleAdminOnly", {
  route: "samples/admin",
  methods: ["GET"],
  authLevel: "admin",
  handler: async () => ({ body: "admin ok" }),
});

app.http("sampleThrows", {
  route: "samples/throws",
  methods: ["GET"],
  authLevel: "anonymous",
  handler: async () => {
    throw new Error("sample failure");
  },
});

app.timer("sampleTick", {
  schedule: "%SAMPLE_TICK_SCHEDULE%",
  handler: (timer, context: InvocationContext) => {
    record("sampleTick", "tick", context.invocationId);
    context.log(`tick pastDue=${timer.isPastDue}`);
  },
});

/** Records each event it is invoked with; an event whose data says `fail` fails its invocation. */
app.eventGrid("sampleEvents", {
  handler: (event, context: InvocationContext) => {
    const data = (event.data ?? {}) as { fail?: boolean };
    record("sampleEvents", data.fail ? "fail" : "done", `${event.id}|${event.eventType}|${event.subject}`);
    context.log(`event ${event.id} ${event.eventType}`);
    if (data.fail) throw new Error(`sample event ${event.id} failed`);
  },
});
