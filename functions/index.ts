// The one place that registers every function of the app (HTTP, timer, orchestration, activity).
import { app } from "@azure/functions";
import * as df from "durable-functions";
import { registerBundleActivities } from "../activities/bundle.js";
import { registerDeployActivities } from "../activities/deploy.js";
import { registerReattestActivities } from "../activities/reattest.js";
import { DEPLOY_ORCHESTRATION, deployOrchestrator } from "../orchestrations/deploy.js";
import { REATTEST_ORCHESTRATION, reattestOrchestrator } from "../orchestrations/reattest.js";
import { rotateBundleOrchestrator } from "../orchestrations/rotateBundle.js";
import { ROTATE_BUNDLE_ORCHESTRATION } from "../orchestrations/rotateBundle.start.js";
import { loadConfig } from "../shared/config.js";
import { discoverApps } from "../shared/containerapp/discover.js";
import { lookupApp } from "../shared/containerapp/lookup.js";
import { keyVaultEventScope } from "../shared/keyVaultEvents.js";
import { getServices } from "../shared/services.js";
import { readLastRotation } from "../shared/trust/ledger.js";
import { summarizeServerBundle } from "../shared/trust/summary.js";
import { readVaultBundle } from "../shared/trust/vault.js";
import { createWebhookAuthenticator } from "../shared/webhookAuth.js";
import { alertsHttpHandler } from "./alerts.js";
import { bundleRotateHttpHandler, bundleStatusHttpHandler, bundleTimerHandler } from "./bundle.js";
import { deployHttpHandler } from "./deploy.js";
import { healthHandler } from "./health.js";
import { keyVaultEventsHandler } from "./keyVaultEvents.js";
import { operationsHttpHandler } from "./operations.js";
import { reattestHttpHandler } from "./reattest.js";

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

// ---- trust material: Key Vault's events on the bundle and admin SVID secrets nudge a rotation.
// Event Grid calls /runtime/webhooks/eventgrid?functionName=keyVaultEvents&code=<eventgrid_extension>.
df.app.client.eventGrid("keyVaultEvents", {
  handler: keyVaultEventsHandler({ scope: keyVaultEventScope(config) }),
});

// ---- trust bundle rotation
df.app.orchestration(ROTATE_BUNDLE_ORCHESTRATION, rotateBundleOrchestrator);
registerBundleActivities();

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
    readServer: async () => summarizeServerBundle(await (await getServices(config).spire()).getBundle()),
    readVault: () => readVaultBundle(getServices(config).secrets, config.keyVault.trustBundleSecretName),
    readLastRotation: async () => readLastRotation(await getServices(config).fleetTable()),
  }),
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
