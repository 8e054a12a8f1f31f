import type { ContainerApp } from "@azure/arm-appcontainers";
import { describe, expect, it } from "vitest";
import { classifyApp } from "../../shared/containerapp/apps.js";
import { isImageRef, selectDeploy } from "../../shared/deploy/selection.js";

const settings = {
  trustDomain: "td.example",
  apps: {
    managedTag: { name: "spire-autopilot", value: "managed" },
    blueprintOidTag: "spiffe-blueprint-oid",
    agentOidTag: "spiffe-agent-oid",
    workloadSelectors: [{ type: "unix", value: "uid:0" }],
  },
};
const BP = "11111111-1111-4111-8111-111111111111";
const AID = "22222222-2222-4222-8222-222222222222";

function app(name: string, kind: "managed" | "unmanaged" | "unusable"): ContainerApp {
  const tags: Record<string, string> =
    kind === "unmanaged" ? {} : { "spire-autopilot": "managed", "spiffe-blueprint-oid": BP };
  if (kind === "managed") tags["spiffe-agent-oid"] = AID;
  return {
    name,
    location: "westeurope",
    tags,
    template: {
      containers: [
        { name: "main", image: "acr.example/app:1" },
        {
          name: "agent",
          image: "acr.example/spire-agent:1.15.3",
          env: [{ name: "JOIN_TOKEN", secretRef: "t" }],
        },
      ],
      scale: { minReplicas: 1, maxReplicas: 1 },
    },
  };
}
const fleet = [
  app("alpha", "managed"),
  app("beta", "managed"),
  app("plain", "unmanaged"),
  app("broken", "unusable"),
];
const select = (requested?: string[], images?: Record<string, Record<string, string>>) =>
  selectDeploy({
    verdicts: fleet.map((a) => classifyApp(a, settings)),
    apps: new Map(fleet.map((a) => [a.name!, a])),
    requested,
    images,
    resourceGroup: "rg",
    managedTag: "spire-autopilot=managed",
  });

describe("selectDeploy", () => {
  it("by default takes every managed app and says why the others are out", () => {
    const r = select();
    if (!r.ok) throw new Error(r.error);
    expect(r.value.targets.map((t) => t.name)).toEqual(["alpha", "beta"]);
    expect(r.value.apps.map((a) => [a.app, a.included])).toEqual([
      ["alpha", true],
      ["beta", true],
      ["plain", false],
      ["broken", false],
    ]);
    expect(r.value.apps.find((a) => a.app === "broken")?.reason).toMatch(/spiffe-agent-oid/);
    expect(r.value.keep).toEqual(["broken"]);
  });

  it.each<{
    name: string;
    requested?: string[];
    images?: Record<string, Record<string, string>>;
    status: number;
    error: RegExp;
  }>([
    { name: "unknown app", requested: ["nope"], images: undefined, status: 404, error: /does not exist/ },
    { name: "unmanaged app", requested: ["plain"], images: undefined, status: 404, error: /not managed/ },
    { name: "unusable app", requested: ["broken"], images: undefined, status: 422, error: /cannot be/ },
    {
      name: "image for a missing container",
      requested: undefined,
      images: { alpha: { web: "x:1" } },
      status: 422,
      error: /no container "web"/,
    },
    {
      name: "image that is not a reference",
      requested: undefined,
      images: { alpha: { main: "Not An Image!" } },
      status: 422,
      error: /not an image reference/,
    },
    {
      name: "image for an app not requested",
      requested: ["beta"],
      images: { alpha: { main: "x:1" } },
      status: 422,
      error: /not in apps/,
    },
    {
      name: "image for an unmanaged app",
      requested: undefined,
      images: { plain: { main: "x:1" } },
      status: 422,
      error: /cannot act on/,
    },
  ])("refuses $name", (c) => {
    const r = select(c.requested, c.images);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.status).toBe(c.status);
      expect(r.error).toMatch(c.error);
    }
  });

  it("lists image changes from → to, leaving unchanged ones out, and keeps unselected apps' entries", () => {
    const r = select(["alpha"], {
      alpha: { main: "acr.example/app:2", agent: "acr.example/spire-agent:1.15.3" },
    });
    if (!r.ok) throw new Error(r.error);
    expect(r.value.images).toEqual([
      { app: "alpha", container: "main", from: "acr.example/app:1", to: "acr.example/app:2" },
    ]);
    expect(r.value.targets[0]?.images).toEqual({ main: "acr.example/app:2" });
    expect(r.value.keep.sort()).toEqual(["beta", "broken"]);
  });
});

describe("isImageRef", () => {
  it.each([
    ["nginx", true],
    ["acr.azurecr.io/agents/budget:1.5", true],
    ["localhost:5000/x/y:latest", true],
    [`ghcr.io/spiffe/spire-agent@sha256:${"a".repeat(64)}`, true],
    ["Upper/Case:1", false],
    ["a b", false],
    ["x:", false],
    ["", false],
  ])("%s → %s", (ref, ok) => {
    expect(isImageRef(ref)).toBe(ok);
  });
});
