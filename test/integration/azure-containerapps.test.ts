/**
 * Container Apps through the real @azure/arm-appcontainers client against the simulator: ARM
 * validation, CRUD with long-running operations, secrets, revisions in Single mode, replicas,
 * the partial-update reset (#3, #29) and 403s after a role assignment (#15). Containers are
 * simulated here; test/integration/azure-replicas.test.ts runs real SPIRE agents.
 */
import type { ContainerApp } from "@azure/arm-appcontainers";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { PLACEHOLDER_IMAGE } from "../../sandbox/azure/containerapps/spec.js";
import { SimControlClient } from "../../sandbox/azure/control.js";
import { type AzureSimulator, startAzureSimulator } from "../../sandbox/azure/index.js";
import { SimulatedContainerRuntime } from "../../sandbox/azure/runtime/simulated.js";
import type { ContainerExit, ContainerRuntime, RunningContainer } from "../../sandbox/azure/runtime/types.js";
import type { SimulatorClients } from "../../sandbox/azure/simulator.js";
import { sandboxSettings } from "../../sandbox/environment.js";
import { createAzureClients } from "../../shared/azure/clients.js";
import { loadConfig } from "../../shared/config.js";
import { appSpec, RG, raw, replicas, revisions, waitFor, waitForReadyRevision } from "./azure-fixtures.js";

interface ErrorShape {
  statusCode: number | undefined;
  code: string | undefined;
  message: string;
}

async function failure(p: Promise<unknown>): Promise<ErrorShape> {
  try {
    await p;
  } catch (err) {
    const e = err as { statusCode?: number; code?: string; message: string };
    return { statusCode: e.statusCode, code: e.code, message: e.message };
  }
  throw new Error("expected the call to fail");
}

/**
 * Containers whose image name contains "crash" exit right after starting; "slow" ones start and
 * never become ready; others are simulated.
 */
class CrashingRuntime implements ContainerRuntime {
  private readonly simulated = new SimulatedContainerRuntime();
  starts = 0;
  async start(launch: Parameters<ContainerRuntime["start"]>[0]): Promise<RunningContainer> {
    if (launch.image.includes("slow")) {
      return {
        ready: new Promise<void>(() => {}),
        exited: new Promise<ContainerExit>(() => {}),
        stop: async () => {},
      };
    }
    if (!launch.image.includes("crash")) return this.simulated.start(launch);
    this.starts += 1;
    launch.console("stderr", "panic: cannot start");
    const exited = new Promise<ContainerExit>((resolve) =>
      setTimeout(() => resolve({ exitCode: 2, reason: "Error" }), 20),
    );
    return { ready: new Promise<void>(() => {}), exited, stop: async () => {} };
  }
  close(): Promise<void> {
    return this.simulated.close();
  }
}

