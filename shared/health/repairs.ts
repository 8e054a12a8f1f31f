import type { AppHealth, AppVerdictKind, FleetHealth } from "./classify.js";

/*
 * What a sweep does about what it found, with the safety rails, as a pure decision:
 * - a hung server is restarted (never removed) and nothing is re-attested for it;
 * - a CA reset rotates the bundle and then re-attests every managed app;
 * - per-app repairs happen only while the server is healthy, at most `budget` per sweep, never
 *   inside an app's cooldown, never on `unknown`; an unreachable server gets nothing (a person's
 *   problem: the sweep must not re-attest apps because the server is sick).
 */

export type SweepMode = "repair" | "observe";

export const REPAIRABLE: readonly AppVerdictKind[] = [
  // Most certain first: a spent token never heals; a stalled renewal may be a slow one.
  "token-spent",
  "unattested",
  "agent-silent",
  "renewal-stalled",
];

export type ServerAction = "none" | "restart-server" | "rotate-and-reattest-all";

export interface RepairPlan {
  serverAction: ServerAction;
  /** Apps to re-attest, in order. */
  reattest: string[];
  /** Apps that needed a repair and were left alone, with why. */
  deferred: Array<{
    app: string;
    verdict: AppVerdictKind;
    why: "observe" | "cooldown" | "budget" | "server";
  }>;
}

export interface PlanInput {
  mode: SweepMode;
  /** Re-attests one sweep may start (per-app repairs only). */
  budget: number;
  /** Apps re-attested within their cooldown. */
  cooling: ReadonlySet<string>;
}

const rank = (v: AppVerdictKind) => REPAIRABLE.indexOf(v);

/**
 * Apps a CA reset re-attests: every managed one. A server that lost its data dir lost its entries
 * too, so a deployed app now looks never deployed: the two cannot be told apart, and both need it.
 */
function managed(a: AppHealth): boolean {
  return a.verdict !== "unmanageable";
}

export function planRepairs(health: FleetHealth, input: PlanInput): RepairPlan {
  const needing = health.apps
    .filter((a) => rank(a.verdict) >= 0)
    .sort((a, b) => rank(a.verdict) - rank(b.verdict) || a.app.localeCompare(b.app));
  const defer = (why: RepairPlan["deferred"][number]["why"]) =>
    needing.map((a) => ({ app: a.app, verdict: a.verdict, why }));

  if (input.mode === "observe") return { serverAction: "none", reattest: [], deferred: defer("observe") };
  switch (health.server.verdict) {
    case "hung":
      return { serverAction: "restart-server", reattest: [], deferred: defer("server") };
    case "unreachable":
      return { serverAction: "none", reattest: [], deferred: defer("server") };
    case "ca-reset":
      return {
        serverAction: "rotate-and-reattest-all",
        reattest: health.apps
          .filter(managed)
          .map((a) => a.app)
          .sort(),
        deferred: [],
      };
    case "healthy":
      break;
  }
  const reattest: string[] = [];
  const deferred: RepairPlan["deferred"] = [];
  for (const a of needing) {
    if (input.cooling.has(a.app)) deferred.push({ app: a.app, verdict: a.verdict, why: "cooldown" });
    else if (reattest.length >= input.budget)
      deferred.push({ app: a.app, verdict: a.verdict, why: "budget" });
    else reattest.push(a.app);
  }
  return { serverAction: "none", reattest, deferred };
}
