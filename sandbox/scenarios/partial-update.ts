import type { Container, ContainerApp, ContainerAppsAPIClient } from "@azure/arm-appcontainers";
import { buildReattestSpec } from "../../shared/containerapp/spec.js";
import { PLACEHOLDER_IMAGE } from "../azure/containerapps/spec.js";
import { type AzureSimulator, startAzureSimulator } from "../azure/index.js";
import type { Scenario } from "./types.js";

const RG = "rg-sandbox-apps";
const seconds = (ms: number) => Math.round(ms / 10) / 100;

/** The seed's app shape: the agent app and its `<app>-spiffe-proxy` sidecar with JOIN_TOKEN from a secret. */
function seedApp(sim: AzureSimulator, app: string): ContainerApp {
  return {
    location: "eastus",
    tags: { "spire-autopilot": "managed" },
    environmentId: `/subscriptions/${sim.subscriptionId}/resourceGroups/${RG}/providers/Microsoft.App/managedEnvironments/env-sandbox`,
    configuration: {
      activeRevisionsMode: "Single",
      secrets: [{ name: "spire-join-token", value: "first-token" }],
    },
    template: {
      containers: [
        {
          name: "agent",
          image: "example.azurecr.io/budget-agent:1.4.2",
          env: [
            { name: "LOG_LEVEL", value: "info" },
            { name: "PORT", value: "8000" },
          ],
        },
        {
          name: `${app}-spiffe-proxy`,
          image: "example.azurecr.io/spiffe-proxy:0.9.0",
          env: [
            { name: "CONTAINER_MODE", value: "agent-proxy" },
            { name: "JOIN_TOKEN", secretRef: "spire-join-token" },
            { name: "SPIRE_SERVER_ADDR", value: "10.0.0.4:8081" },
          ],
        },
      ],
      scale: { minReplicas: 1, maxReplicas: 1 },
    },
  };
}

/** What must not change behind the caller's back: image, command, env and mounts of each container. */
function shape(c: Container): string {
  return JSON.stringify({
    image: c.image,
    command: c.command,
    args: c.args,
    env: c.env,
    volumeMounts: c.volumeMounts,
  });
}

/** Containers of `after` that differ from `before`, other than the one the caller meant to change. */
function unintendedChanges(
  before: ContainerApp,
  after: ContainerApp,
  intended: string | undefined,
): string[] {
  const was = new Map((before.template?.containers ?? []).map((c) => [c.name, shape(c)]));
  return (after.template?.containers ?? [])
    .filter((c) => c.name !== intended && was.get(c.name) !== shape(c))
    .map((c) => c.name ?? "");
}

async function waitReady(client: ContainerAppsAPIClient, app: string, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && !signal.aborted) {
    const a = await client.containerApps.get(RG, app);
    if (a.latestRevisionName && a.latestReadyRevisionName === a.latestRevisionName) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${app}'s latest revision did not become ready within 20 s`);
}

