import { describe, expect, it } from "vitest";
import { extrapolateSeed } from "../../sandbox/scenarios/deploy-vs-seed.js";

// The seed is serial and branch-free: fixed steps stay, per-app steps (updates, entries) scale with N.
describe("extrapolateSeed", () => {
  const measured = (updates: number, entries: number) => ({
    seconds: 0,
    runCommands: 0,
    measured: true,
    stepSeconds: { server: 40, updates, agentList: 80, entries, settle: 30 },
  });
  it.each([
    { m: 5, n: 20, updates: 100, entries: 100, seconds: 150 + 40 * 20, runCommands: 43 },
    { m: 5, n: 5, updates: 100, entries: 100, seconds: 150 + 200, runCommands: 13 },
    { m: 1, n: 20, updates: 25, entries: 20, seconds: 150 + 45 * 20, runCommands: 43 },
    { m: 5, n: 1, updates: 50, entries: 75, seconds: 150 + 25, runCommands: 5 },
  ])("from m=$m to n=$n", ({ m, n, updates, entries, seconds, runCommands }) => {
    expect(extrapolateSeed(measured(updates, entries), m, n)).toEqual({
      seconds,
      runCommands,
      measured: false,
      stepSeconds: {},
    });
  });
});
