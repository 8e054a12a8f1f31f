import type { ContainerApp, ContainerAppSecret } from "@azure/arm-appcontainers";
import { describe, expect, it } from "vitest";
import { buildReattestSpec, SpecError } from "../../shared/containerapp/spec.js";

const TOKEN_URL = "https://vault1.vault.azure.net/secrets/join-token-budget/0123456789abcdef0123456789abcdef";

function app(): ContainerApp {
  return {
    name: "budget",
    location: "eastus",
    configuration: { activeRevisionsMode: "Single", secrets: [{ name: "spire-join-token" }] },
    template: {
      containers: [
        { name: "budget", image: "acr.azurecr.io/budget:1.4", env: [{ name: "PORT", value: "8080" }] },
        {
          name: "agent",
          image: "acr.azurecr.io/spire-agent:1.15.3",
          env: [{ name: "JOIN_TOKEN", secretRef: "spire-join-token" }],
        },
      ],
      scale: { minReplicas: 1, maxReplicas: 1 },
    },
  };
}
const listed: ContainerAppSecret[] = [{ name: "spire-join-token", value: "old-spent-token" }];

describe("buildReattestSpec for a deploy (token by Key Vault reference, image change)", () => {
  it("references the token's Key Vault secret instead of carrying its value", () => {
    const out = buildReattestSpec({
      app: app(),
      secrets: listed,
      joinToken: { keyVaultUrl: TOKEN_URL, identity: "system" },
      runId: "deploy@1",
    });
    expect(out.configuration?.secrets).toEqual([
      { name: "spire-join-token", keyVaultUrl: TOKEN_URL, identity: "system" },
    ]);
    expect(JSON.stringify(out)).not.toContain("old-spent-token");
  });

  it.each<{ images: Record<string, string>; expect: string[] }>([
    {
      images: { budget: "acr.azurecr.io/budget:1.5" },
      expect: ["acr.azurecr.io/budget:1.5", "acr.azurecr.io/spire-agent:1.15.3"],
    },
    {
      images: { agent: "acr.azurecr.io/spire-agent:1.15.4" },
      expect: ["acr.azurecr.io/budget:1.4", "acr.azurecr.io/spire-agent:1.15.4"],
    },
    { images: {}, expect: ["acr.azurecr.io/budget:1.4", "acr.azurecr.io/spire-agent:1.15.3"] },
  ])("changes only the named containers' images: $images", (c) => {
    const out = buildReattestSpec({
      app: app(),
      secrets: listed,
      joinToken: "t",
      runId: "r",
      images: c.images,
    });
    expect(out.template?.containers?.map((x) => x.image)).toEqual(c.expect);
    // Everything else of each container stays as it was.
    expect(out.template?.containers?.[0]?.env).toEqual([{ name: "PORT", value: "8080" }]);
  });

  it("refuses an image for a container the app does not have", () => {
    expect(() =>
      buildReattestSpec({ app: app(), secrets: listed, joinToken: "t", runId: "r", images: { web: "x:1" } }),
    ).toThrow(SpecError);
  });
});
