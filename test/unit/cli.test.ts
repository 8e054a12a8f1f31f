import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { PassThrough } from "node:stream";
import { createColors } from "picocolors";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collectImage, run } from "../../cli/main.js";
import { renderStatus, until } from "../../cli/render.js";

/*
 * The CLI's parsing and exit codes against a tiny local HTTP stub (the commands against the real
 * product run in test/integration/cli-sandbox.test.ts).
 */

interface Seen {
  method: string;
  path: string;
  key: string | undefined;
  body: unknown;
}

let server: Server;
let url: string;
const seen: Seen[] = [];
/** The outcome the stub's next re-attest run ends with. */
let nextOutcome = "succeeded";
let polls = 0;

const readBody = async (req: IncomingMessage) => {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  return text ? JSON.parse(text) : undefined;
};

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const path = req.url ?? "";
    seen.push({
      method: req.method ?? "",
      path,
      key: req.headers["x-functions-key"] as string | undefined,
      body: await readBody(req),
    });
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    };
    if (path === "/api/apps/cooling/reattest") return send(409, { error: "cooling down; send force" });
    if (path === "/api/apps/broken/reattest") return send(500, { error: "boom" });
    if (path.startsWith("/api/apps/") && req.method === "POST") {
      polls = 0;
      return send(202, { id: `reattest-${path.split("/")[3]}` });
    }
    if (path.startsWith("/api/operations/")) {
      polls++;
      const done = polls >= 2;
      return send(200, {
        id: "reattest-orders",
        name: "reattest",
        runtimeStatus: done ? "Completed" : "Running",
        step: done ? "done" : "verify",
        status: { step: "verify" },
        output: done ? { outcome: nextOutcome } : null,
      });
    }
    if (path === "/api/deploy") {
      // Like the API: a dry run answers its plan at once (200, no operation).
      const body = seen.at(-1)?.body as { dryRun?: boolean; images?: unknown } | undefined;
      return body?.dryRun && !body.images
        ? send(200, { plan: { tokens: 1, entries: { create: 1, update: 0, delete: 0 } } })
        : send(400, { error: "Invalid body: images.orders: bad ref" });
    }
    if (path === "/api/bundle")
      return send(200, { secretName: "spire-bundle", match: true, server: {}, vault: {} });
    return send(404, { error: `no route ${path}` });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

async function cli(args: string[], env: Record<string, string | undefined> = {}) {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = "";
  let stderr = "";
  out.on("data", (d) => (stdout += d));
  err.on("data", (d) => (stderr += d));
  const code = await run(args, { out, err, env: { SPIRE_AUTOPILOT_URL: url, ...env }, isTTY: false });
  return { code, stdout, stderr };
}

describe("usage errors exit 2 and name the problem", () => {
  it.each([
    [["reattest", "Not_An_App"], "invalid for argument 'app'"],
    [["reattest"], "missing required argument 'app'"],
    [["deploy", "--image", "orders=nginx"], "not app/container=image-ref"],
    [["deploy", "--max-parallel", "0"], "at least 1"],
    [["frobnicate"], "unknown command"],
    [["bundle", "--nope"], "unknown option"],
    [["runs", "--limit", "x"], "at least 1"],
  ])("%j", async (args, message) => {
    const r = await cli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(seen.filter((s) => s.method === "POST" && s.path.includes("Not_An_App"))).toEqual([]);
  });

  it("without an address it says how to give one", async () => {
    const r = await cli(["bundle"], { SPIRE_AUTOPILOT_URL: undefined });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("SPIRE_AUTOPILOT_URL");
  });
});

