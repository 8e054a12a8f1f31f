import { afterEach, describe, expect, it } from "vitest";
import { Activities, type ActivityResult } from "../../activities/contracts.js";
import { type RotateBundleOutput, rotateBundleOrchestrator } from "../../orchestrations/rotateBundle.js";
import {
  ROTATE_BUNDLE_INSTANCE_ID,
  ROTATE_BUNDLE_ORCHESTRATION,
  type RotateBundleInput,
} from "../../orchestrations/rotateBundle.start.js";
import { type ActivityStub, ReplayHarness } from "../../sandbox/host/testing.js";

const ok = <T>(value: T): ActivityResult<T> => ({ ok: true, value });
const fp = (n: number) => n.toString(16).padStart(64, "0");
const server = (...ns: number[]) => ({
  fingerprints: ns.map(fp),
  roots: ns.map((n) => ({ sha256: fp(n), notAfter: "2027-01-01T00:00:00.000Z" })),
  sequence: 4,
  earliestExpiry: "2027-01-01T00:00:00.000Z",
  latestExpiry: "2027-01-01T00:00:00.000Z",
});
const vault = (...ns: number[]) => ({
  version: "v1",
  fingerprints: ns.map(fp),
  source: "tags" as const,
  latestExpiry: "2027-01-01T00:00:00.000Z",
});

let harness: ReplayHarness;
afterEach(async () => {
  await harness?.dispose();
});

function run(
  activities: Record<string, ActivityStub>,
  input: RotateBundleInput = { trigger: "timer", reason: "schedule" },
) {
  harness = new ReplayHarness({
    orchestrations: { [ROTATE_BUNDLE_ORCHESTRATION]: rotateBundleOrchestrator },
    activities: {
      bundleRecord: () => ok({ recorded: true }),
      adminSvidEnsure: () =>
        ok({ lastAction: "none", minted: "none", reason: "the app does not use the Server API over TCP" }),
      ...activities,
    },
    timeScale: 100,
  });
  return harness.run(ROTATE_BUNDLE_ORCHESTRATION, input, ROTATE_BUNDLE_INSTANCE_ID, 40_000);
}

