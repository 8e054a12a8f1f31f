import type { ContainerApp, ContainerAppSecret } from "@azure/arm-appcontainers";
import { describe, expect, it } from "vitest";
import {
  appFingerprint,
  buildReattestSpec,
  DEFAULT_TOKEN_SECRET,
  findSidecar,
  revisionNameFor,
  revisionSuffixFor,
  runAlreadyApplied,
  SpecError,
} from "../../shared/containerapp/spec.js";

const TOKEN = "5f0c6f0e-6a43-4f0e-9d52-2a7d3c1b9e44";
const BUNDLE_URL =
  "https://vault1.vault.azure.net/secrets/spire-trust-bundle/0123456789abcdef0123456789abcdef";

/** Shaped like the seed deployment: the agent app plus the agent-proxy sidecar, token in plain env. */
function seedApp(): ContainerApp {
  return {
    id: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.App/containerApps/budget",
    name: "budget",
    location: "eastus",
    tags: { "spire-autopilot": "managed", "spiffe-blueprint-oid": "b", "spiffe-agent-oid": "a" },
    latestRevisionName: "budget--v1",
    configuration: {
      activeRevisionsMode: "Single",
      ingress: { external: false, targetPort: 8080, transport: "tcp" },
      registries: [{ server: "acr.azurecr.io", username: "acr", passwordSecretRef: "acr-password" }],
      secrets: [
        { name: "acr-password" },
        { name: "db-conn", keyVaultUrl: "https://v.vault.azure.net/secrets/db", identity: "system" },
      ],
    },
    template: {
      revisionSuffix: "v1",
      containers: [
        {
          name: "budget",
          image: "acr.azurecr.io/budget:1.4",
          env: [
            { name: "PORT", value: "8080" },
            { name: "DB", secretRef: "db-conn" },
          ],
          probes: [{ type: "Liveness", httpGet: { path: "/healthz", port: 8080 } }],
          resources: { cpu: 0.5, memory: "1Gi" },
        },
        {
          name: "budget-spiffe-proxy",
          image: "acr.azurecr.io/spiffe-proxy:2.0",
          env: [
            { name: "CONTAINER_MODE", value: "agent-proxy" },
            { name: "JOIN_TOKEN", value: "0ld-t0ken-0000-0000-000000000000" },
            {
              name: "SPIRE_TRUST_BUNDLE",
              value: "-----BEGIN CERTIFICATE-----\nMII...\n-----END CERTIFICATE-----",
            },
            { name: "SPIRE_SERVER_ADDR", value: "spire-server:8081" },
          ],
          volumeMounts: [{ volumeName: "spire-data", mountPath: "/opt/spire/data" }],
        },
      ],
      scale: { minReplicas: 1, maxReplicas: 1 },
      volumes: [{ name: "spire-data", storageType: "EmptyDir" }],
    },
  };
}

const listed = (): ContainerAppSecret[] => [
  { name: "acr-password", value: "hunter2-registry" },
  { name: "db-conn", keyVaultUrl: "https://v.vault.azure.net/secrets/db", identity: "system" },
];

const sidecarOf = (app: ContainerApp) =>
  app.template!.containers!.find((c) => c.name === "budget-spiffe-proxy")!;

