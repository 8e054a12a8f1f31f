import { describe, expect, it } from "vitest";
import { credentialCheckDue, credentialsChanged, refreshingSpire } from "../../shared/spire/refreshing.js";
import type { SpireServer } from "../../shared/spire/types.js";

const T0 = Date.parse("2026-12-01T12:00:00Z");

describe("credentialsChanged", () => {
  it.each([
    [{ adminVersion: "a1", bundleVersion: "b1" }, { adminVersion: "a1", bundleVersion: "b1" }, false],
    [{ adminVersion: "a1", bundleVersion: "b1" }, { adminVersion: "a2", bundleVersion: "b1" }, true],
    [{ adminVersion: "a1", bundleVersion: "b1" }, { adminVersion: "a1", bundleVersion: "b2" }, true],
    [{ adminVersion: "a1" }, { adminVersion: "a1", bundleVersion: "b1" }, true],
  ])("%o → %o: %s", (built, current, changed) => {
    expect(credentialsChanged(built, current)).toBe(changed);
  });
});

describe("credentialCheckDue", () => {
  const built = { adminVersion: "a", bundleVersion: "b", notAfter: new Date(T0 + 3_600_000) };
  it.each([
    ["just checked, SVID far from expiry", T0, T0 + 1_000, false],
    ["interval passed", T0, T0 + 60_000, true],
    ["within the expiry margin: every call checks", T0 + 3_500_000, T0 + 3_500_001, true],
    ["past expiry", T0 + 3_600_000, T0 + 3_700_000, true],
  ])("%s", (_name, lastCheckMs, nowMs, due) => {
    expect(
      credentialCheckDue({ built, lastCheckMs, nowMs, checkIntervalMs: 60_000, expiryMarginMs: 300_000 }),
    ).toBe(due);
  });
});

/** A stand-in client that remembers which credentials it was built from and whether it was closed. */
function fakeServer(version: string) {
  const s = {
    version,
    closed: false,
    async close() {
      s.closed = true;
    },
  };
  return s as unknown as SpireServer & { version: string; closed: boolean };
}

describe("refreshingSpire", () => {
  function harness() {
    let now = T0;
    let versions = { adminVersion: "a1", bundleVersion: "b1" };
    let reads = 0;
    let failRead = false;
    const holder = refreshingSpire({
      read: async () => {
        reads++;
        if (failRead) throw new Error("vault down");
        return { ...versions };
      },
      build: async (v) => ({
        server: fakeServer(`${v.adminVersion}/${v.bundleVersion}`),
        notAfter: new Date(now + 3_600_000),
      }),
      checkIntervalMs: 60_000,
      expiryMarginMs: 300_000,
      closeDelayMs: 0,
      now: () => now,
    });
    return {
      holder,
      advance: (ms: number) => {
        now += ms;
      },
      setVersions: (v: typeof versions) => {
        versions = v;
      },
      setFailRead: (f: boolean) => {
        failRead = f;
      },
      reads: () => reads,
    };
  }
  const version = async (h: ReturnType<typeof harness>) =>
    ((await h.holder.get()) as unknown as { version: string }).version;

  it("reads Key Vault at most once per interval while nothing changes", async () => {
    const h = harness();
    expect(await version(h)).toBe("a1/b1");
    h.advance(30_000);
    expect(await version(h)).toBe("a1/b1");
    expect(h.reads()).toBe(1);
    h.advance(30_000);
    expect(await version(h)).toBe("a1/b1");
    expect(h.reads()).toBe(2);
    expect(h.holder.builds).toBe(1);
  });

  it("rebuilds when the admin SVID or the bundle has a new version, and closes the old client", async () => {
    const h = harness();
    const first = await h.holder.get();
    h.setVersions({ adminVersion: "a2", bundleVersion: "b1" });
    h.advance(60_000);
    expect(await version(h)).toBe("a2/b1");
    h.setVersions({ adminVersion: "a2", bundleVersion: "b2" });
    h.advance(60_000);
    expect(await version(h)).toBe("a2/b2");
    expect(h.holder.builds).toBe(3);
    await new Promise((r) => setTimeout(r, 5));
    expect((first as unknown as { closed: boolean }).closed).toBe(true);
  });

  it("keeps the client in hand when Key Vault cannot be read", async () => {
    const h = harness();
    await h.holder.get();
    h.setFailRead(true);
    h.advance(60_000);
    expect(await version(h)).toBe("a1/b1");
  });

  it("concurrent calls share one check", async () => {
    const h = harness();
    await h.holder.get();
    h.advance(60_000);
    h.setVersions({ adminVersion: "a2", bundleVersion: "b1" });
    const all = await Promise.all([h.holder.get(), h.holder.get(), h.holder.get()]);
    expect(new Set(all).size).toBe(1);
    expect(h.reads()).toBe(2);
    expect(h.holder.builds).toBe(2);
  });

  it("a failed first build is retried on the next call, not cached", async () => {
    let attempts = 0;
    const holder = refreshingSpire({
      read: async () => ({ adminVersion: "a", bundleVersion: "b" }),
      build: async () => {
        attempts++;
        if (attempts === 1) throw new Error("no admin SVID yet");
        return { server: fakeServer("ok"), notAfter: new Date(Date.now() + 3_600_000) };
      },
    });
    await expect(holder.get()).rejects.toThrow(/no admin SVID yet/);
    await expect(holder.get()).resolves.toBeDefined();
    await holder.close();
  });
});
