import { describe, expect, it } from "vitest";
import { parseOperationsQuery } from "../../functions/operationsList.js";
import { decodeCursor, pageOperations } from "../../shared/operations/page.js";
import {
  type InstanceLike,
  operationKind,
  progressOf,
  summarizeOperation,
} from "../../shared/operations/summary.js";

const instance = (over: Partial<InstanceLike> & { instanceId: string }): InstanceLike => ({
  name: "reattest",
  runtimeStatus: "Completed",
  createdTime: "2026-01-01T00:00:00Z",
  lastUpdatedTime: "2026-01-01T00:01:00Z",
  ...over,
});

describe("operation kinds", () => {
  it.each([
    ["deploy", "deploy"],
    ["reattest", "reattest"],
    ["healthSweep", "sweep"],
    ["rotateBundle", "rotate-bundle"],
    ["somethingElse", "other"],
    [undefined, "other"],
  ])("%s is %s", (name, kind) => {
    expect(operationKind(name)).toBe(kind);
  });
});

describe("progress from customStatus", () => {
  it.each([
    [{ progress: { done: 2, total: 5 } }, { done: 2, total: 5 }],
    [
      { appsDone: 1, appsTotal: 3 },
      { done: 1, total: 3 },
    ],
    [
      { done: 0, total: 0 },
      { done: 0, total: 0 },
    ],
    [{ done: 4, total: 3 }, null],
    [{ done: -1, total: 3 }, null],
    [{ done: "1", total: 3 }, null],
    [null, null],
    ["text", null],
  ])("%j → %j", (custom, expected) => {
    expect(progressOf(custom)).toEqual(expected);
  });
});

describe("summarizeOperation", () => {
  it.each([
    [
      "a running re-attest names its app and step",
      instance({
        instanceId: "reattest-orders",
        runtimeStatus: "Running",
        customStatus: { app: "orders", step: "verify" },
      }),
      { kind: "reattest", running: true, app: "orders", step: "verify", outcome: null, failure: null },
    ],
    [
      "a failed run carries its failure",
      instance({ instanceId: "r1", output: { outcome: "failed", failure: "token spent" } }),
      { running: false, outcome: "failed", failure: "token spent" },
    ],
    [
      "an orchestrator crash keeps the first line only",
      instance({ instanceId: "r2", runtimeStatus: "Failed", output: "boom\nstack" }),
      { failure: "boom" },
    ],
    [
      "an app name from input must be a Container App name",
      instance({ instanceId: "r3", input: { app: "../etc" } }),
      { app: null },
    ],
  ])("%s", (_what, s, expected) => {
    expect(summarizeOperation(s)).toMatchObject(expected);
  });

  it("never carries the input", () => {
    const s = summarizeOperation(instance({ instanceId: "x", input: { reason: "secret-ish" } }));
    expect(JSON.stringify(s)).not.toContain("secret-ish");
  });
});

describe("pageOperations", () => {
  const ops = [
    instance({ instanceId: "old", createdTime: "2026-01-01T00:00:00Z" }),
    instance({ instanceId: "new", createdTime: "2026-01-03T00:00:00Z" }),
    instance({ instanceId: "mid", createdTime: "2026-01-02T00:00:00Z", name: "rotateBundle" }),
    instance({ instanceId: "run", createdTime: "2025-12-01T00:00:00Z", runtimeStatus: "Running" }),
  ].map(summarizeOperation);

  it.each([
    [{ state: "all" as const, limit: 10 }, ["run", "new", "mid", "old"]],
    [{ state: "running" as const, limit: 10 }, ["run"]],
    [{ state: "finished" as const, limit: 10 }, ["new", "mid", "old"]],
    [{ state: "all" as const, limit: 10, kinds: ["rotate-bundle" as const] }, ["mid"]],
  ])("%j → %j", (filter, ids) => {
    expect(pageOperations(ops, filter).operations.map((o) => o.id)).toEqual(ids);
  });

  it("walks every item once through its cursors", () => {
    const seen: string[] = [];
    let after: string | undefined;
    for (let i = 0; i < 10; i++) {
      const page = pageOperations(ops, { state: "all", limit: 1, after });
      seen.push(...page.operations.map((o) => o.id));
      if (!page.next) break;
      after = decodeCursor(page.next);
    }
    expect(seen).toEqual(["run", "new", "mid", "old"]);
  });
});

describe("GET /api/operations query", () => {
  const parse = (q: string) => parseOperationsQuery(new URLSearchParams(q));

  it.each([
    ["", { state: "all", limit: 25, sinceHours: 168 }],
    ["code=abc&kind=reattest,sweep&state=running&limit=5", { kind: ["reattest", "sweep"], limit: 5 }],
    ["app=orders&sinceHours=1", { app: "orders", sinceHours: 1 }],
  ])("%s is accepted", (q, expected) => {
    const r = parse(q);
    expect(r.ok && r.value).toMatchObject(expected);
  });

  it.each([
    ["bogus=1&other=2", "bogus, other"],
    ["kind=deploy,nope", "kind"],
    ["state=done", "state"],
    ["limit=0", "limit"],
    ["limit=101", "limit"],
    ["limit=abc", "limit"],
    ["sinceHours=721", "sinceHours"],
    ["app=Bad_Name", "app"],
    ["cursor=!!!", "cursor"],
  ])("%s is a 400 naming %s", (q, named) => {
    const r = parse(q);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.response.status).toBe(400);
    expect((r.response.jsonBody as { error: string }).error).toContain(named);
  });
});