export const partialUpdate: Scenario = {
  name: "partial-update",
  description:
    "Against the Azure simulator: a PATCH of one env var (like `az containerapp update --set-env-vars`) resets the sidecar to a placeholder image (#3, #29); full-spec PUTs built from GET + listSecrets change nothing else.",
  timeoutSeconds: 120,
  async run(ctx) {
    const started = Date.now();
    const sim = await startAzureSimulator({ log: (l) => ctx.log(`simulator: ${l}`) });
    try {
      const client = sim.clients().containerApps;
      const apps = client.containerApps;

      ctx.log("creating app-patch and app-put (agent + spiffe-proxy sidecar)");
      for (const name of ["app-patch", "app-put"]) {
        await apps.createOrUpdate(RG, name, seedApp(sim, name)).pollUntilDone({ abortSignal: ctx.signal });
        await waitReady(client, name, ctx.signal);
      }

      ctx.log("app-patch: PATCH with only the agent container, one env var changed");
      const before = await apps.get(RG, "app-patch");
      const agent = before.template?.containers?.find((c) => c.name === "agent");
      const patched = await apps
        .update(RG, "app-patch", {
          location: before.location,
          template: {
            containers: [
              {
                ...agent,
                env: (agent?.env ?? []).map((e) => (e.name === "LOG_LEVEL" ? { ...e, value: "debug" } : e)),
              },
            ],
          },
        })
        .pollUntilDone({ abortSignal: ctx.signal });
      const patchChanged = unintendedChanges(before, patched, "agent");
      const sidecarAfterPatch = patched.template?.containers?.find(
        (c) => c.name === "app-patch-spiffe-proxy",
      );
      const patchResetContainers = sim.counters.snapshot().containerApps.containersReset;
      ctx.log(
        `PATCH: ${patchResetContainers} container(s) reset to ${PLACEHOLDER_IMAGE}; unintended changes: ${patchChanged.join(", ") || "none"}`,
      );

      ctx.log("app-put: full-spec PUT built from GET + listSecrets, one env var changed");
      const putBefore = await apps.get(RG, "app-put");
      const secrets = (await apps.listSecrets(RG, "app-put")).value ?? [];
      const envSpec = structuredClone(putBefore);
      envSpec.configuration = {
        ...envSpec.configuration,
        secrets: secrets.map((s) =>
          s.keyVaultUrl
            ? { name: s.name, keyVaultUrl: s.keyVaultUrl, identity: s.identity }
            : { name: s.name, value: s.value },
        ),
      };
      if (envSpec.template) {
        delete envSpec.template.revisionSuffix;
        const a = envSpec.template.containers?.find((c) => c.name === "agent");
        if (a) a.env = (a.env ?? []).map((e) => (e.name === "LOG_LEVEL" ? { ...e, value: "debug" } : e));
      }
      const afterEnvPut = await apps
        .createOrUpdate(RG, "app-put", envSpec)
        .pollUntilDone({ abortSignal: ctx.signal });
      await waitReady(client, "app-put", ctx.signal);
      const envPutChanged = unintendedChanges(putBefore, afterEnvPut, "agent");

      ctx.log("app-put: the product's re-attest transform (new token, unique suffix) as a full-spec PUT");
      const reBefore = await apps.get(RG, "app-put");
      const reSpec = buildReattestSpec({
        app: reBefore,
        secrets: (await apps.listSecrets(RG, "app-put")).value ?? [],
        joinToken: "second-token",
        runId: "partial-update-scenario",
      });
      const afterReattest = await apps
        .createOrUpdate(RG, "app-put", reSpec)
        .pollUntilDone({ abortSignal: ctx.signal });
      await waitReady(client, "app-put", ctx.signal);
      const reattestChanged = unintendedChanges(reBefore, afterReattest, undefined);
      const tokenNow = (await apps.listSecrets(RG, "app-put")).value?.find(
        (s) => s.name === "spire-join-token",
      )?.value;
      const putResetContainers = envPutChanged.length + reattestChanged.length;
      const counters = sim.counters.snapshot();
      ctx.log(
        `PUTs: unintended changes: ${[...envPutChanged, ...reattestChanged].join(", ") || "none"}; token applied: ${tokenNow === "second-token"}`,
      );

      return {
        patchResetContainers,
        putResetContainers,
        sidecarImageAfterPatch: sidecarAfterPatch?.image ?? null,
        patchUnintendedChanges: patchChanged,
        putTokenApplied: tokenNow === "second-token",
        revisionsCreated: counters.containerApps.revisionsCreated,
        patches: counters.containerApps.patches,
        puts: counters.containerApps.puts,
        seconds: seconds(Date.now() - started),
        pass:
          patchResetContainers >= 1 &&
          sidecarAfterPatch?.image === PLACEHOLDER_IMAGE &&
          putResetContainers === 0 &&
          tokenNow === "second-token" &&
          afterReattest.latestRevisionName === `app-put--${reSpec.template?.revisionSuffix}`,
      };
    } finally {
      await sim.stop();
    }
  },
};
