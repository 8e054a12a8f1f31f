import type { ContainerApp } from "@azure/arm-appcontainers";
import { describe, expect, it } from "vitest";
import { type AppModelSettings, classifyApp, classifyApps } from "../../shared/containerapp/apps.js";

const BP = "11111111-2222-4333-8444-555555555555";
const AID = "AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE";

const settings: AppModelSettings = {
  trustDomain: "aim.microsoft.com",
  apps: {
    managedTag: { name: "spire-autopilot", value: "managed" },
    blueprintOidTag: "spiffe-blueprint-oid",
    agentOidTag: "spiffe-agent-oid",
    workloadSelectors: [{ type: "unix", value: "uid:0" }],
  },
};

function app(name: string, tags: Record<string, string>, withSidecar = true): ContainerApp {
  return {
    id: `/subscriptions/s/resourceGroups/rg/providers/Microsoft.App/containerApps/${name}`,
    name,
    location: "eastus",
    tags,
    template: {
      containers: [
        { name, image: "app:1" },
        ...(withSidecar
          ? [
              {
                name: `${name}-spiffe-proxy`,
                image: "proxy:1",
                env: [{ name: "JOIN_TOKEN", secretRef: "t" }],
              },
            ]
          : []),
      ],
    },
  };
}

const managedTags = { "spire-autopilot": "managed", "spiffe-blueprint-oid": BP, "spiffe-agent-oid": AID };

describe("classifyApp", () => {
  it("derives alias, workload ID and selectors from the tags", () => {
    expect(classifyApp(app("budget", managedTags), settings)).toEqual({
      kind: "managed",
      app: {
        name: "budget",
        resourceId: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.App/containerApps/budget",
        blueprintOid: BP,
        agentOid: AID.toLowerCase(),
        alias: "spiffe://aim.microsoft.com/agent/budget",
        workloadId: `spiffe://aim.microsoft.com/ests/bp/${BP}/aid/${AID.toLowerCase()}`,
        selectors: [{ type: "unix", value: "uid:0" }],
        sidecar: "budget-spiffe-proxy",
      },
    });
  });

  it.each([
    [
      { "spire-autopilot": "managed" },
      /spiffe-blueprint-oid is missing or not a GUID; tag spiffe-agent-oid is missing/,
    ],
    [{ ...managedTags, "spiffe-agent-oid": "not-a-guid" }, /^tag spiffe-agent-oid is missing or not a GUID$/],
  ])("reports a managed app with bad identity tags %j", (tags, reason) => {
    const v = classifyApp(app("web", tags), settings);
    expect(v.kind).toBe("skipped");
    expect(v.kind === "skipped" && v.reason).toMatch(reason);
  });

  it("reports a managed app without the sidecar", () => {
    const v = classifyApp(app("web", managedTags, false), settings);
    expect(v).toEqual({
      kind: "skipped",
      name: "web",
      reason: "no container reads JOIN_TOKEN (no SPIRE agent sidecar)",
    });
  });

  it("ignores apps not tagged as managed (or tagged with another value)", () => {
    expect(classifyApp(app("other", {}), settings).kind).toBe("unmanaged");
    expect(classifyApp(app("other", { "spire-autopilot": "paused" }), settings).kind).toBe("unmanaged");
  });

  it("honours configured tag names", () => {
    const custom = {
      ...settings,
      apps: { ...settings.apps, managedTag: { name: "owner", value: "sa" }, agentOidTag: "aid" },
    };
    const v = classifyApp(app("x1", { owner: "sa", "spiffe-blueprint-oid": BP, aid: AID }), custom);
    expect(v.kind).toBe("managed");
  });
});

it("classifyApps sorts the managed apps and lists the skipped with reasons", () => {
  const out = classifyApps(
    [
      app("zeta", managedTags),
      app("alpha", managedTags),
      app("broken", { "spire-autopilot": "managed" }),
      app("x", {}),
    ],
    settings,
  );
  expect(out.managed.map((a) => a.name)).toEqual(["alpha", "zeta"]);
  expect(out.skipped.map((s) => s.name)).toEqual(["broken"]);
});
