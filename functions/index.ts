// The one place that registers every function of the app (HTTP, timer, orchestration, activity).
// Telemetry first: the Azure Monitor distro must start before the modules it instruments load.
import "../shared/telemetry/setup.js";
import { app } from "@azure/functions";
import * as df from "durable-functions";
import { registerAdminSvidActivities } from "../activities/admin-svid.js";
import { registerBundleActivities } from "../activities/bundle.js";
import { registerDeployActivities } from "../activities/deploy.js";
import { registerReattestActivities } from "../activities/reattest.js";
import { registerSweepActivities } from "../activities/sweep.js";
import { DEPLOY_ORCHESTRATION, deployOrchestrator } from "../orchestrations/deploy.js";
import { HEALTH_SWEEP_ORCHESTRATION, healthSweepOrchestrator } from "../orchestrations/healthSweep.js";
import { REATTEST_ORCHESTRATION, reattestOrchestrator } from "../orchestrations/reattest.js";
import { rotateBundleOrchestrator } from "../orchestrations/rotateBundle.js";
import { ROTATE_BUNDLE_ORCHESTRATION } from "../orchestrations/rotateBundle.start.js";
import { loadConfig } from "../shared/config.js";
import { discoverApps } from "../shared/containerapp/discover.js";
import { lookupApp } from "../shared/containerapp/lookup.js";
import { keyVaultEventScope } from "../shared/keyVaultEvents.js";
import { getServices } from "../shared/services.js";
import { adminSvidStatus, checkAdminClient } from "../shared/trust/admin-status.js";
import { readAdminSecret } from "../shared/trust/admin-vault.js";
import { lastBundleWrite, readLastRotation } from "../shared/trust/ledger.js";
import { readServerBundle } from "../shared/trust/server-bundle.js";
import { summarizeServerBundle } from "../shared/trust/summary.js";
import { readVaultBundle } from "../shared/trust/vault.js";
import { createWebhookAuthenticator } from "../shared/webhookAuth.js";
import { alertsHttpHandler } from "./alerts.js";
import { bundleRotateHttpHandler, bundleStatusHttpHandler, bundleTimerHandler } from "./bundle.js";
import { deployHttpHandler } from "./deploy.js";
import { fleetAppHttpHandler, fleetHttpHandler } from "./fleet.js";
import { productFleetDeps } from "./fleetDeps.js";
import { healthHandler } from "./health.js";
import { housekeepingTimerHandler } from "./housekeeping.js";
import { keyVaultEventsHandler } from "./keyVaultEvents.js";
import { operationsHttpHandler } from "./operations.js";
import { operationsListHttpHandler } from "./operationsList.js";
import { reattestHttpHandler } from "./reattest.js";
import { statusPageHttpHandler } from "./statusPage.js";
import { sweepHttpHandler, sweepTimerHandler } from "./sweep.js";

// Validate every setting before registering anything: a misconfigured app fails at load with one
// error naming every problem, rather than at the first request or timer.
const config = loadConfig();

// One composition root: triggers reach Azure through the same Services the activities use, built
// on the first request (loading makes no network call).
const lookup = (name: string) => lookupApp(getServices(config).containerApps, config, name);

app.http("health", {
  route: "health",
  methods: ["GET"],
  authLevel: "anonymous",
  handler: healthHandler(config),
});

// ---- re-attestation
df.app.orchestration(REATTEST_ORCHESTRATION, reattestOrchestrator);
registerReattestActivities();

df.app.client.http("reattestApp", {
  route: "apps/{app}/reattest",
  methods: ["POST"],
  authLevel: "function",
  handler: reattestHttpHandler({ config, lookupApp: lookup }),
});

const alertAuth = config.alerts.auth;
df.app.client.http("alerts", {
  route: "alerts",
  methods: ["POST"],
  // With Entra auth the action group sends a bearer token instead of a function key.
  authLevel: alertAuth.mode === "entra" ? "anonymous" : "function",
  handler: alertsHttpHandler({
    config,
    lookupApp: lookup,
    authenticate:
      alertAuth.mode === "entra"
        ? createWebhookAuthenticator({
            tenantId: alertAuth.tenantId,
            audience: alertAuth.audience,
            authorityHost: config.endpoints.authorityHost ?? "https://login.microsoftonline.com",
            authorityCa: config.endpoints.authorityCa,
          })
        : undefined,
  }),
});

df.app.client.http("operation", {
  route: "operations/{id}",
  methods: ["GET"],
  authLevel: "function",
  handler: operationsHttpHandler(),
});

