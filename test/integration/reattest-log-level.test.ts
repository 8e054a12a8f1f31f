/**
 * A re-attestation against a real spire-server running at log_level INFO, as many deployments do:
 * its log (followed into the Logs API's Syslog) shows the agent attesting but never "Signed X509
 * SVID", a DEBUG line. Verification must say the signal is hidden and let the run succeed on the
 * attestation, promptly, instead of waiting out its 300 s and failing a healthy run.
 */
import { getuid } from "node:process";
import type { ContainerApp, ContainerAppsAPIClient } from "@azure/arm-appcontainers";
import { SecretClient } from "@azure/keyvault-secrets";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REATTEST_ACTIVITIES } from "../../activities/reattest.js";
import {
  REATTEST_ORCHESTRATION,
  type ReattestInput,
  type ReattestOutput,
  reattestInstanceId,
  reattestOrchestrator,
} from "../../orchestrations/reattest.js";
import { SandboxTokenCredential } from "../../sandbox/azure/credential.js";
import { type AzureSimulator, FAST_PROFILE, startAzureSimulator } from "../../sandbox/azure/index.js";
import { SpireSidecarRuntime } from "../../sandbox/azure/runtime/spire-sidecar.js";
import { type AzureServices, startAzureServices } from "../../sandbox/emulators/index.js";
import { ReplayHarness } from "../../sandbox/host/testing.js";
import { type SpireServerHandle, startSpireServer } from "../../sandbox/spire/index.js";
import { ensureSpire } from "../../scripts/install-spire.js";
import { loadConfig } from "../../shared/config.js";
import type { LogSink } from "../../shared/logging.js";
import { createServices, type Services } from "../../shared/services.js";
import { RG, waitForReadyRevision } from "./azure-fixtures.js";

const TD = "loglevel.sandbox.test";
const BP = "0b1c2d3e-4f50-4a61-8b72-93a4b5c6d7e8";
const AID = "a0000000-0000-4000-8000-0000000000a1";
const APP = "app-info";

let server: SpireServerHandle;
let azure: AzureServices;
let sim: AzureSimulator;
let arm: ContainerAppsAPIClient;
let services: Services;
let bundleUrl: string;
const sink: LogSink = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

function spec(token: string): ContainerApp {
  return {
    location: "westeurope",
    tags: { "spire-autopilot": "managed", "spiffe-blueprint-oid": BP, "spiffe-agent-oid": AID },
    environmentId: `/subscriptions/${sim.subscriptionId}/resourceGroups/${RG}/providers/Microsoft.App/managedEnvironments/env-sandbox`,
    configuration: {
      activeRevisionsMode: "Single",
      secrets: [
        { name: "join-token", value: token },
        { name: "trust-bundle", keyVaultUrl: bundleUrl, identity: "system" },
      ],
    },
    template: {
      revisionSuffix: "v1",
      containers: [
        { name: "agent", image: "example.azurecr.io/agent:1" },
        {
          name: `${APP}-spiffe-proxy`,
          image: "example.azurecr.io/spiffe-proxy:1",
          env: [
            { name: "CONTAINER_MODE", value: "agent-proxy" },
            { name: "JOIN_TOKEN", secretRef: "join-token" },
            { name: "SPIRE_TRUST_BUNDLE", secretRef: "trust-bundle" },
            { name: "SPIRE_SERVER_ADDR", value: "10.0.0.4:8081" },
          ],
        },
      ],
      scale: { minReplicas: 1, maxReplicas: 1 },
    },
  };
}

