import { describe, expect, it } from "vitest";
import { LogStore } from "../../sandbox/azure/logs/store.js";
import { azureProfile, FAST_PROFILE } from "../../sandbox/azure/profiles.js";

// A clock the test moves by hand: the store's now().
function manualClock(start: number) {
  let now = start;
  return {
    clock: { scale: 1, now: () => now },
    advance(ms: number) {
      now += ms;
    },
  };
}

const COUNT = 'Syslog | where ProcessName == "spire-server" | count';
const count = (s: LogStore) => Number(s.query(COUNT).rows[0]?.[0]);

describe("Log Analytics ingestion delay", () => {
  it("keeps a row out of queries until its ingestion delay has passed", () => {
    const t = manualClock(Date.parse("2026-12-01T12:00:00Z"));
    const store = new LogStore({
      clock: t.clock,
      ingestionDelayMs: { min: 30_000, max: 90_000 },
      random: () => 0.5,
    });
    store.ingestSyslog('{"level":"info","msg":"x"}', new Date(), { processName: "spire-server" });
    expect(count(store)).toBe(0);
    t.advance(59_999);
    expect(count(store)).toBe(0);
    t.advance(1);
    expect(count(store)).toBe(1);
  });

  it("draws each row's delay within [min, max]", () => {
    const t = manualClock(Date.parse("2026-12-01T12:00:00Z"));
    const draws = [0, 1];
    const store = new LogStore({
      clock: t.clock,
      ingestionDelayMs: { min: 20_000, max: 180_000 },
      random: () => draws.shift() ?? 0,
    });
    store.ingestSyslog("a", new Date(), { processName: "spire-server" });
    store.ingestSyslog("b", new Date(), { processName: "spire-server" });
    t.advance(20_000);
    expect(count(store)).toBe(1);
    t.advance(160_000);
    expect(count(store)).toBe(2);
  });

  it("is none by default and in the fast profile, and Azure's 20 s to 3 min in the azure profile", () => {
    const store = new LogStore();
    store.ingestSyslog("now", new Date(), { processName: "spire-server" });
    expect(count(store)).toBe(1);
    expect(FAST_PROFILE.logIngestionDelayMs).toEqual({ min: 0, max: 0 });
    // On the sandbox clock, so not divided by the time scale.
    expect(azureProfile(10).logIngestionDelayMs).toEqual({ min: 20_000, max: 180_000 });
  });

  it("refuses a delay range that is not 0 <= min <= max", () => {
    expect(() => new LogStore({ ingestionDelayMs: { min: 5, max: 1 } })).toThrow(/0 <= min <= max/);
  });
});