describe("buildReattestSpec", () => {
  it("migrates a plain-env token to a secret the sidecar's JOIN_TOKEN refers to", () => {
    const out = buildReattestSpec({ app: seedApp(), secrets: listed(), joinToken: TOKEN, runId: "run-1" });
    const env = sidecarOf(out).env!;
    expect(env.find((e) => e.name === "JOIN_TOKEN")).toEqual({
      name: "JOIN_TOKEN",
      secretRef: DEFAULT_TOKEN_SECRET,
    });
    expect(env.map((e) => e.name)).toEqual([
      "CONTAINER_MODE",
      "JOIN_TOKEN",
      "SPIRE_TRUST_BUNDLE",
      "SPIRE_SERVER_ADDR",
    ]);
    expect(out.configuration!.secrets).toContainEqual({ name: DEFAULT_TOKEN_SECRET, value: TOKEN });
    expect(JSON.stringify(out)).not.toContain("0ld-t0ken");
  });

  it("keeps every other secret's value or Key Vault reference (GET has no values)", () => {
    const out = buildReattestSpec({ app: seedApp(), secrets: listed(), joinToken: TOKEN, runId: "run-1" });
    expect(out.configuration!.secrets).toEqual([
      { name: "acr-password", value: "hunter2-registry" },
      { name: "db-conn", keyVaultUrl: "https://v.vault.azure.net/secrets/db", identity: "system" },
      { name: DEFAULT_TOKEN_SECRET, value: TOKEN },
    ]);
  });

  it("reuses the secret the sidecar already refers to", () => {
    const app = seedApp();
    sidecarOf(app).env![1] = { name: "JOIN_TOKEN", secretRef: "join-token" };
    const out = buildReattestSpec({
      app,
      secrets: [...listed(), { name: "join-token", value: "spent" }],
      joinToken: TOKEN,
      runId: "r",
    });
    expect(out.configuration!.secrets!.filter((s) => s.name === "join-token")).toEqual([
      { name: "join-token", value: TOKEN },
    ]);
    expect(out.configuration!.secrets!.some((s) => s.name === DEFAULT_TOKEN_SECRET)).toBe(false);
  });

  it("refuses a secret that has neither value nor Key Vault reference, naming it", () => {
    const secrets = [...listed(), { name: "orphan" }];
    expect(() => buildReattestSpec({ app: seedApp(), secrets, joinToken: TOKEN, runId: "r" })).toThrow(
      /Secret "orphan" of container app budget has neither a value nor a Key Vault reference/,
    );
  });

  it("pins the trust bundle to the given Key Vault version through a secret", () => {
    const out = buildReattestSpec({
      app: seedApp(),
      secrets: listed(),
      joinToken: TOKEN,
      runId: "r",
      trustBundle: { keyVaultUrl: BUNDLE_URL, identity: "system" },
    });
    expect(sidecarOf(out).env!.find((e) => e.name === "SPIRE_TRUST_BUNDLE")).toEqual({
      name: "SPIRE_TRUST_BUNDLE",
      secretRef: "spire-trust-bundle",
    });
    expect(out.configuration!.secrets).toContainEqual({
      name: "spire-trust-bundle",
      keyVaultUrl: BUNDLE_URL,
      identity: "system",
    });
  });

  it.each([
    "https://vault1.vault.azure.net/secrets/spire-trust-bundle",
    "http://vault1.vault.azure.net/secrets/b/0123456789abcdef0123456789abcdef",
    "https://vault1.vault.azure.net/keys/b/0123456789abcdef0123456789abcdef",
  ])("refuses an unversioned or odd bundle reference %s", (keyVaultUrl) => {
    expect(() =>
      buildReattestSpec({
        app: seedApp(),
        secrets: listed(),
        joinToken: TOKEN,
        runId: "r",
        trustBundle: { keyVaultUrl, identity: "system" },
      }),
    ).toThrow(/versioned Key Vault secret URL/);
  });

  it("replaces the revisionSuffix that GET echoes with one derived from the run", () => {
    const out = buildReattestSpec({ app: seedApp(), secrets: listed(), joinToken: TOKEN, runId: "run-7" });
    expect(out.template!.revisionSuffix).toBe(revisionSuffixFor("run-7"));
    expect(out.template!.revisionSuffix).not.toBe("v1");
    expect(revisionSuffixFor("run-7")).not.toBe(revisionSuffixFor("run-8"));
    expect(revisionNameFor("budget", "run-7")).toMatch(/^budget--sa-[0-9a-f]{12}$/);
  });

  it("leaves everything else unchanged: other containers, images, env, probes, volumes, scale, ingress", () => {
    const before = seedApp();
    const out = buildReattestSpec({ app: before, secrets: listed(), joinToken: TOKEN, runId: "r" });
    expect(out.template!.containers![0]).toEqual(before.template!.containers![0]);
    expect(sidecarOf(out).image).toBe(sidecarOf(before).image);
    expect(sidecarOf(out).volumeMounts).toEqual(sidecarOf(before).volumeMounts);
    const strip = (a: ContainerApp) => {
      const c = structuredClone(a);
      delete c.configuration!.secrets;
      delete c.template!.revisionSuffix;
      c.template!.containers![1]!.env = c.template!.containers![1]!.env!.filter(
        (e) => e.name !== "JOIN_TOKEN",
      );
      return c;
    };
    expect(strip(out)).toEqual(strip(before));
    expect(before.template!.revisionSuffix).toBe("v1");
  });

  it("refuses an app without the sidecar, saying what it looks for", () => {
    const app = seedApp();
    app.template!.containers = [app.template!.containers![0]!];
    expect(() => buildReattestSpec({ app, secrets: listed(), joinToken: TOKEN, runId: "r" })).toThrow(
      SpecError,
    );
    expect(() => buildReattestSpec({ app, secrets: listed(), joinToken: TOKEN, runId: "r" })).toThrow(
      /has no SPIRE agent sidecar: no container reads JOIN_TOKEN/,
    );
  });

  it("refuses two sidecars", () => {
    const app = seedApp();
    app.template!.containers!.push({ ...sidecarOf(app), name: "second" });
    expect(() => findSidecar(app)).toThrow(
      /2 containers with a JOIN_TOKEN variable \(budget-spiffe-proxy, second\)/,
    );
  });

  it("knows when the run's revision is already the latest (a retried activity must not PUT twice)", () => {
    expect(runAlreadyApplied(seedApp(), "r")).toBe(false);
    const applied: ContainerApp = { ...seedApp(), latestRevisionName: revisionNameFor("budget", "r") };
    expect(runAlreadyApplied(applied, "r")).toBe(true);
  });
});

