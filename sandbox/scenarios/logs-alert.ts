/**
 * logs-alert: real spire-agents in simulated Container Apps (trust bundle from a Key Vault
 * reference, join token from a secret), their console output and the real spire-server's log
 * flowing into the sandbox's Log Analytics; one replica is restarted, so its agent retries the
 * spent join token and crash-loops; the product's alert rule (shared/kql/alert-rules.json) must
 * call the webhook for that app, once, and resolve after the app is re-attested by hand (a new
 * token and a new revision, what the product's re-attest workflow does).
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { ContainerApp, ContainerAppsAPIClient } from "@azure/arm-appcontainers";
import { SecretClient } from "@azure/keyvault-secrets";
import { ensureSpire } from "../../scripts/install-spire.js";
import { loadKql } from "../../shared/kql/index.js";
import type { CommonAlertPayload } from "../azure/alerts/engine.js";
import { SandboxTokenCredential } from "../azure/credential.js";
import { FAST_PROFILE } from "../azure/index.js";
import { scaledClock } from "../azure/logs/clock.js";
import { SpireSidecarRuntime } from "../azure/runtime/spire-sidecar.js";
import { type AzureSimulator, startAzureSimulator } from "../azure/simulator.js";
import { type AzureServices, startAzureServices } from "../emulators/index.js";
import { type SpireServerHandle, startSpireServer } from "../spire/index.js";
import type { Scenario } from "./types.js";

const TD = "logs-alert.sandbox.test";
const RG = "rg-agents";
const APPS = ["agent-1", "agent-2"];
const RESTARTED = "agent-1";
const FUNCTION_KEY = "logs-alert-scenario-key";
/** Sandbox clock speed: the rule's 1-minute frequency is 6 s real, its 5-minute window 30 s real. */
const TIME_SCALE = 10;

interface WebhookCall {
  at: number;
  payload: CommonAlertPayload;
}

