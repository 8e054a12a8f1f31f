import type { OrchestrationHandler } from "durable-functions";
import { afterEach, describe, expect, it } from "vitest";
import { HostClock, setVirtualTimeout } from "../../sandbox/host/clock.js";
import { EngineError } from "../../sandbox/host/durable/engine.js";
import {
  ActionType,
  actionSignature,
  flattenActions,
  retryDelay,
} from "../../sandbox/host/durable/history.js";
import { authorize, authorizeSystem, type HostKeys } from "../../sandbox/host/keys.js";
import { ReplayHarness } from "../../sandbox/host/testing.js";

describe("action flattening", () => {
  it("numbers compound actions depth-first, as durable-functions allocates sequence numbers", () => {
    const actions = [
      [
        { actionType: ActionType.CallActivity, functionName: "a" },
        {
          actionType: ActionType.WhenAll,
          compoundActions: [
            { actionType: ActionType.CallActivity, functionName: "b" },
            {
              actionType: ActionType.WhenAny,
              compoundActions: [
                { actionType: ActionType.CreateTimer, fireAt: "2026-01-01T00:00:00Z" },
                { actionType: ActionType.WaitForExternalEvent, externalEventName: "go" },
              ],
            },
          ],
        },
        { actionType: ActionType.CallSubOrchestrator, functionName: "child" },
      ],
    ];
    expect(flattenActions(actions).map(actionSignature)).toEqual([
      "CallActivity(a)",
      "CallActivity(b)",
      "CreateTimer",
      "WaitForExternalEvent(go)",
      "CallSubOrchestrator(child)",
    ]);
  });

  it("tells a plain call from a call with retry", () => {
    expect(actionSignature({ actionType: ActionType.CallActivity, functionName: "x" })).not.toBe(
      actionSignature({ actionType: ActionType.CallActivityWithRetry, functionName: "x" }),
    );
  });
});

describe("retry delays (DTFx RetryInterceptor.ComputeNextDelay)", () => {
  const policy = { firstRetryIntervalInMilliseconds: 100, maxNumberOfAttempts: 4, backoffCoefficient: 2 };
  it.each([
    [1, 0, 100],
    [2, 0, 200],
    [3, 0, 400],
    // DTFx waits the full interval after the last attempt too, and only then gives up.
    [4, 0, 800],
  ])("after failed attempt %i (elapsed %i ms) waits %s ms", (attempt, elapsed, expected) => {
    expect(retryDelay(policy, attempt, elapsed)).toBe(expected);
  });
  it("caps the interval", () => {
    expect(retryDelay({ ...policy, maxRetryIntervalInMilliseconds: 150 }, 3, 0)).toBe(150);
  });
  it.each([
    // DTFx compares the time of the failure with first attempt + timeout; the next wait may run past it.
    [249, 200],
    [250, undefined],
    [10_000, undefined],
  ])("with a 250 ms retry timeout, a failure %i ms after the first attempt waits %s", (elapsed, expected) => {
    expect(retryDelay({ ...policy, retryTimeoutInMilliseconds: 250 }, 2, elapsed)).toBe(expected);
  });
  it("treats an absent retry timeout as none, and 0 as already passed", () => {
    expect(retryDelay(policy, 2, 1e12)).toBe(200);
    expect(retryDelay({ ...policy, retryTimeoutInMilliseconds: 0 }, 1, 0)).toBeUndefined();
  });
});

describe("function keys", () => {
  const keys: HostKeys = {
    masterKey: "master-key-0123456789",
    functionKeys: { default: "host-function-key-01" },
    systemKeys: { durabletask_extension: "durable-system-key-1" },
    functions: { reattest: { default: "only-for-reattest-1" } },
  };
  it.each([
    ["anonymous", "any", undefined, true],
    ["function", "health", undefined, false],
    ["function", "health", "wrong", false],
    ["function", "health", "host-function-key-01", true],
    ["function", "health", "master-key-0123456789", true],
    ["function", "reattest", "only-for-reattest-1", true],
    ["function", "health", "only-for-reattest-1", false],
    ["admin", "health", "host-function-key-01", false],
    ["admin", "health", "master-key-0123456789", true],
  ] as const)("%s level, function %s, key %s -> %s", (level, fn, key, ok) => {
    expect(authorize(keys, level, fn, key)).toBe(ok);
  });
  it("accepts the extension's system key or the master key for durable webhooks", () => {
    expect(authorizeSystem(keys, "durabletask_extension", "durable-system-key-1")).toBe(true);
    expect(authorizeSystem(keys, "durabletask_extension", "master-key-0123456789")).toBe(true);
    expect(authorizeSystem(keys, "durabletask_extension", "host-function-key-01")).toBe(false);
  });
});