describe("Azure simulator: Container Apps", () => {
  let sim: AzureSimulator;
  let clients: SimulatorClients;
  const runtime = new CrashingRuntime();

  beforeAll(async () => {
    sim = await startAzureSimulator({ runtime });
    clients = sim.clients();
  });
  afterAll(async () => {
    await sim?.stop();
  });
  beforeEach(async () => {
    await sim.reset();
  });

  const create = (name: string, spec?: ContainerApp) =>
    clients.containerApps.containerApps.createOrUpdate(RG, name, spec ?? appSpec(sim, name)).pollUntilDone();

  describe("ARM front door", () => {
    it("requires api-version, a bearer token, JSON bodies, known resource types and the subscription", async () => {
      const app = `/subscriptions/${sim.subscriptionId}/resourceGroups/${RG}/providers/Microsoft.App/containerApps/a1`;
      const noVersion = await raw(sim, "GET", app);
      expect(noVersion.status).toBe(400);
      expect(noVersion.body).toEqual({
        error: {
          code: "MissingApiVersionParameter",
          message: "The api-version query parameter (?api-version=) is required for all requests.",
        },
      });
      const oldVersion = await raw(sim, "GET", `${app}?api-version=2019-01-01`);
      expect((oldVersion.body as { error: { code: string } }).error.code).toBe("NoRegisteredProviderFound");
      const noToken = await raw(sim, "GET", `${app}?api-version=2026-07-01`, { token: null });
      expect(noToken.status).toBe(401);
      expect((noToken.body as { error: { code: string } }).error.code).toBe("AuthenticationFailed");
      const badToken = await raw(sim, "GET", `${app}?api-version=2026-07-01`, { token: "eyJ.real.azure" });
      expect((badToken.body as { error: { code: string } }).error.code).toBe("InvalidAuthenticationToken");
      const badJson = await raw(sim, "PUT", `${app}?api-version=2026-07-01`, { body: "{not json" });
      expect(badJson.status).toBe(400);
      expect((badJson.body as { error: { code: string } }).error.code).toBe("InvalidRequestContent");
      const notFound = await raw(sim, "GET", `${app}?api-version=2026-07-01`);
      expect(notFound.status).toBe(404);
      expect(notFound.body).toEqual({
        error: {
          code: "ResourceNotFound",
          message: `The Resource 'Microsoft.App/containerApps/a1' under resource group '${RG}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`,
        },
      });
      expect(notFound.headers["x-ms-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
      const unknownType = await raw(
        sim,
        "GET",
        `/subscriptions/${sim.subscriptionId}/resourceGroups/${RG}/providers/Microsoft.App/widgets/w?api-version=2026-07-01`,
      );
      expect(unknownType.status).toBe(404);
      expect((unknownType.body as { error: { code: string } }).error.code).toBe("InvalidResourceType");
      const otherSub = await raw(
        sim,
        "GET",
        `/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/${RG}/providers/Microsoft.App/containerApps/a1?api-version=2026-07-01`,
      );
      expect((otherSub.body as { error: { code: string } }).error.code).toBe("SubscriptionNotFound");
      const badName = await failure(create("Bad_Name"));
      expect(badName).toMatchObject({ statusCode: 400, code: "ContainerAppInvalidName" });
    });

    it("serves the product's own clients, built from config (ARM_ENDPOINT, ARM_CA_CERT_FILE, sandbox credential)", async () => {
      const config = loadConfig({ ...sandboxSettings("/tmp/sa-unused"), ...sim.settings() });
      const product = createAzureClients(config);
      await create("a1");
      const app = await product.containerApps.containerApps.get(RG, "a1");
      expect(app.provisioningState).toBe("Succeeded");
      const secrets = await product.containerApps.containerApps.listSecrets(RG, "a1");
      expect(secrets.value?.[0]?.name).toBe("join-token");
    });

    it("answers a missing app through the SDK with 404 ResourceNotFound", async () => {
      expect(await failure(clients.containerApps.containerApps.get(RG, "nope"))).toMatchObject({
        statusCode: 404,
        code: "ResourceNotFound",
      });
    });
  });

  describe("create, read, list, delete", () => {
    it("creates an app through the LRO poller and provisions its first revision", async () => {
      const poller = clients.containerApps.containerApps.createOrUpdate(RG, "a1", appSpec(sim, "a1"));
      const created = await poller.pollUntilDone();
      expect(created.provisioningState).toBe("Succeeded");
      expect(created.latestRevisionName).toMatch(/^a1--[a-z][a-z0-9]{6}$/);
      expect(created.template?.containers?.[0]?.resources).toEqual({
        cpu: 0.5,
        memory: "1Gi",
        ephemeralStorage: "2Gi",
      });
      expect(created.configuration?.activeRevisionsMode).toBe("Single");
      const revisionName = await waitForReadyRevision(clients.containerApps, "a1");
      expect(revisionName).toBe(created.latestRevisionName);
      const [rev] = await revisions(clients.containerApps, "a1");
      expect(rev).toMatchObject({
        active: true,
        runningState: "Running",
        healthState: "Healthy",
        provisioningState: "Provisioned",
        replicas: 1,
      });
      const [replica] = await replicas(clients.containerApps, "a1", revisionName);
      expect(replica?.name).toMatch(new RegExp(`^${revisionName}-`));
      expect(replica?.runningState).toBe("Running");
      expect(replica?.containers?.map((c) => [c.name, c.runningState, c.ready, c.restartCount])).toEqual([
        ["agent", "Running", true, 0],
        ["a1-spiffe-proxy", "Running", true, 0],
      ]);
      expect(sim.counters.snapshot().containerApps).toMatchObject({ puts: 1, revisionsCreated: 1 });
      expect(sim.counters.calls("Microsoft.App/containerApps/write")).toBe(1);
    });

    it("never returns secret values from GET or list; listSecrets does", async () => {
      await create("a1", appSpec(sim, "a1", { joinToken: "s3cr3t-token" }));
      const got = await clients.containerApps.containerApps.get(RG, "a1");
      expect(got.configuration?.secrets).toEqual([{ name: "join-token" }]);
      const rawGet = await raw(
        sim,
        "GET",
        `/subscriptions/${sim.subscriptionId}/resourceGroups/${RG}/providers/Microsoft.App/containerApps/a1?api-version=2026-07-01`,
      );
      expect(JSON.stringify(rawGet.body)).not.toContain("s3cr3t-token");
      const listed = [];
      for await (const a of clients.containerApps.containerApps.listByResourceGroup(RG)) listed.push(a);
      expect(JSON.stringify(listed)).not.toContain("s3cr3t-token");
      const secrets = await clients.containerApps.containerApps.listSecrets(RG, "a1");
      expect(secrets.value).toEqual([{ name: "join-token", value: "s3cr3t-token" }]);
    });

    it("lists apps by resource group and subscription with their tags", async () => {
      await create("a1");
      await create("a2", { ...appSpec(sim, "a2"), tags: { other: "x" } });
      const inRg = [];
      for await (const a of clients.containerApps.containerApps.listByResourceGroup(RG)) inRg.push(a);
      expect(inRg.map((a) => [a.name, a.tags]).sort()).toEqual([
        ["a1", { "spire-autopilot": "managed", "agent-oid": "oid-a1" }],
        ["a2", { other: "x" }],
      ]);
      const inOtherRg = [];
      for await (const a of clients.containerApps.containerApps.listByResourceGroup("rg-other"))
        inOtherRg.push(a);
      expect(inOtherRg).toEqual([]);
      const inSub = [];
      for await (const a of clients.containerApps.containerApps.listBySubscription()) inSub.push(a);
      expect(inSub).toHaveLength(2);
    });

    it("deletes through the LRO poller and stops the replicas", async () => {
      await create("a1");
      await clients.containerApps.containerApps.delete(RG, "a1").pollUntilDone();
      expect(await failure(clients.containerApps.containerApps.get(RG, "a1"))).toMatchObject({
        statusCode: 404,
      });
      expect(sim.counters.snapshot().containerApps.deletes).toBe(1);
      // Deleting what is not there is a no-op (204).
      await clients.containerApps.containerApps.delete(RG, "a1").pollUntilDone();
    });
  });

  describe("validation errors with Azure's codes", () => {
    it("refuses a secret with neither value nor Key Vault reference (ContainerAppSecretInvalid)", async () => {
      const spec = appSpec(sim, "a1");
      spec.configuration = {
        secrets: [
          { name: "join-token" },
          { name: "other", keyVaultUrl: "https://v.vault.azure.net/secrets/x" },
        ],
      };
      expect(await failure(create("a1", spec))).toEqual({
        statusCode: 400,
        code: "ContainerAppSecretInvalid",
        message:
          "Invalid Request: Container app secret(s) with name(s) 'join-token, other' are invalid: value or keyVaultUrl and identity should be provided.",
      });
    });

    it("refuses re-sending a GET'd spec whose secrets carry no values", async () => {
      await create("a1");
      const got = await clients.containerApps.containerApps.get(RG, "a1");
      const again = { ...got, template: { ...got.template, revisionSuffix: "fresh1" } };
      expect(await failure(create("a1", again))).toMatchObject({
        statusCode: 400,
        code: "ContainerAppSecretInvalid",
      });
    });

    it("refuses an invalid revision suffix (ContainerAppInvalidRevisionName)", async () => {
      for (const suffix of ["Upper", "1starts-with-digit", "double--dash", "ends-", "x".repeat(60)]) {
        const err = await failure(create("a1", appSpec(sim, "a1", { suffix })));
        expect(err.code).toBe("ContainerAppInvalidRevisionName");
        expect(err.message).toContain(
          "The length of the revision name must not be more than a combined 54 characters",
        );
      }
    });

    it("refuses an env secretRef to a missing secret", async () => {
      const spec = appSpec(sim, "a1");
      spec.configuration = { secrets: [] };
      expect(await failure(create("a1", spec))).toMatchObject({
        statusCode: 400,
        code: "ContainerAppSecretRefNotFound",
        message: "SecretRef 'join-token' defined for container 'a1-spiffe-proxy' not found.",
      });
    });

    it("accepts a reused revision suffix with 2xx and fails it asynchronously (learning #9)", async () => {
      await create("a1", appSpec(sim, "a1", { suffix: "v1" }));
      await waitForReadyRevision(clients.containerApps, "a1");
      const poller = clients.containerApps.containerApps.createOrUpdate(
        RG,
        "a1",
        appSpec(sim, "a1", { suffix: "v1", joinToken: "token-2", extraEnv: [{ name: "X", value: "2" }] }),
      );
      await poller.submitted();
      const err = await failure(poller.pollUntilDone());
      expect(err.message).toContain("revision with suffix v1 already exists");
      const app = await clients.containerApps.containerApps.get(RG, "a1");
      expect(app.provisioningState).toBe("Failed");
      expect(app.latestRevisionName).toBe("a1--v1");
      expect((await revisions(clients.containerApps, "a1")).map((r) => r.name)).toEqual(["a1--v1"]);
      expect(sim.counters.snapshot().containerApps.failedOperations).toBe(1);
    });

    it("answers 409 to a write while the app's operation is in progress", async () => {
      const first = clients.containerApps.containerApps.createOrUpdate(RG, "a1", appSpec(sim, "a1"));
      await first.submitted();
      const err = await failure(create("a1", appSpec(sim, "a1", { extraEnv: [{ name: "X", value: "1" }] })));
      expect(err).toMatchObject({ statusCode: 409, code: "ContainerAppOperationInProgress" });
      await first.pollUntilDone();
    });
  });

  describe("revisions in Single mode", () => {
    it("a template change creates a new revision, which replaces the old one once ready", async () => {
      const first = await create("a1");
      const firstRevision = await waitForReadyRevision(clients.containerApps, "a1");
      expect(first.latestRevisionName).toBe(firstRevision);
      const updated = await create("a1", appSpec(sim, "a1", { image: "example.azurecr.io/agent:2" }));
      expect(updated.latestRevisionName).not.toBe(firstRevision);
      const second = await waitForReadyRevision(clients.containerApps, "a1");
      expect(second).toBe(updated.latestRevisionName);
      const revs = await revisions(clients.containerApps, "a1");
      expect(revs.map((r) => [r.name, r.active, r.runningState, r.replicas])).toEqual([
        [firstRevision, false, "Stopped", 0],
        [second, true, "Running", 1],
      ]);
      expect(sim.counters.snapshot().containerApps.revisionsCreated).toBe(2);
    });

    it("a secrets-only change creates no revision; a revision restart applies it to new replicas", async () => {
      await create("a1", appSpec(sim, "a1", { joinToken: "token-1" }));
      const rev = await waitForReadyRevision(clients.containerApps, "a1");
      const [before] = await replicas(clients.containerApps, "a1", rev);
      await create("a1", appSpec(sim, "a1", { joinToken: "token-2" }));
      expect((await revisions(clients.containerApps, "a1")).map((r) => r.name)).toEqual([rev]);
      expect(sim.counters.snapshot().containerApps.revisionsCreated).toBe(1);
      const secrets = await clients.containerApps.containerApps.listSecrets(RG, "a1");
      expect(secrets.value?.[0]?.value).toBe("token-2");
      await clients.containerApps.containerAppsRevisions.restartRevision(RG, "a1", rev);
      const after = await waitFor("a new replica", async () => {
        const [r] = await replicas(clients.containerApps, "a1", rev);
        return r && r.name !== before?.name && r.runningState === "Running" ? r : undefined;
      });
      expect(after.name).not.toBe(before?.name);
      const env = sim.events.console.filter((e) => e.replica === after.name);
      expect(env.length).toBeGreaterThan(0);
      expect(sim.counters.snapshot().containerApps.revisionRestarts).toBe(1);
    });

    it("an explicit new suffix names the revision", async () => {
      await create("a1", appSpec(sim, "a1", { suffix: "v1" }));
      const updated = await create("a1", appSpec(sim, "a1", { suffix: "v2" }));
      expect(updated.latestRevisionName).toBe("a1--v2");
      expect(updated.template?.revisionSuffix).toBe("v2");
    });

    it("a PATCH without a template creates no revision, even when the stored suffix names an existing one", async () => {
      sim.faults.set({ patchResetsOtherContainers: false });
      await create("a1", appSpec(sim, "a1", { suffix: "v1" }));
      const patched = await clients.containerApps.containerApps
        .update(RG, "a1", { location: "eastus", tags: { x: "1" } })
        .pollUntilDone();
      expect(patched.provisioningState).toBe("Succeeded");
      expect(patched.latestRevisionName).toBe("a1--v1");
      expect(patched.template?.revisionSuffix).toBe("v1");
      expect(sim.counters.snapshot().containerApps.revisionsCreated).toBe(1);
    });

    it("a crashing container restarts with backoff, counts restarts, and leaves the old revision serving", async () => {
      await create("a1");
      const good = await waitForReadyRevision(clients.containerApps, "a1");
      const updated = await create("a1", appSpec(sim, "a1", { image: "example.azurecr.io/crash:1" }));
      const bad = updated.latestRevisionName as string;
      const replica = await waitFor(
        "restartCount >= 2",
        async () => {
          const [r] = await replicas(clients.containerApps, "a1", bad);
          const c = r?.containers?.find((x) => x.name === "agent");
          return c && (c.restartCount ?? 0) >= 2 ? r : undefined;
        },
        15_000,
      );
      expect(replica.containers?.find((c) => c.name === "agent")?.ready).toBe(false);
      const revs = await revisions(clients.containerApps, "a1");
      // A revision that never came up reads ActivationFailed in Azure, not Degraded (#29102).
      expect(revs.find((r) => r.name === bad)).toMatchObject({
        runningState: "ActivationFailed",
        healthState: "Unhealthy",
      });
      expect(revs.find((r) => r.name === good)).toMatchObject({ active: true, runningState: "Running" });
      const app = await clients.containerApps.containerApps.get(RG, "a1");
      expect(app.latestRevisionName).toBe(bad);
      expect(app.latestReadyRevisionName).toBe(good);
      expect(sim.counters.snapshot().containerApps.containerRestarts).toBeGreaterThanOrEqual(2);
      expect(sim.events.system.some((e) => e.reason === "ContainerTerminated" && e.revision === bad)).toBe(
        true,
      );
    });
  });

  describe("running states, scale and traffic", () => {
    it("a new revision reads Activating while its replicas start", async () => {
      await create("a1", appSpec(sim, "a1", { image: "example.azurecr.io/slow:1" }));
      const rev = await waitFor(
        "the revision to be provisioned",
        async () => {
          const [r] = await revisions(clients.containerApps, "a1");
          return r?.provisioningState === "Provisioned" ? r : undefined;
        },
        5_000,
      );
      expect(rev).toMatchObject({ runningState: "Activating", healthState: "None", replicas: 1 });
    });

    it("a container that exits at once (command false) makes a new revision ActivationFailed", async () => {
      await create("a1", appSpec(sim, "a1", { command: ["/bin/false"] }));
      const rev = await waitFor(
        "ActivationFailed",
        async () => {
          const [r] = await revisions(clients.containerApps, "a1");
          return r?.runningState === "ActivationFailed" ? r : undefined;
        },
        10_000,
      );
      expect(rev.healthState).toBe("Unhealthy");
    });

    it("a 1..3 app under load runs three replicas and reads RunningAtMaxScale; back to one when it eases", async () => {
      await create("a1", appSpec(sim, "a1", { scale: { minReplicas: 1, maxReplicas: 3 } }));
      const name = await waitForReadyRevision(clients.containerApps, "a1");
      expect(await replicas(clients.containerApps, "a1", name)).toHaveLength(1);
      sim.containerApps.setDemand(RG, "a1", 5);
      const rev = await waitFor(
        "RunningAtMaxScale",
        async () => {
          const r = await clients.containerApps.containerAppsRevisions.getRevision(RG, "a1", name);
          return r.runningState === "RunningAtMaxScale" ? r : undefined;
        },
        5_000,
      );
      expect(rev.replicas).toBe(3);
      const names = (await replicas(clients.containerApps, "a1", name)).map((r) => r.name);
      expect(new Set(names).size).toBe(3);
      sim.containerApps.setDemand(RG, "a1", undefined);
      expect(await replicas(clients.containerApps, "a1", name)).toHaveLength(1);
    });

    it("a 0..1 app with no load scales to zero and reads ScaledToZero", async () => {
      await create("a1", appSpec(sim, "a1", { scale: { minReplicas: 0, maxReplicas: 1 } }));
      const name = await waitForReadyRevision(clients.containerApps, "a1");
      sim.containerApps.setDemand(RG, "a1", 0);
      const rev = await clients.containerApps.containerAppsRevisions.getRevision(RG, "a1", name);
      expect(rev).toMatchObject({ runningState: "ScaledToZero", replicas: 0 });
    });

    it("Multiple mode: ingress.traffic decides each revision's weight; latestRevision follows the latest ready", async () => {
      const multiple = (suffix: string, traffic: unknown[]) => {
        const spec = appSpec(sim, "a1", { suffix, image: `example.azurecr.io/agent:${suffix}` });
        spec.configuration = {
          ...spec.configuration,
          activeRevisionsMode: "Multiple",
          ingress: { external: false, targetPort: 8080, traffic: traffic as never },
        };
        return spec;
      };
      await create("a1", multiple("v1", [{ latestRevision: true, weight: 100 }]));
      await waitForReadyRevision(clients.containerApps, "a1");
      await create(
        "a1",
        multiple("v2", [
          { revisionName: "a1--v1", weight: 80, label: "stable" },
          { revisionName: "a1--v2", weight: 20 },
        ]),
      );
      const weights = await waitFor(
        "both revisions running with their weights",
        async () => {
          const revs = await revisions(clients.containerApps, "a1");
          return revs.length === 2 && revs.every((r) => r.active && r.runningState === "Running")
            ? Object.fromEntries(revs.map((r) => [r.name, r.trafficWeight]))
            : undefined;
        },
        5_000,
      );
      expect(weights).toEqual({ "a1--v1": 80, "a1--v2": 20 });
    });
  });

  describe("faults", () => {
    it("a PATCH of one env var resets the other containers to a placeholder image (#3, #29)", async () => {
      await create("a1");
      await waitForReadyRevision(clients.containerApps, "a1");
      const got = await clients.containerApps.containerApps.get(RG, "a1");
      const containers = got.template?.containers ?? [];
      const agent = containers.find((c) => c.name === "agent");
      const patched = await clients.containerApps.containerApps
        .update(RG, "a1", {
          location: "eastus",
          template: {
            containers: [{ ...agent, env: [...(agent?.env ?? []), { name: "LOG_LEVEL", value: "debug" }] }],
          },
        })
        .pollUntilDone();
      const sidecar = patched.template?.containers?.find((c) => c.name === "a1-spiffe-proxy");
      expect(sidecar?.image).toBe(PLACEHOLDER_IMAGE);
      expect(sidecar?.env ?? []).toEqual([]);
      expect(patched.template?.containers?.find((c) => c.name === "agent")?.env).toContainEqual({
        name: "LOG_LEVEL",
        value: "debug",
      });
      expect(sim.counters.snapshot().containerApps).toMatchObject({
        patches: 1,
        containersReset: 1,
        revisionsCreated: 2,
      });
    });

    it("with the reset fault off, PATCH is a plain JSON merge patch (arrays replaced)", async () => {
      sim.faults.set({ patchResetsOtherContainers: false });
      await create("a1");
      const patched = await clients.containerApps.containerApps
        .update(RG, "a1", { location: "eastus", tags: { patched: "yes" } })
        .pollUntilDone();
      // RFC 7386: objects merge, so tags gain the new key.
      expect(patched.tags).toEqual({ "spire-autopilot": "managed", "agent-oid": "oid-a1", patched: "yes" });
      expect(patched.template?.containers).toHaveLength(2);
      expect(sim.counters.snapshot().containerApps.revisionsCreated).toBe(1);
    });

    it("403 AuthorizationFailed for chosen actions during a window after the fault is set (#15)", async () => {
      await create("a1");
      sim.faults.set({
        authorizationFailed: { actions: ["Microsoft.App/containerApps/write"], forSeconds: 1 },
      });
      const denied = await failure(
        create("a1", appSpec(sim, "a1", { extraEnv: [{ name: "X", value: "1" }] })),
      );
      expect(denied.statusCode).toBe(403);
      expect(denied.code).toBe("AuthorizationFailed");
      expect(denied.message).toContain("'Microsoft.App/containerApps/write'");
      // Reads are granted before writes.
      await clients.containerApps.containerApps.get(RG, "a1");
      await waitFor("the write permission to arrive", async () => {
        await create("a1", appSpec(sim, "a1", { extraEnv: [{ name: "X", value: "1" }] }));
        return true;
      });
      expect(sim.counters.snapshot().authorizationFailures).toBeGreaterThanOrEqual(1);
    });

    it("recreates a replica on demand: a new name and fresh containers", async () => {
      await create("a1");
      const rev = await waitForReadyRevision(clients.containerApps, "a1");
      const [before] = await replicas(clients.containerApps, "a1", rev);
      const old = sim.containerApps.restartReplica(RG, "a1");
      expect(old).toBe(before?.name);
      const after = await waitFor("the new replica to run", async () => {
        const [r] = await replicas(clients.containerApps, "a1", rev);
        return r && r.name !== old && r.runningState === "Running" ? r : undefined;
      });
      expect(after.containers?.every((c) => c.restartCount === 0)).toBe(true);
      expect(sim.counters.snapshot().containerApps.replicaRestarts).toBe(1);
    });
  });

  describe("control API over HTTP", () => {
    it("reads counters, sets faults and restarts replicas under /_sim/", async () => {
      const control = new SimControlClient(sim.url, sim.caPem);
      await create("a1");
      await waitForReadyRevision(clients.containerApps, "a1");
      expect((await control.counters()).containerApps.puts).toBe(1);
      const faults = await control.setFaults({
        patchResetsOtherContainers: false,
        wedgedRunCommands: "conflict",
      });
      expect(faults).toMatchObject({ patchResetsOtherContainers: false, wedgedRunCommands: "conflict" });
      const { replicas: names } = await control.replicas(RG, "a1");
      expect(names).toHaveLength(1);
      const { restarted } = await control.restartReplica(RG, "a1");
      expect(restarted).toBe(names[0]);
      await expect(control.setFaults({ wedgedRunCommands: "sometimes" as "hang" })).rejects.toThrow(/400/);
      await control.reset();
      expect((await control.counters()).containerApps.puts).toBe(0);
    });
  });
});
