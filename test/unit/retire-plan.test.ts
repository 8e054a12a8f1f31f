import type { ContainerApp, Revision, TrafficWeight } from "@azure/arm-appcontainers";
import { describe, expect, it } from "vitest";
import { planRetirement } from "../../shared/containerapp/retire-plan.js";

const at = (minute: number) => new Date(Date.UTC(2026, 0, 1, 0, minute));
const rev = (name: string, minute: number | undefined, active = true, trafficWeight = 0): Revision =>
  ({ name, active, trafficWeight, createdTime: minute === undefined ? undefined : at(minute) }) as Revision;

function app(mode: string | undefined, traffic?: TrafficWeight[], latest = "a--new"): ContainerApp {
  return {
    name: "a",
    location: "westeurope",
    latestRevisionName: latest,
    latestReadyRevisionName: latest,
    configuration: {
      activeRevisionsMode: mode,
      ingress: traffic ? { targetPort: 80, traffic } : undefined,
    },
  } as ContainerApp;
}

const NEW = rev("a--new", 10, true, 100);
const pinnedNew: TrafficWeight[] = [{ revisionName: "a--new", weight: 100 }];

describe("planRetirement: which replaced revisions a re-attestation deactivates", () => {
  const cases: Array<{
    name: string;
    app: ContainerApp;
    revisions: Revision[];
    expected: { retire?: string[]; keptWithTraffic?: string[]; keptNewer?: string[]; refused?: RegExp };
  }> = [
    {
      name: "Single mode: nothing, Azure deactivates the old revision itself",
      app: app("Single"),
      revisions: [rev("a--old", 1), NEW],
      expected: { retire: [] },
    },
    {
      name: "no mode given is Single",
      app: app(undefined),
      revisions: [rev("a--old", 1), NEW],
      expected: { retire: [] },
    },
    {
      name: "Multiple: the old revision without traffic is retired",
      app: app("Multiple", pinnedNew),
      revisions: [rev("a--old", 1), NEW],
      expected: { retire: ["a--old"] },
    },
    {
      name: "Multiple, mode spelled in lowercase",
      app: app("multiple", pinnedNew),
      revisions: [rev("a--old", 1), NEW],
      expected: { retire: ["a--old"] },
    },
    {
      name: "Multiple without ingress: every older active revision, oldest first",
      app: app("Multiple"),
      revisions: [rev("a--two", 2), rev("a--one", 1), rev("a--gone", 0, false), NEW],
      expected: { retire: ["a--one", "a--two"] },
    },
    {
      name: "a revision Azure reports with traffic is kept",
      app: app("Multiple", pinnedNew),
      revisions: [rev("a--canary", 1, true, 20), NEW],
      expected: { retire: [], keptWithTraffic: ["a--canary"] },
    },
    {
      name: "a revision the ingress pins with weight is kept, even if the revision reads 0",
      app: app("Multiple", [...pinnedNew, { revisionName: "a--canary", weight: 10 }]),
      revisions: [rev("a--canary", 1), NEW],
      expected: { retire: [], keptWithTraffic: ["a--canary"] },
    },
    {
      name: "a revision with a label at weight 0 is kept (its label URL still routes to it)",
      app: app("Multiple", [...pinnedNew, { revisionName: "a--blue", weight: 0, label: "blue" }]),
      revisions: [rev("a--blue", 1), rev("a--old", 2), NEW],
      expected: { retire: ["a--old"], keptWithTraffic: ["a--blue"] },
    },
    {
      name: "a pinned entry at weight 0 without a label does not keep a revision",
      app: app("Multiple", [...pinnedNew, { revisionName: "a--old", weight: 0 }]),
      revisions: [rev("a--old", 1), NEW],
      expected: { retire: ["a--old"] },
    },
    {
      name: "a latestRevision entry keeps the latest ready revision when it is not the new one",
      app: {
        ...app("Multiple", [{ latestRevision: true, weight: 100 }]),
        latestReadyRevisionName: "a--old",
      },
      revisions: [rev("a--old", 1), NEW],
      expected: { retire: [], keptWithTraffic: ["a--old"] },
    },
    {
      name: "a revision created after the kept one (a later deploy) is left alone",
      app: app("Multiple", pinnedNew),
      revisions: [rev("a--old", 1), NEW, rev("a--ci", 11)],
      expected: { retire: ["a--old"], keptNewer: ["a--ci"] },
    },
    {
      name: "a revision of unknown age is left alone",
      app: app("Multiple", pinnedNew),
      revisions: [rev("a--odd", undefined), NEW],
      expected: { retire: [], keptNewer: ["a--odd"] },
    },
    {
      name: "names compare case-insensitively: the kept revision is never retired",
      app: app("Multiple", pinnedNew),
      revisions: [rev("a--OLD", 1), rev("A--NEW", 10)],
      expected: { retire: ["a--OLD"] },
    },
    {
      name: "refused when the kept revision is not active: the app is never left without one",
      app: app("Multiple", pinnedNew),
      revisions: [rev("a--old", 1), rev("a--new", 10, false)],
      expected: { refused: /a--new is not an active revision of container app a/ },
    },
    {
      name: "refused when the kept revision is not listed",
      app: app("Multiple", pinnedNew),
      revisions: [rev("a--old", 1)],
      expected: { refused: /not an active revision/ },
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const plan = planRetirement(c.app, c.revisions, "a--new");
      if (c.expected.refused) {
        expect(plan.refused).toMatch(c.expected.refused);
        expect(plan.retire).toEqual([]);
        return;
      }
      expect(plan.refused).toBeUndefined();
      expect(plan.retire).toEqual(c.expected.retire ?? []);
      expect(plan.keptWithTraffic).toEqual(c.expected.keptWithTraffic ?? []);
      expect(plan.keptNewer).toEqual(c.expected.keptNewer ?? []);
    });
  }
});
