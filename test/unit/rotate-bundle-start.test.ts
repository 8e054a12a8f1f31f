import type { DurableClient } from "durable-functions";
import { describe, expect, it } from "vitest";
import { ROTATE_BUNDLE_INSTANCE_ID, startRotateBundle } from "../../orchestrations/rotateBundle.start.js";
import { TaskHubUnavailable } from "../../shared/durable.js";

type Status = { runtimeStatus: string; createdTime: string } | "missing" | "outage";

/** A durable client whose getStatus answers from `statuses` in order and whose startNew may refuse. */
function client(statuses: Status[], startFails: boolean) {
  const started: unknown[] = [];
  const c = {
    async getStatus() {
      const s = statuses.shift() ?? "missing";
      if (s === "outage") throw new Error("unexpected status code: 503");
      if (s === "missing") throw new Error("DurableClient error: replied with HTTP 404 response");
      return s;
    },
    async startNew(name: string, options: unknown) {
      if (startFails) throw new Error("An Orchestration instance with the status Running already exists.");
      started.push({ name, options });
      return ROTATE_BUNDLE_INSTANCE_ID;
    },
  };
  return { client: c as unknown as DurableClient, started };
}

const input = { trigger: "event" as const, reason: "Microsoft.KeyVault.SecretNewVersionCreated" };
const done = (createdTime: string) => ({ runtimeStatus: "Completed", createdTime });

describe("startRotateBundle", () => {
  it.each([
    ["no previous run", ["missing"], false, "started"],
    ["a finished run", [done("2026-12-01T10:00:00Z")], false, "started"],
    [
      "a run in flight",
      [{ runtimeStatus: "Running", createdTime: "2026-12-01T10:00:00Z" }],
      false,
      "running",
    ],
    [
      "lost the race to a run still running",
      ["missing", { runtimeStatus: "Running", createdTime: "2026-12-01T10:00:01Z" }],
      true,
      "running",
    ],
    // The winner's rotation had nothing to do and finished before we looked again.
    [
      "lost the race to a run already finished",
      [done("2026-12-01T10:00:00Z"), done("2026-12-01T10:00:05Z")],
      true,
      "running",
    ],
  ] as const)("%s → %s", async (_name, statuses, startFails, kind) => {
    const c = client([...statuses], startFails);
    const out = await startRotateBundle(c.client, input);
    expect(out).toEqual({ kind, instanceId: ROTATE_BUNDLE_INSTANCE_ID });
    expect(c.started).toHaveLength(kind === "started" ? 1 : 0);
  });

  it("a refused start with no new run behind it is the task hub failing, not a join", async () => {
    const same = done("2026-12-01T10:00:00Z");
    await expect(startRotateBundle(client([same, same], true).client, input)).rejects.toBeInstanceOf(
      TaskHubUnavailable,
    );
  });

  it("an outage reading the instance starts nothing", async () => {
    const c = client(["outage"], false);
    await expect(startRotateBundle(c.client, input)).rejects.toBeInstanceOf(TaskHubUnavailable);
    expect(c.started).toHaveLength(0);
  });
});