beforeAll(async () => {
  const bins = await ensureSpire();
  server = await startSpireServer({ trustDomain: TD, bins, logLevel: "INFO" });
  try {
    azure = await startAzureServices({ startAlerts: false });
    await azure.followSpireServer(server.logFile, { processId: server.pid });
    const kv = azure.keyVault;
    if (!kv) throw new Error("Key Vault did not start");
    const secrets = new SecretClient(kv.vaultUrl, new SandboxTokenCredential(), {
      tlsOptions: { ca: azure.tls.caPem },
      disableChallengeResourceVerification: true,
    });
    bundleUrl = (await secrets.setSecret("spire-trust-bundle", await server.bundlePem())).properties.id ?? "";
    const svc = azure;
    sim = await startAzureSimulator({
      profile: { ...FAST_PROFILE, crashBackoffInitialMs: 200 },
      runtime: new SpireSidecarRuntime({
        server: { address: server.bindAddress, port: server.port, trustDomain: TD },
        bins,
      }),
      keyVault: (s) => svc.resolveKeyVaultSecret(s),
    });
    arm = sim.clients().containerApps;
    const env = {
      ...sim.settings(),
      ...azure.settings,
      SPIRE_TRUST_DOMAIN: TD,
      SPIRE_SERVER_SOCKET: server.socketPath,
      APPS_RESOURCE_GROUP: RG,
    };
    services = createServices(loadConfig(env), { env, logSink: sink });

    const generated = await server.cli([
      "token",
      "generate",
      "-spiffeID",
      `spiffe://${TD}/agent/${APP}`,
      "-output",
      "json",
    ]);
    if (generated.code !== 0) throw new Error(`token generate failed: ${generated.stderr}`);
    const token = (JSON.parse(generated.stdout) as { value: string }).value;
    const entry = await server.cli([
      "entry",
      "create",
      "-parentID",
      `spiffe://${TD}/agent/${APP}`,
      "-spiffeID",
      `spiffe://${TD}/ests/bp/${BP}/aid/${AID}`,
      "-selector",
      `unix:uid:${getuid?.() ?? 0}`,
    ]);
    if (entry.code !== 0) throw new Error(`entry create failed: ${entry.stderr}`);
    await arm.containerApps.createOrUpdate(RG, APP, spec(token)).pollUntilDone();
    await waitForReadyRevision(arm, APP, 20_000);
  } catch (err) {
    await sim?.stop().catch(() => undefined);
    await azure?.stop().catch(() => undefined);
    await server.dispose().catch(() => undefined);
    throw err;
  }
}, 10 * 60_000);

afterAll(async () => {
  await services?.close().catch(() => undefined);
  await sim?.stop().catch(() => undefined);
  await azure?.stop().catch(() => undefined);
  await server?.dispose().catch(() => undefined);
});

describe("re-attestation with the SPIRE server at log_level INFO", () => {
  it("reports the SVID signal as hidden by the log level and succeeds on attestation, promptly", async () => {
    const activities = Object.fromEntries(
      Object.entries(REATTEST_ACTIVITIES).map(([name, h]) => [
        name,
        (input: unknown) => h(input, services, sink),
      ]),
    );
    const harness = new ReplayHarness({
      orchestrations: { [REATTEST_ORCHESTRATION]: reattestOrchestrator },
      activities,
      timeScale: 1,
    });
    try {
      const input: ReattestInput = {
        app: APP,
        trigger: "http",
        reason: "log level test",
        // The product's own verify timeout: the run must not need it.
        timing: {
          firstPollSeconds: 1,
          maxPollSeconds: 2,
          revisionTimeoutSeconds: 60,
          verifyTimeoutSeconds: 300,
        },
      };
      const t0 = Date.now();
      const status = await harness.run(REATTEST_ORCHESTRATION, input, reattestInstanceId(APP), 200_000);
      const seconds = Math.round((Date.now() - t0) / 1000);
      const out = status.output as ReattestOutput;
      console.log(
        JSON.stringify({
          figures: "reattest at server log_level INFO",
          seconds,
          stepSeconds: out.stepSeconds,
          checks: out.checks,
        }),
      );
      expect(status.runtimeStatus).toBe("Completed");
      expect(out).toMatchObject({
        outcome: "succeeded",
        checks: {
          agentAttested: true,
          svidSigned: "unknown",
          svidNote: expect.stringMatching(/log level hides workload signings.*log_level = "DEBUG"/),
        },
      });
      expect(out.stepSeconds.verify ?? 999).toBeLessThan(60);
    } finally {
      await harness.dispose();
    }
  }, 240_000);
});