describe("host clock", () => {
  it("runs scaled and never starts before a saved floor", async () => {
    const floor = Date.now() + 3_600_000;
    const clock = new HostClock(100, floor);
    expect(clock.now()).toBeGreaterThanOrEqual(floor);
    const t0 = clock.now();
    await new Promise((r) => setTimeout(r, 50));
    expect(clock.now() - t0).toBeGreaterThanOrEqual(4000);
    expect(clock.realDelayUntil(clock.now() + 10_000)).toBeLessThanOrEqual(100);
  });
  it("refuses a non-positive scale", () => {
    expect(() => new HostClock(0)).toThrow(/positive/);
  });
});

describe("virtual timeouts", () => {
  it("never fire before the virtual instant, even when real delays round down", async () => {
    const clock = new HostClock(60);
    const firedEarly: number[] = [];
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => {
        const at = clock.now() + 1000 + i * 7;
        return new Promise<void>((resolve) =>
          setVirtualTimeout(clock, at, () => {
            if (clock.now() < at) firedEarly.push(at - clock.now());
            resolve();
          }),
        );
      }),
    );
    expect(firedEarly).toEqual([]);
  });
});

describe("a clock shared across processes", () => {
  it("agrees with any other clock of the same origin and scale, and still honours a floor", () => {
    const origin = Date.now() - 5000;
    const a = new HostClock(10, 0, origin);
    const b = new HostClock(10, 0, origin);
    expect(Math.abs(a.now() - b.now())).toBeLessThan(50);
    expect(a.now() - origin).toBeGreaterThanOrEqual(50_000);
    const floored = new HostClock(10, a.now() + 3_600_000, origin);
    expect(floored.now()).toBeGreaterThanOrEqual(a.now() + 3_600_000);
  });
});

describe("starting an id that is in use (host.json overridableExistingInstanceStates)", () => {
  const waiter: OrchestrationHandler = function* (context) {
    yield context.df.callActivity("note", context.df.getInput());
    return yield context.df.waitForExternalEvent("go");
  };
  let harness: ReplayHarness | undefined;
  afterEach(async () => {
    await harness?.dispose();
  });

  it("NonRunningStates: refuses a running id as the extension does (500, OrchestrationAlreadyExistsException)", async () => {
    harness = new ReplayHarness({
      orchestrations: { waiter },
      activities: { note: () => null },
      overridableExistingInstanceStates: "NonRunningStates",
    });
    harness.start("waiter", "first", "one");
    await harness.waitFor("one", (s) => s.runtimeStatus === "Running");
    let refused: unknown;
    try {
      harness.start("waiter", "second", "one");
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(EngineError);
    expect(refused).toMatchObject({
      status: 500,
      body: {
        ExceptionMessage: "An Orchestration instance with the status Running already exists.",
        ExceptionType: "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException",
      },
    });
    expect(harness.status("one")?.input).toBe("first");
    // A finished instance is overridable.
    await harness.raiseEvent("one", "go", "done");
    await harness.waitFor("one", (s) => s.runtimeStatus === "Completed");
    harness.start("waiter", "third", "one");
    await harness.waitFor("one", (s) => s.runtimeStatus === "Running" && s.input === "third");
  });

  it("AnyState: a start replaces the running instance", async () => {
    harness = new ReplayHarness({
      orchestrations: { waiter },
      activities: { note: () => null },
      overridableExistingInstanceStates: "AnyState",
    });
    harness.start("waiter", "first", "one");
    await harness.waitFor("one", (s) => s.runtimeStatus === "Running");
    harness.start("waiter", "second", "one");
    await harness.waitFor("one", (s) => s.runtimeStatus === "Running" && s.input === "second");
    await harness.raiseEvent("one", "go", "done");
    expect((await harness.waitFor("one", (s) => s.runtimeStatus === "Completed")).output).toBe("done");
    expect(harness.callsOf("note")).toEqual(["first", "second"]);
  });
});

describe("a parent id run again calls its child id again", () => {
  // The deploy and the health sweep run on fixed ids and call each app's fixed re-attestation id
  // at the same sequence number every run; each run's call must start a new execution of the
  // child, not hand back the output of the child an earlier run started.
  const child: OrchestrationHandler = function* (context) {
    return yield context.df.callActivity("note", context.df.getInput());
  };
  const parent: OrchestrationHandler = function* (context) {
    return yield context.df.callSubOrchestrator("child", context.df.getInput(), "kid");
  };
  let harness: ReplayHarness | undefined;
  afterEach(async () => {
    await harness?.dispose();
  });

  it("starts the child anew for each run of the parent and returns that run's result", async () => {
    harness = new ReplayHarness({
      orchestrations: { parent, child },
      activities: { note: (input) => `noted ${String(input)}` },
      overridableExistingInstanceStates: "NonRunningStates",
    });
    expect((await harness.run("parent", "first", "p")).output).toBe("noted first");
    const second = await harness.run("parent", "second", "p");
    expect(second).toMatchObject({ runtimeStatus: "Completed", output: "noted second" });
    expect(harness.callsOf("note")).toEqual(["first", "second"]);
    expect(harness.status("kid")).toMatchObject({ runtimeStatus: "Completed", output: "noted second" });
  });
});