describe("traffic in Multiple revision mode", () => {
  const multiple = (
    traffic: NonNullable<NonNullable<ContainerApp["configuration"]>["ingress"]>["traffic"],
  ) => {
    const app = seedApp();
    app.configuration!.activeRevisionsMode = "Multiple";
    app.configuration!.ingress = { ...app.configuration!.ingress, traffic };
    return app;
  };
  const build = (app: ContainerApp) =>
    buildReattestSpec({ app, secrets: listed(), joinToken: TOKEN, runId: "run-1" }).configuration?.ingress
      ?.traffic;
  const next = revisionNameFor("budget", "run-1");

  it("gives the new revision the weight and label the replaced one had; others keep theirs", () => {
    const traffic = build(
      multiple([
        { revisionName: "budget--v1", weight: 80, label: "stable" },
        { revisionName: "budget--v0", weight: 20, label: "rollback" },
      ]),
    );
    expect(traffic).toEqual([
      { revisionName: next, weight: 80, label: "stable" },
      { revisionName: "budget--v0", weight: 20, label: "rollback" },
    ]);
  });

  it("leaves traffic that follows the latest revision alone (the new revision takes it when ready)", () => {
    expect(build(multiple([{ latestRevision: true, weight: 100 }]))).toEqual([
      { latestRevision: true, weight: 100 },
    ]);
  });

  it("does not touch traffic in Single mode", () => {
    const app = seedApp();
    app.configuration!.ingress = {
      ...app.configuration!.ingress,
      traffic: [{ revisionName: "budget--v1", weight: 100 }],
    };
    expect(build(app)).toEqual([{ revisionName: "budget--v1", weight: 100 }]);
  });
});

describe("appFingerprint", () => {
  const read = () => ({ ...seedApp(), systemData: { lastModifiedAt: new Date("2026-12-01T10:00:00Z") } });

  it("is equal for two reads of an unchanged app, whatever the key order or read-only status", () => {
    const a = read();
    const b = { ...read(), runningStatus: "Running", latestReadyRevisionName: "budget--v1" };
    const reordered = Object.fromEntries(Object.entries(b).reverse()) as unknown as ContainerApp;
    expect(appFingerprint(reordered)).toBe(appFingerprint(a));
  });

  it.each([
    [
      "a new image (a CI deploy)",
      (a: ContainerApp) => {
        a.template!.containers![0]!.image = "acr.azurecr.io/budget:1.5";
      },
    ],
    [
      "a new revision",
      (a: ContainerApp) => {
        (a as { latestRevisionName?: string }).latestRevisionName = "budget--ci7";
      },
    ],
    [
      "a later modification time (a secret value changed)",
      (a: ContainerApp) => {
        (a as { systemData?: object }).systemData = { lastModifiedAt: new Date("2026-12-01T10:00:05Z") };
      },
    ],
    [
      "an operation in progress",
      (a: ContainerApp) => {
        (a as { provisioningState?: string }).provisioningState = "InProgress";
      },
    ],
    [
      "a scale change",
      (a: ContainerApp) => {
        a.template!.scale = { minReplicas: 1, maxReplicas: 3 };
      },
    ],
    [
      "a tag change",
      (a: ContainerApp) => {
        a.tags = { ...a.tags, team: "x" };
      },
    ],
  ])("changes with %s", (_what, change) => {
    const changed = read();
    change(changed);
    expect(appFingerprint(changed)).not.toBe(appFingerprint(read()));
  });
});
