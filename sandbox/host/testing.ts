import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InvocationContext } from "@azure/functions";
import type { OrchestrationHandler } from "durable-functions";
import { HostClock } from "./clock.js";
import { DurableEngine, type OverridableStates, type StatusView } from "./durable/engine.js";
import type { HistoryEvent } from "./durable/history.js";
import { InstanceStore } from "./durable/store.js";

/*
 * Replay tests for orchestrations: the same engine as the local host, in-process, with activities
 * replaced by stubs. The orchestrator runs through durable-functions' own wrapper (the one
 * `df.app.orchestration` registers), so replay, retries and timers behave as under the host.
 */

const require = createRequire(import.meta.url);
const { createOrchestrator } = require("durable-functions/lib/src/util/testingUtils.js") as {
  createOrchestrator(
    fn: OrchestrationHandler,
  ): (trigger: unknown, context: InvocationContext) => Promise<unknown>;
};

export type ActivityStub = (input: unknown, call: number) => unknown;

export interface ReplayHarnessOptions {
  orchestrations: Record<string, OrchestrationHandler>;
  activities: Record<string, ActivityStub>;
  /** Virtual ms per real ms for durable timers; large values make waits instant. */
  timeScale?: number;
  /** As host.json's extensions.durableTask.overridableExistingInstanceStates. */
  overridableExistingInstanceStates?: OverridableStates;
}

export interface ActivityCall {
  name: string;
  input: unknown;
}

export class ReplayHarness {
  readonly calls: ActivityCall[] = [];
  readonly orchestratorInputs: unknown[] = [];
  private readonly dir = mkdtempSync(join(tmpdir(), "replay-"));
  private readonly engine: DurableEngine;
  private readonly counts = new Map<string, number>();

  constructor(opts: ReplayHarnessOptions) {
    const orchestrators = new Map(
      Object.entries(opts.orchestrations).map(([n, fn]) => [n, createOrchestrator(fn)]),
    );
    this.engine = new DurableEngine({
      store: new InstanceStore(join(this.dir, "instances")),
      clock: new HostClock(opts.timeScale ?? 1000),
      hasOrchestrator: (n) => orchestrators.has(n),
      hasActivity: (n) => n in opts.activities,
      invokeOrchestrator: async (n, payload) => {
        this.orchestratorInputs.push(payload);
        return orchestrators.get(n)!(payload, new InvocationContext({ functionName: n }));
      },
      invokeActivity: async (n, input) => {
        const count = (this.counts.get(n) ?? 0) + 1;
        this.counts.set(n, count);
        this.calls.push({ name: n, input });
        return await opts.activities[n]!(input, count);
      },
      log: () => undefined,
      overridableExistingInstanceStates: opts.overridableExistingInstanceStates,
    });
  }

  start(name: string, input: unknown, instanceId?: string): string {
    return this.engine.startNew(name, instanceId, JSON.stringify(input)).instanceId;
  }

  status(instanceId: string): StatusView | undefined {
    return this.engine.getStatus(instanceId);
  }

  history(instanceId: string): HistoryEvent[] {
    return this.engine.rawHistory(instanceId);
  }

  async raiseEvent(instanceId: string, name: string, value: unknown): Promise<void> {
    await this.engine.raiseEvent(instanceId, name, JSON.stringify(value));
  }

  /** Poll (bounded) until the instance satisfies `pred`. */
  async waitFor(
    instanceId: string,
    pred: (s: StatusView) => boolean,
    timeoutMs = 10_000,
  ): Promise<StatusView> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = this.engine.getStatus(instanceId);
      if (s && pred(s)) return s;
      if (Date.now() > deadline)
        throw new Error(`instance ${instanceId} timed out; last status ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async run(name: string, input: unknown, instanceId?: string, timeoutMs?: number): Promise<StatusView> {
    const id = this.start(name, input, instanceId);
    return this.waitFor(
      id,
      (s) => ["Completed", "Failed", "Terminated"].includes(s.runtimeStatus),
      timeoutMs,
    );
  }

  callsOf(name: string): unknown[] {
    return this.calls.filter((c) => c.name === name).map((c) => c.input);
  }

  async dispose(): Promise<void> {
    await this.engine.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