df.app.client.http("operations", {
  route: "operations",
  methods: ["GET"],
  authLevel: "function",
  handler: operationsListHttpHandler(),
});

// ---- trust material: Key Vault's events on the bundle and admin SVID secrets nudge a rotation.
// Event Grid calls /runtime/webhooks/eventgrid?functionName=keyVaultEvents&code=<eventgrid_extension>.
df.app.client.eventGrid("keyVaultEvents", {
  handler: keyVaultEventsHandler({
    scope: keyVaultEventScope(config),
    lastOwnWrite: async (secret) =>
      secret === config.keyVault.trustBundleSecretName
        ? lastBundleWrite(await getServices(config).fleetTable())
        : undefined,
  }),
});

// ---- trust bundle rotation
df.app.orchestration(ROTATE_BUNDLE_ORCHESTRATION, rotateBundleOrchestrator);
registerBundleActivities();
registerAdminSvidActivities();

df.app.client.timer("bundleRotationTimer", {
  // The validated setting, not "%BUNDLE_ROTATION_SCHEDULE%": the host resolves %NAME% from app
  // settings only and fails the function when one is unset, so the default (every 15 minutes)
  // would never apply.
  schedule: config.schedules.bundleRotation,
  handler: bundleTimerHandler(),
});

df.app.client.http("bundleRotate", {
  route: "bundle/rotate",
  methods: ["POST"],
  authLevel: "function",
  handler: bundleRotateHttpHandler(),
});

app.http("bundleStatus", {
  route: "bundle",
  methods: ["GET"],
  authLevel: "function",
  handler: bundleStatusHttpHandler({
    secretName: config.keyVault.trustBundleSecretName,
    readServer: async () =>
      summarizeServerBundle(
        // A status answer never queues a run-command on the VM: it says the API's error instead.
        await readServerBundle(getServices(config), { vmFallback: false }),
      ),
    readVault: () => readVaultBundle(getServices(config).secrets, config.keyVault.trustBundleSecretName),
    readLastRotation: async () => readLastRotation(await getServices(config).fleetTable()),
    readAdminSvid: async () => {
      const grpc = config.spire.api === "grpc" ? config.spire.grpc : undefined;
      const read =
        grpc?.transport === "tcp"
          ? await readAdminSecret(getServices(config).secrets, grpc.adminSvidSecretName)
          : undefined;
      const status = adminSvidStatus(config, read, new Date());
      if (!status.adminSvid) return status;
      const services = getServices(config);
      const check = await checkAdminClient(() => services.spire(), config.spire.admin.spiffeId);
      return { ...status, adminSvid: { ...status.adminSvid, clientCheck: check } };
    },
  }),
});

// ---- operator surface: the fleet at a glance (the sweep writes the rows the reader reads)
const fleetDeps = productFleetDeps(config);

df.app.client.http("fleet", {
  route: "fleet",
  methods: ["GET"],
  authLevel: "function",
  handler: fleetHttpHandler(fleetDeps),
});

df.app.client.http("fleetApp", {
  route: "fleet/{app}",
  methods: ["GET"],
  authLevel: "function",
  handler: fleetAppHttpHandler(fleetDeps),
});

app.http("statusPage", {
  route: "status",
  methods: ["GET"],
  authLevel: "function",
  handler: statusPageHttpHandler(),
});

// ---- housekeeping: finished durable history past the retention is purged; the ledger stays.
df.app.client.timer("housekeepingTimer", {
  schedule: config.schedules.housekeeping,
  handler: housekeepingTimerHandler({ retentionDays: config.historyRetentionDays }),
});

// ---- health sweep
df.app.orchestration(HEALTH_SWEEP_ORCHESTRATION, healthSweepOrchestrator);
registerSweepActivities();

df.app.client.timer("healthSweepTimer", {
  // The validated setting, as for the bundle rotation timer above.
  schedule: config.schedules.healthSweep,
  handler: sweepTimerHandler(config),
});

df.app.client.http("sweep", {
  route: "sweep",
  methods: ["POST"],
  authLevel: "function",
  handler: sweepHttpHandler(config),
});

// ---- deploy: discover → server → trust → entries + tokens → re-attest each app (sub-orchestrations)
df.app.orchestration(DEPLOY_ORCHESTRATION, deployOrchestrator);
registerDeployActivities();

df.app.client.http("deployHttp", {
  route: "deploy",
  methods: ["POST"],
  authLevel: "function",
  handler: deployHttpHandler({
    config,
    discover: () => discoverApps(getServices(config).containerApps, config),
    listEntries: async () => (await getServices(config).spire()).listEntries({}),
  }),
});