describe("the API's answers become exit codes", () => {
  it.each([
    [
      "a refusal (409) exits 2 with the API's message",
      ["reattest", "cooling"],
      2,
      "cooling down; send force",
    ],
    ["a 400 exits 2 with the API's message", ["deploy", "--image", "orders/app=x:1"], 2, "bad ref"],
    ["a 500 exits 1", ["reattest", "broken"], 1, "boom"],
  ])("%s", async (_what, args, code, message) => {
    const r = await cli(args);
    expect(r.code).toBe(code);
    expect(r.stderr).toContain(message);
  });

  it("an unreachable API exits 1", async () => {
    const r = await cli(["bundle"], { SPIRE_AUTOPILOT_URL: "http://127.0.0.1:9" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("failed");
  });

  it.each([
    ["succeeded", 0],
    ["failed", 1],
  ])("reattest --wait ending %s exits %i, --json is the final operation", async (outcome, code) => {
    nextOutcome = outcome;
    const r = await cli(["--json", "--key", "k1", "reattest", "orders", "--force", "--wait"]);
    expect(r.code).toBe(code);
    const op = JSON.parse(r.stdout) as { runtimeStatus: string; output: { outcome: string } };
    expect(op.output.outcome).toBe(outcome);
    const post = seen.findLast((s) => s.method === "POST");
    expect(post).toMatchObject({ path: "/api/apps/orders/reattest", key: "k1", body: { force: true } });
  });
});

describe("deploy --dry-run", () => {
  it.each([
    ["text", ["deploy", "--dry-run"]],
    ["--json --wait", ["--json", "deploy", "--dry-run", "--wait"]],
  ])("%s: prints the plan the API answered, follows nothing, exits 0", async (_what, args) => {
    const before = seen.length;
    const r = await cli(args);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      plan: { tokens: 1, entries: { create: 1, update: 0, delete: 0 } },
    });
    expect(r.stdout + r.stderr).not.toContain("started");
    expect(seen.slice(before).map((s) => s.path)).toEqual(["/api/deploy"]);
  });
});

describe("deploy --image", () => {
  it.each([
    [["orders/app=nginx:1"], { orders: { app: "nginx:1" } }],
    [
      ["orders/app=nginx:1", "orders/side=reg.io/x@sha256:ab", "billing/app=b:2"],
      { orders: { app: "nginx:1", side: "reg.io/x@sha256:ab" }, billing: { app: "b:2" } },
    ],
  ])("%j → %j", (values, expected) => {
    let acc: Record<string, Record<string, string>> | undefined;
    for (const v of values) acc = collectImage(v, acc);
    expect(acc).toEqual(expected);
  });

  it("sends the body the deploy API takes", async () => {
    await cli([
      "deploy",
      "--apps",
      "orders,billing",
      "--image",
      "orders/app=x:1",
      "--dry-run",
      "--max-parallel",
      "2",
    ]);
    expect(seen.findLast((s) => s.path === "/api/deploy")?.body).toEqual({
      apps: ["orders", "billing"],
      images: { orders: { app: "x:1" } },
      maxParallel: 2,
      dryRun: true,
    });
  });
});

describe("text output", () => {
  const plain = createColors(false);
  const NOW = Date.parse("2026-03-01T12:00:00Z");

  it.each([
    ["2026-03-01T12:00:30Z", "in 30s"],
    ["2026-03-01T12:42:00Z", "in 42m"],
    ["2026-03-01T15:05:00Z", "in 3h 5m"],
    ["2026-03-03T13:00:00Z", "in 2d 1h"],
    ["2026-03-01T11:58:00Z", "expired 2m ago"],
    [undefined, "-"],
    ["nonsense", "-"],
  ])("until(%s) is %s", (iso, text) => {
    expect(until(iso, NOW)).toBe(text);
  });

  it("status names the last sweep, the verdict counts and the problems", () => {
    const text = renderStatus(
      {
        fleet: {
          server: {
            verdict: "hung",
            reason: "no signing",
            lastSweep: { at: "2026-03-01T11:59:00Z", mode: "repair" },
            errors: ["Key Vault bundle: 403"],
          },
          apps: [
            { verdict: "healthy" },
            { verdict: "healthy" },
            { verdict: "token-spent" },
            { skipped: "no sidecar" },
          ],
        },
        bundle: { match: false },
        running: [{ kind: "reattest", id: "reattest-orders", step: "verify" }],
      },
      plain,
    );
    expect(text.split("\n")).toEqual([
      "server  hung  no signing",
      "sweep   2026-03-01T11:59:00Z (repair)",
      "problem Key Vault bundle: 403",
      "apps    4: 2 healthy, 1 token-spent, 1 skipped",
      "bundle  match NO",
      "running 1",
      "  reattest reattest-orders step verify",
    ]);
  });
});