describe("rotateBundle orchestration (replayed by durable-functions, activities stubbed)", () => {
  it("writes nothing for an unchanged bundle and records the run", async () => {
    const s = await run({
      bundleReadVault: () => ok(vault(1, 2)),
      bundleSync: () =>
        ok({
          server: server(1, 2),
          action: "unchanged",
          written: false,
          version: "v1",
          added: [],
          removed: [],
        }),
    });
    const out = s.output as RotateBundleOutput;
    expect(out).toMatchObject({
      outcome: "succeeded",
      action: "unchanged",
      written: false,
      version: "v1",
      previousVersion: "v1",
      match: true,
      matchedBefore: true,
      trigger: "timer",
      reason: "schedule",
    });
    expect(out.caReset).toBeUndefined();
    expect(harness.callsOf(Activities.bundleSync)).toEqual([
      { vault: { version: "v1", fingerprints: [fp(1), fp(2)], source: "tags" } },
    ]);
    expect(harness.callsOf(Activities.bundleRecord)[0]).toMatchObject({
      action: "unchanged",
      written: false,
      runId: expect.stringMatching(/^rotate-bundle@/),
    });
    expect(Object.keys(out.stepSeconds)).toEqual(["read-vault", "sync", "admin-svid", "record"]);
    expect(s.customStatus).toMatchObject({ step: "done", action: "unchanged" });
  });

  it("says ca-reset with both sets and records them", async () => {
    const s = await run(
      {
        bundleReadVault: () => ok(vault(1, 2)),
        bundleSync: () =>
          ok({
            server: server(7),
            action: "ca-reset",
            written: true,
            version: "v2",
            added: [fp(7)],
            removed: [fp(1), fp(2)],
          }),
      },
      { trigger: "http", reason: "after the VM rebuild" },
    );
    const out = s.output as RotateBundleOutput;
    expect(out).toMatchObject({
      action: "ca-reset",
      written: true,
      version: "v2",
      previousVersion: "v1",
      match: true,
      matchedBefore: false,
      caReset: { vaultRoots: [fp(1), fp(2)], serverRoots: [fp(7)] },
    });
    expect(harness.callsOf(Activities.bundleRecord)[0]).toMatchObject({
      action: "ca-reset",
      written: true,
      version: "v2",
      previousVersion: "v1",
      serverFingerprints: [fp(7)],
      vaultFingerprints: [fp(1), fp(2)],
      trigger: "http",
      reason: "after the VM rebuild",
    });
  });

  it("passes null for no Key Vault version yet, and reports the first write", async () => {
    const s = await run({
      bundleReadVault: () => ok(null),
      bundleSync: () =>
        ok({
          server: server(1),
          action: "first-write",
          written: true,
          version: "v1",
          added: [fp(1)],
          removed: [],
        }),
    });
    expect(harness.callsOf(Activities.bundleSync)).toEqual([{ vault: null }]);
    expect(s.output).toMatchObject({ action: "first-write", written: true, version: "v1" });
    expect((s.output as RotateBundleOutput).previousVersion).toBeUndefined();
  });

  it("retries a transient failure and fails cleanly on a permanent one, still recording the run", async () => {
    const s = await run({
      bundleReadVault: (_i, n) => {
        if (n === 1) throw new Error("503 from Key Vault");
        return ok(vault(1));
      },
      bundleSync: () => ({ ok: false, error: { code: "BundleRefused", message: "Nothing written: empty" } }),
    });
    expect(harness.callsOf(Activities.bundleReadVault)).toHaveLength(2);
    const out = s.output as RotateBundleOutput;
    expect(out).toMatchObject({ outcome: "failed", written: false, match: false });
    expect(out.failure).toMatch(/bundleSync: Nothing written/);
    expect(harness.callsOf(Activities.bundleRecord)[0]).toMatchObject({
      action: "failed",
      failure: out.failure,
    });
  });

  it("ensures the admin SVID after the bundle with the run's id, and reports its facts", async () => {
    const unchanged = () =>
      ok({ server: server(1), action: "unchanged", written: false, version: "v1", added: [], removed: [] });
    const s = await run({
      bundleReadVault: () => ok(vault(1)),
      bundleSync: unchanged,
      adminSvidEnsure: () =>
        ok({
          lastAction: "rotate",
          minted: "api",
          reason: "version a1 is past half its lifetime",
          version: "a2",
          spiffeId: "spiffe://td/spire-autopilot/admin",
          expiresAt: "2026-12-02T12:00:00.000Z",
          renewAt: "2026-12-02T00:00:00.000Z",
          serial: "01",
          mintSeconds: 0.4,
        }),
    });
    const [call] = harness.callsOf(Activities.adminSvidEnsure) as { runId: string }[];
    expect(call?.runId).toMatch(/^rotate-bundle@/);
    expect(call?.runId).toBe((harness.callsOf(Activities.bundleRecord)[0] as { runId: string }).runId);
    const out = s.output as RotateBundleOutput;
    expect(out.outcome).toBe("succeeded");
    expect(out.adminSvid).toEqual({
      version: "a2",
      spiffeId: "spiffe://td/spire-autopilot/admin",
      expiresAt: "2026-12-02T12:00:00.000Z",
      renewAt: "2026-12-02T00:00:00.000Z",
      lastAction: "rotate",
      reason: "version a1 is past half its lifetime",
      minted: "api",
      mintSeconds: 0.4,
    });
  });

  it("says null with why when the app uses no admin SVID, and fails the run when ensuring it fails", async () => {
    const unchanged = () =>
      ok({ server: server(1), action: "unchanged", written: false, version: "v1", added: [], removed: [] });
    const none = await run({ bundleReadVault: () => ok(vault(1)), bundleSync: unchanged });
    expect(none.output).toMatchObject({ adminSvid: null, adminSvidNote: expect.stringMatching(/TCP/) });
    await harness.dispose();
    const failed = await run({
      bundleReadVault: () => ok(vault(1)),
      bundleSync: unchanged,
      adminSvidEnsure: () => ({ ok: false, error: { code: "X", message: "no VM configured" } }),
    });
    const out = failed.output as RotateBundleOutput;
    expect(out.outcome).toBe("failed");
    expect(out.failure).toMatch(/admin SVID: adminSvidEnsure: no VM configured/);
    // The bundle's part stands: it was compared and matched.
    expect(out).toMatchObject({ action: "unchanged", match: true });
  });
});