async function bounded<T>(
  what: string,
  timeoutMs: number,
  signal: AbortSignal,
  check: () => Promise<T | undefined> | T | undefined,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (signal.aborted) throw new Error(`aborted while waiting for ${what}`);
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function appSpec(
  sim: AzureSimulator,
  app: string,
  joinToken: string,
  bundleUrl: string,
  suffix: string,
): ContainerApp {
  return {
    location: "westeurope",
    tags: { "spire-autopilot": "managed" },
    environmentId: `/subscriptions/${sim.subscriptionId}/resourceGroups/${RG}/providers/Microsoft.App/managedEnvironments/env-sandbox`,
    configuration: {
      activeRevisionsMode: "Single",
      secrets: [
        { name: "join-token", value: joinToken },
        // A pinned Key Vault reference, resolved by the platform with the app's identity.
        { name: "trust-bundle", keyVaultUrl: bundleUrl, identity: "system" },
      ],
    },
    template: {
      revisionSuffix: suffix,
      containers: [
        { name: "agent", image: "example.azurecr.io/agent:1", env: [{ name: "MODE", value: "agent" }] },
        {
          name: `${app}-spiffe-proxy`,
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

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export const logsAlert: Scenario = {
  name: "logs-alert",
  description:
    "Run real agents in simulated Container Apps, restart one replica (its agent reuses the spent join token and crash-loops), time the alert webhook call, re-attest, and wait for the alert to resolve.",
  timeoutSeconds: 300,
  async run(ctx) {
    const calls: WebhookCall[] = [];
    let server: SpireServerHandle | undefined;
    let services: AzureServices | undefined;
    let sim: AzureSimulator | undefined;
    let receiver: Server | undefined;
    try {
      const bins = await ensureSpire();
      server = await startSpireServer({ trustDomain: TD, bins });
      ctx.log(`spire-server on 127.0.0.1:${server.port} (DEBUG JSON log)`);

      services = await startAzureServices({
        clock: scaledClock(TIME_SCALE),
        stateDir: join(ctx.workDir, "azure"),
        log: ctx.log,
      });
      await services.followSpireServer(server.logFile, { processId: server.pid });

      receiver = createServer((req, res) => {
        void readBody(req).then((text) => {
          const url = new URL(req.url ?? "/", "http://localhost");
          if (url.searchParams.get("code") !== FUNCTION_KEY) {
            res.writeHead(401).end();
            return;
          }
          calls.push({ at: Date.now(), payload: JSON.parse(text) as CommonAlertPayload });
          res.writeHead(200).end();
        });
      });
      await new Promise<void>((r) => receiver?.listen(0, "127.0.0.1", r));
      const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/api/alerts?code=${FUNCTION_KEY}`;
      services.alerts.setReceivers([
        { name: "functions-host", serviceUri: hookUrl, auth: { kind: "function-key" } },
      ]);

      const kv = services.keyVault;
      if (!kv) throw new Error("Key Vault did not start");
      const secrets = new SecretClient(kv.vaultUrl, new SandboxTokenCredential(), {
        tlsOptions: { ca: services.tls.caPem },
        disableChallengeResourceVerification: true,
      });
      const bundle = await secrets.setSecret("spire-trust-bundle", await server.bundlePem(), {
        contentType: "application/x-pem-file",
      });
      const bundleUrl = bundle.properties.id ?? "";

      const svc = services;
      sim = await startAzureSimulator({
        profile: {
          ...FAST_PROFILE,
          sidecarAgentStartTimeoutMs: 3_000,
          crashBackoffInitialMs: 500,
          crashBackoffMaxMs: 4_000,
        },
        runtime: new SpireSidecarRuntime({
          server: { address: server.bindAddress, port: server.port, trustDomain: TD },
          bins,
        }),
        keyVault: (s) => svc.resolveKeyVaultSecret(s),
        log: ctx.log,
      });
      services.forwardSimulatorEvents(sim.events);
      const arm: ContainerAppsAPIClient = sim.clients().containerApps;

      const token = async (app: string) => {
        const res = await (server as SpireServerHandle).cli([
          "token",
          "generate",
          "-spiffeID",
          `spiffe://${TD}/agent/${app}`,
          "-output",
          "json",
        ]);
        if (res.code !== 0) throw new Error(`token generate failed: ${res.stderr}`);
        return (JSON.parse(res.stdout) as { value: string }).value;
      };
      for (const app of APPS) {
        const entry = await server.cli([
          "entry",
          "create",
          "-parentID",
          `spiffe://${TD}/agent/${app}`,
          "-spiffeID",
          `spiffe://${TD}/workload/${app}`,
          "-selector",
          "unix:uid:0",
        ]);
        if (entry.code !== 0) throw new Error(`entry create failed: ${entry.stderr}`);
        await arm.containerApps
          .createOrUpdate(RG, app, appSpec(sim, app, await token(app), bundleUrl, "v1"))
          .pollUntilDone();
      }
      ctx.log(
        `deployed ${APPS.join(", ")}; waiting for their agents to attest (seen in ContainerAppConsoleLogs)`,
      );
      const logs = services.logs;
      await bounded("every agent to attest", 60_000, ctx.signal, () => {
        const t = logs.query(
          'ContainerAppConsoleLogs | where Log has "Node attestation was successful" | distinct ContainerAppName',
        );
        return t.rows.length === APPS.length ? true : undefined;
      });
      const signed = await bounded("the workload SVIDs to be signed (Syslog)", 60_000, ctx.signal, () => {
        const t = logs.query(`${loadKql("workload-svid-signed")}\n| where spiffe_id has "/workload/"`);
        return t.rows.length === APPS.length ? t.rows.length : undefined;
      });
      ctx.log(`${signed} workload SVIDs signed; restarting one replica of ${RESTARTED}`);

      const restartedAt = Date.now();
      const oldReplica = sim.containerApps.restartReplica(RG, RESTARTED);
      const fired = await bounded(`the alert webhook call for ${RESTARTED}`, 120_000, ctx.signal, () =>
        calls.find((c) => c.payload.data.essentials.monitorCondition === "Fired"),
      );
      const alertFiredSeconds = Math.round((fired.at - restartedAt) / 100) / 10;
      const firedApps =
        fired.payload.data.alertContext.condition.allOf[0]?.dimensions.map((d) => d.value) ?? [];
      ctx.log(
        `replica ${oldReplica} restarted; alert fired after ${alertFiredSeconds} s for ${firedApps.join(", ")}`,
      );

      // Re-attest by hand: a fresh token in the app's secret, and a new revision to apply it.
      await arm.containerApps
        .createOrUpdate(RG, RESTARTED, appSpec(sim, RESTARTED, await token(RESTARTED), bundleUrl, "v2"))
        .pollUntilDone();
      ctx.log(`${RESTARTED} re-attested with a new token and revision; waiting for the alert to resolve`);
      const resolvedCall = await bounded("the Resolved webhook call", 150_000, ctx.signal, () =>
        calls.find((c) => c.payload.data.essentials.monitorCondition === "Resolved"),
      ).catch((err: unknown) => {
        ctx.log((err as Error).message);
        return undefined;
      });
      await services.alerts.idle();

      const firedCalls = calls.filter((c) => c.payload.data.essentials.monitorCondition === "Fired");
      const alertsFired = new Set(firedCalls.map((c) => c.payload.data.essentials.alertId)).size;
      const appsAlerted = [
        ...new Set(
          firedCalls.flatMap(
            (c) => c.payload.data.alertContext.condition.allOf[0]?.dimensions.map((d) => d.value) ?? [],
          ),
        ),
      ];
      const resolved =
        resolvedCall !== undefined &&
        resolvedCall.payload.data.essentials.alertId === fired.payload.data.essentials.alertId;
      const rowsIngested = services.logs.rowsIngested;
      return {
        rowsIngested,
        alertFiredSeconds,
        alertsFired,
        resolved,
        appsAlerted,
        resolvedSeconds: resolvedCall ? Math.round((resolvedCall.at - restartedAt) / 100) / 10 : null,
        timeScale: TIME_SCALE,
        pass:
          alertsFired === 1 &&
          appsAlerted.length === 1 &&
          appsAlerted[0] === RESTARTED &&
          resolved &&
          rowsIngested > 0,
      };
    } finally {
      await sim?.stop().catch(() => undefined);
      await services?.stop().catch(() => undefined);
      await server?.dispose().catch(() => undefined);
      await new Promise<void>((r) => (receiver ? receiver.close(() => r()) : r()));
    }
  },
};
