/** The JSON ARM returns for apps, revisions and replicas. */
import { asArray, asObject, asString, clone, type JsonObject } from "../json.js";
import type { AppRecord, ReplicaRecord, RevisionRecord } from "./records.js";
import { redactConfiguration, withTemplateDefaults } from "./spec.js";

export function appId(app: Pick<AppRecord, "subscriptionId" | "resourceGroup" | "name">): string {
  return `/subscriptions/${app.subscriptionId}/resourceGroups/${app.resourceGroup}/providers/Microsoft.App/containerApps/${app.name}`;
}

function hasIngress(app: AppRecord): boolean {
  const configuration = app.desired.properties.configuration;
  return typeof configuration === "object" && configuration !== null && !Array.isArray(configuration)
    ? typeof configuration.ingress === "object" && configuration.ingress !== null
    : false;
}

function fqdn(app: AppRecord, revision?: string): string {
  return `${revision ?? app.name}.internal.sandbox-env.${app.desired.location.replace(/\s+/g, "").toLowerCase()}.azurecontainerapps.io`;
}

/** The app as GET shows it: desired spec with defaults, state, and secret names without values. */
export function appView(app: AppRecord): JsonObject {
  const props = clone(app.desired.properties);
  const configuration =
    typeof props.configuration === "object" &&
    props.configuration !== null &&
    !Array.isArray(props.configuration)
      ? props.configuration
      : {};
  const template =
    typeof props.template === "object" && props.template !== null && !Array.isArray(props.template)
      ? props.template
      : {};
  const envId = (props.environmentId ?? props.managedEnvironmentId ?? null) as string | null;
  const anyReady = app.revisions.some((r) => r.active && r.runningState === "Running");
  const view: JsonObject = {
    id: appId(app),
    name: app.name,
    type: "Microsoft.App/containerApps",
    location: app.desired.location,
    systemData: {
      createdBy: "sandbox@spire-autopilot.test",
      createdByType: "User",
      createdAt: app.createdAt.toISOString(),
      lastModifiedBy: "sandbox@spire-autopilot.test",
      lastModifiedByType: "User",
      lastModifiedAt: app.modifiedAt.toISOString(),
    },
    properties: {
      ...props,
      provisioningState: app.provisioningState,
      runningStatus: anyReady ? "Running" : "Progressing",
      managedEnvironmentId: envId,
      environmentId: envId,
      workloadProfileName: (props.workloadProfileName as string | undefined) ?? "Consumption",
      outboundIpAddresses: ["20.1.2.3"],
      latestRevisionName: app.latestRevisionName ?? "",
      latestReadyRevisionName: app.latestReadyRevisionName ?? "",
      latestRevisionFqdn: hasIngress(app) && app.latestRevisionName ? fqdn(app, app.latestRevisionName) : "",
      customDomainVerificationId: "0000000000000000000000000000000000000000000000000000000000000000",
      configuration: {
        activeRevisionsMode: "Single",
        maxInactiveRevisions: 100,
        ...(redactConfiguration(configuration) ?? {}),
      },
      template: withTemplateDefaults(template),
      eventStreamEndpoint: `https://sandbox.azurecontainerapps.dev${appId(app)}/eventstream`,
    },
  };
  if (app.desired.tags) view.tags = clone(app.desired.tags);
  if (app.desired.identity) view.identity = clone(app.desired.identity);
  if (app.desired.kind) view.kind = app.desired.kind;
  if (app.desired.managedBy) view.managedBy = app.desired.managedBy;
  if (app.desired.extendedLocation) view.extendedLocation = clone(app.desired.extendedLocation);
  return view;
}

/**
 * Each revision's share of ingress traffic. Single mode: the latest ready revision takes it all.
 * Multiple mode: configuration.ingress.traffic decides ([{revisionName | latestRevision, weight,
 * label}]; latestRevision is the latest ready revision), and without it the latest takes all.
 */
export function trafficWeights(app: AppRecord): Map<string, number> {
  const weights = new Map<string, number>();
  const latest = app.latestReadyRevisionName || app.latestRevisionName;
  const configuration = asObject(app.desired.properties.configuration);
  const multiple = asString(configuration?.activeRevisionsMode)?.toLowerCase() === "multiple";
  const traffic = asArray(asObject(configuration?.ingress)?.traffic) ?? [];
  if (!multiple || traffic.length === 0) {
    if (latest) weights.set(latest, 100);
    return weights;
  }
  for (const raw of traffic) {
    const t = asObject(raw);
    if (!t) continue;
    const target = asString(t.revisionName) || (t.latestRevision === true ? latest : undefined);
    const weight = typeof t.weight === "number" ? t.weight : 0;
    if (target) weights.set(target, (weights.get(target) ?? 0) + weight);
  }
  return weights;
}

export function revisionView(app: AppRecord, rev: RevisionRecord): JsonObject {
  const running = rev.replicas.filter((r) => !r.stopped).length;
  return {
    id: `${appId(app)}/revisions/${rev.name}`,
    name: rev.name,
    type: "Microsoft.App/containerApps/revisions",
    properties: {
      createdTime: rev.createdTime.toISOString(),
      lastActiveTime: (rev.lastActiveTime ?? rev.createdTime).toISOString(),
      fqdn: hasIngress(app) ? fqdn(app, rev.name) : "",
      template: clone(rev.template),
      active: rev.active,
      replicas: running,
      trafficWeight: rev.active ? (trafficWeights(app).get(rev.name) ?? 0) : 0,
      provisioningError: rev.provisioningError ?? null,
      healthState: rev.healthState,
      provisioningState: rev.provisioningState,
      runningState: rev.runningState,
    },
  };
}

export function replicaView(app: AppRecord, rev: RevisionRecord, replica: ReplicaRecord): JsonObject {
  const allRunning = replica.containers.every((c) => c.state === "Running");
  return {
    id: `${appId(app)}/revisions/${rev.name}/replicas/${replica.name}`,
    name: replica.name,
    type: "Microsoft.App/containerApps/revisions/replicas",
    properties: {
      createdTime: replica.createdTime.toISOString(),
      runningState: replica.stopped ? "NotRunning" : allRunning ? "Running" : "NotRunning",
      runningStateDetails: replica.stopped
        ? "Replica stopped"
        : `${replica.containers.filter((c) => c.ready).length}/${replica.containers.length} containers ready.`,
      containers: replica.containers.map((c) => ({
        name: c.view.name,
        containerId: c.containerId,
        ready: c.ready,
        started: c.started,
        restartCount: c.restartCount,
        runningState: c.state,
        runningStateDetails: c.stateDetails,
        logStreamEndpoint: `https://sandbox.azurecontainerapps.dev${appId(app)}/revisions/${rev.name}/replicas/${replica.name}/logstream?container=${c.view.name}`,
        execEndpoint: `wss://sandbox.azurecontainerapps.dev${appId(app)}/revisions/${rev.name}/replicas/${replica.name}/exec?container=${c.view.name}`,
      })),
      initContainers: [],
    },
  };
}
