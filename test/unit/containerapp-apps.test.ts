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

function app(
  name: string,
  tags: Record<string, string>,
  withSidecar = true,
  scale: { minReplicas?: number; maxReplicas?: number } | null = { minReplicas: 1, maxReplicas: 1 },
): ContainerApp {
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
      ...(scale && { scale }),
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
        attestation: "join-token",
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

  // One join token serves one agent: any other scale crash-loops every replica but the first, or
  // runs no agent to verify.
  it.each([
    [{ minReplicas: 1, maxReplicas: 3 }, "minReplicas = 1, maxReplicas = 3", /crash-loop/],
    [{ minReplicas: 0, maxReplicas: 1 }, "minReplicas = 0, maxReplicas = 1", /no replica running/],
    [{ minReplicas: 2, maxReplicas: 2 }, "minReplicas = 2, maxReplicas = 2", /crash-loop/],
    [{ minReplicas: 1 }, "minReplicas = 1, maxReplicas = 10", /crash-loop/],
    [null, "minReplicas = 0, maxReplicas = 10", /crash-loop.*, and with no replica running/],
  ])("skips an app whose scale is %j, naming the fix", (scale, range, why) => {
    const v = classifyApp(app("wide", managedTags, true, scale), settings);
    expect(v.kind).toBe("skipped");
    const reason = v.kind === "skipped" ? v.reason : "";
    expect(reason).toContain(range);
    expect(reason).toMatch(why);
    expect(reason).toMatch(/set minReplicas = maxReplicas = 1$/);
  });

  it("manages an app of exactly one replica", () => {
    expect(
      classifyApp(app("one", managedTags, true, { minReplicas: 1, maxReplicas: 1 }), settings).kind,
    ).toBe("managed");
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
