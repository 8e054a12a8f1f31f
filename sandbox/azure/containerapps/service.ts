/**
 * Container Apps behaviour: create/replace/patch/delete with long-running operations, revisions
 * in Single (or Multiple) mode, replicas whose containers really run through a ContainerRuntime,
 * restarts with backoff, and the fault actions on replicas and sidecar agents.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ArmError, armErrors } from "../arm/errors.js";
import { type AsyncOperation, type AsyncOperations, normalizeLocation } from "../arm/operations.js";
import type { ArmResponse } from "../arm/router.js";
import type { Counters } from "../counters.js";
import type { EventLog } from "../events.js";
import type { Faults } from "../faults.js";
import { asObject, asString, clone, isObject, type Json, type JsonObject, mergePatch } from "../json.js";
import type { LatencyProfile } from "../profiles.js";
import type { AgentProcessControl, ContainerExit, ContainerRuntime } from "../runtime/types.js";
import type { Timers } from "../timers.js";
import type { AppRecord, ContainerRecord, DesiredApp, ReplicaRecord, RevisionRecord } from "./records.js";
import {
  applyPartialUpdateReset,
  checkSecretsComplete,
  containerView,
  isSidecar,
  randomSuffix,
  readContainers,
  readSecrets,
  readVolumes,
  replicaCount,
  requestedSuffix,
  resolveEnv,
  reusedSuffixError,
  type SecretSpec,
  scaleRange,
  secretVolumeItems,
  templateIdentity,
  validateAppName,
  validateRevisionSuffix,
  validateTemplate,
  withTemplateDefaults,
} from "./spec.js";
import { appView, replicaView, revisionView } from "./views.js";

/** Resolves a Key Vault-referenced secret's value, as the app's identity would; undefined when it cannot. */
export type KeyVaultSecretResolver = (secret: {
  name: string;
  keyVaultUrl: string;
  identity: string;
}) => Promise<string | undefined>;

export interface ContainerAppsDeps {
  subscriptionId: string;
  profile(): LatencyProfile;
  timers: Timers;
  ops: AsyncOperations;
  counters: Counters;
  faults: Faults;
  events: EventLog;
  runtime: ContainerRuntime;
  /** Replica folders live under here. */
  workDir: string;
  keyVault: KeyVaultSecretResolver;
  log(message: string): void;
}

const READ_ONLY_PROPERTIES = [
  "provisioningState",
  "runningStatus",
  "latestRevisionName",
  "latestReadyRevisionName",
  "latestRevisionFqdn",
  "customDomainVerificationId",
  "outboundIpAddresses",
  "eventStreamEndpoint",
];

function hex(bytes: number): string {
  return randomBytes(bytes).toString("hex");
}

function alnum(n: number): string {
  const chars = "bcdfghjklmnpqrstvwxz2456789";
  const bytes = randomBytes(n);
  return Array.from(bytes, (b) => chars[b % chars.length]).join("");
}

function desiredFromBody(body: JsonObject, appName: string): DesiredApp {
  const location = asString(body.location);
  if (location === undefined || location.trim() === "") {
    throw new ArmError(400, "LocationRequired", "The location property is required for this definition.");
  }
  const props = asObject(body.properties);
  if (body.properties !== undefined && !props) {
    throw new ArmError(
      400,
      "InvalidRequestContent",
      "The request content was invalid: 'properties' must be an object.",
    );
  }
  const tags = body.tags;
  if (tags !== undefined && tags !== null) {
    if (!isObject(tags) || Object.values(tags).some((v) => typeof v !== "string")) {
      throw new ArmError(400, "InvalidTag", `The tags of '${appName}' must be an object of string values.`);
    }
  }
  const properties = clone(props ?? {});
  for (const key of READ_ONLY_PROPERTIES) delete properties[key];
  const desired: DesiredApp = { location, properties };
  if (isObject(tags)) desired.tags = clone(tags);
  if (isObject(body.identity)) desired.identity = clone(body.identity);
  if (typeof body.kind === "string") desired.kind = body.kind;
  if (typeof body.managedBy === "string") desired.managedBy = body.managedBy;
  if (isObject(body.extendedLocation)) desired.extendedLocation = clone(body.extendedLocation);
  return desired;
}

function desiredAsJson(d: DesiredApp): JsonObject {
  const out: JsonObject = { location: d.location, properties: clone(d.properties) };
  if (d.tags) out.tags = clone(d.tags);
  if (d.identity) out.identity = clone(d.identity);
  if (d.kind) out.kind = d.kind;
  if (d.managedBy) out.managedBy = d.managedBy;
  if (d.extendedLocation) out.extendedLocation = clone(d.extendedLocation);
  return out;
}

function templateOf(d: DesiredApp): JsonObject {
  const t = d.properties.template;
  if (!isObject(t))
    throw new ArmError(400, "InvalidParameterValue", "'properties.template' is required.", {
      target: "template",
    });
  return t;
}

function configurationOf(d: DesiredApp): JsonObject | undefined {
  const c = d.properties.configuration;
  if (c === undefined || c === null) return undefined;
  if (!isObject(c))
    throw new ArmError(400, "InvalidParameterValue", "'properties.configuration' must be an object.");
  return c;
}

function revisionsMode(d: DesiredApp): "Single" | "Multiple" {
  const mode = asString(configurationOf(d)?.activeRevisionsMode);
  return mode?.toLowerCase() === "multiple" ? "Multiple" : "Single";
}

function safeFileName(name: string): boolean {
  return /^[A-Za-z0-9._-]{1,255}$/.test(name) && name !== "." && name !== "..";
}

type Outcome =
  | { kind: "new-revision"; suffix: string }
  | { kind: "config-only" }
  | { kind: "fail"; code: string; message: string };

export class ContainerAppsService {
  private readonly apps = new Map<string, AppRecord>();

  constructor(private readonly deps: ContainerAppsDeps) {}

  private key(rg: string, name: string): string {
    return `${rg.toLowerCase()}/${name.toLowerCase()}`;
  }

  /** The app or ResourceNotFound. */
  find(rg: string, name: string): AppRecord {
    const app = this.apps.get(this.key(rg, name));
    if (!app || app.deleted) throw armErrors.resourceNotFound("Microsoft.App/containerApps", name, rg);
    return app;
  }

  tryFind(rg: string, name: string): AppRecord | undefined {
    const app = this.apps.get(this.key(rg, name));
    return app && !app.deleted ? app : undefined;
  }

  all(): AppRecord[] {
    return [...this.apps.values()].filter((a) => !a.deleted);
  }

  // -------------------------------------------------------------------------------------------
  // ARM operations

  get(rg: string, name: string): ArmResponse {
    return { status: 200, body: appView(this.find(rg, name)) };
  }

  list(rg?: string): ArmResponse {
    const apps = this.all().filter(
      (a) => rg === undefined || a.resourceGroup.toLowerCase() === rg.toLowerCase(),
    );
    return { status: 200, body: { value: apps.map(appView) } };
  }

  listSecrets(rg: string, name: string): ArmResponse {
    const app = this.find(rg, name);
    const secrets = readSecrets(configurationOf(app.desired));
    return {
      status: 200,
      body: {
        value: secrets.map((s) =>
          s.keyVaultUrl !== undefined
            ? { name: s.name, keyVaultUrl: s.keyVaultUrl, identity: s.identity ?? null }
            : { name: s.name, value: s.value ?? "" },
        ),
      },
    };
  }

  put(rg: string, name: string, body: JsonObject): ArmResponse {
    validateAppName(name);
    const existing = this.tryFind(rg, name);
    this.assertIdle(existing);
    const desired = desiredFromBody(body, name);
    if (existing && normalizeLocation(existing.desired.location) !== normalizeLocation(desired.location)) {
      throw new ArmError(
        400,
        "InvalidResourceLocation",
        `The resource '${name}' already exists in location '${existing.desired.location}' in resource group '${existing.resourceGroup}'. A resource with the same name cannot be created in location '${desired.location}'. Please select a new resource name.`,
      );
    }
    this.deps.counters.containerApps("puts");
    return this.write("PUT", rg, name, desired, existing);
  }

  patch(rg: string, name: string, body: JsonObject): ArmResponse {
    const existing = this.find(rg, name);
    this.assertIdle(existing);
    const patchBody = clone(body);
    const patchProps = asObject(patchBody.properties);
    if (patchProps) for (const key of READ_ONLY_PROPERTIES) delete patchProps[key];
    const merged = mergePatch(desiredAsJson(existing.desired), patchBody as Json);
    const desired = desiredFromBody(merged as JsonObject, name);
    const patchTemplate = asObject(patchProps?.template);
    this.deps.counters.containerApps("patches");
    if (patchTemplate && this.deps.faults.settings.patchResetsOtherContainers) {
      const current = templateOf(existing.desired);
      const { template, reset } = applyPartialUpdateReset(current, patchTemplate, templateOf(desired));
      desired.properties.template = template;
      if (reset.length > 0) {
        this.deps.counters.containerApps("containersReset", reset.length);
        this.deps.log(`PATCH ${name}: containers reset to the placeholder image: ${reset.join(", ")}`);
      }
    }
    return this.write("PATCH", rg, name, desired, existing, patchTemplate !== undefined);
  }

  delete(rg: string, name: string): ArmResponse {
    const app = this.tryFind(rg, name);
    if (!app) return { status: 204 };
    this.assertIdle(app);
    this.deps.counters.containerApps("deletes");
    const op = this.deps.ops.start(
      "Microsoft.App",
      this.deps.subscriptionId,
      app.desired.location,
      `DELETE containerApps/${name}`,
    );
    app.operation = op;
    app.provisioningState = "Deleting";
    this.deps.timers.after(this.deps.profile().appDeleteMs, async () => {
      app.deleted = true;
      this.apps.delete(this.key(rg, name));
      await this.stopApp(app);
      app.operation = undefined;
      this.deps.ops.succeed(op);
    });
    return { status: 202, headers: this.deps.ops.headers(op, { location: "monitor" }) };
  }

  listRevisions(rg: string, name: string, filter?: string): ArmResponse {
    const app = this.find(rg, name);
    let revisions = app.revisions;
    const m = filter ? /properties\/active\s+eq\s+(true|false)/i.exec(filter) : null;
    if (m) revisions = revisions.filter((r) => r.active === (m[1]?.toLowerCase() === "true"));
    return { status: 200, body: { value: revisions.map((r) => revisionView(app, r)) } };
  }

  private findRevision(app: AppRecord, revision: string): RevisionRecord {
    const rev = app.revisions.find((r) => r.name.toLowerCase() === revision.toLowerCase());
    if (!rev)
      throw armErrors.resourceNotFound(
        `Microsoft.App/containerApps/${app.name}/revisions`,
        revision,
        app.resourceGroup,
      );
    return rev;
  }

  getRevision(rg: string, name: string, revision: string): ArmResponse {
    const app = this.find(rg, name);
    return { status: 200, body: revisionView(app, this.findRevision(app, revision)) };
  }

  restartRevision(rg: string, name: string, revision: string): ArmResponse {
    const app = this.find(rg, name);
    const rev = this.findRevision(app, revision);
    if (!rev.active || rev.provisioningState !== "Provisioned") {
      throw new ArmError(
        400,
        "ContainerAppRevisionNotActive",
        `Revision '${rev.name}' of container app '${app.name}' is not active and provisioned; only active revisions can be restarted.`,
      );
    }
    this.deps.counters.containerApps("revisionRestarts");
    for (const replica of [...rev.replicas]) this.replaceReplica(app, rev, replica, "RevisionRestart");
    return { status: 200 };
  }

  setRevisionActive(rg: string, name: string, revision: string, active: boolean): ArmResponse {
    const app = this.find(rg, name);
    const rev = this.findRevision(app, revision);
    if (rev.active === active) return { status: 200 };
    if (active) {
      rev.active = true;
      rev.lastActiveTime = new Date();
      this.startReplicas(app, rev);
    } else {
      this.deactivate(app, rev);
    }
    return { status: 200 };
  }

  listReplicas(rg: string, name: string, revision: string): ArmResponse {
    const app = this.find(rg, name);
    const rev = this.findRevision(app, revision);
    return {
      status: 200,
      body: { value: rev.replicas.filter((r) => !r.stopped).map((r) => replicaView(app, rev, r)) },
    };
  }

  getReplica(rg: string, name: string, revision: string, replica: string): ArmResponse {
    const app = this.find(rg, name);
    const rev = this.findRevision(app, revision);
    const rep = rev.replicas.find((r) => !r.stopped && r.name.toLowerCase() === replica.toLowerCase());
    if (!rep)
      throw armErrors.resourceNotFound(
        `Microsoft.App/containerApps/${name}/revisions/${rev.name}/replicas`,
        replica,
        rg,
      );
    return { status: 200, body: replicaView(app, rev, rep) };
  }

  // -------------------------------------------------------------------------------------------
  // Writes

  private assertIdle(app: AppRecord | undefined): void {
    if (app?.operation && app.operation.status === "InProgress") {
      throw new ArmError(
        409,
        "ContainerAppOperationInProgress",
        `Cannot modify container app '${app.name}' because an operation is in progress. Retry after it completes.`,
      );
    }
  }

  /** `templateTouched`: a PUT always sends the template; a PATCH only when its body has one. */
  private write(
    kind: "PUT" | "PATCH",
    rg: string,
    name: string,
    desired: DesiredApp,
    existing?: AppRecord,
    templateTouched = true,
  ): ArmResponse {
    const secrets = readSecrets(configurationOf(desired));
    checkSecretsComplete(secrets);
    const template = templateOf(desired);
    validateTemplate(template, secrets);
    const suffix = requestedSuffix(template);
    if (suffix !== undefined) validateRevisionSuffix(name, suffix);

    const outcome: Outcome =
      existing && existing.revisions.length > 0 && !templateTouched
        ? { kind: "config-only" }
        : this.decide(name, template, suffix, existing);
    const now = new Date();
    const app: AppRecord = existing ?? {
      subscriptionId: this.deps.subscriptionId,
      resourceGroup: rg,
      name,
      desired,
      provisioningState: "InProgress",
      revisions: [],
      createdAt: now,
      modifiedAt: now,
      deleted: false,
    };
    app.desired = desired;
    app.modifiedAt = now;
    app.provisioningState = "InProgress";
    if (!existing) this.apps.set(this.key(rg, name), app);
    const op = this.deps.ops.start(
      "Microsoft.App",
      this.deps.subscriptionId,
      desired.location,
      `${kind} containerApps/${name}`,
    );
    app.operation = op;
    const profile = this.deps.profile();

    if (outcome.kind === "fail") {
      this.deps.timers.after(profile.configUpdateMs, () =>
        this.finishFailed(app, op, outcome.code, outcome.message),
      );
    } else if (outcome.kind === "config-only") {
      this.deps.timers.after(profile.configUpdateMs, () => this.finishSucceeded(app, op));
    } else {
      const rev = this.createRevision(app, template, outcome.suffix);
      this.deps.timers.after(profile.revisionProvisionMs, () => this.provision(app, rev, op));
    }

    // PATCH: no Location, so the SDK's final GET goes to the request URL (the app).
    const headers = this.deps.ops.headers(op);
    return { status: kind === "PATCH" ? 202 : existing ? 200 : 201, body: appView(app), headers };
  }

  private decide(
    name: string,
    template: JsonObject,
    suffix: string | undefined,
    existing?: AppRecord,
  ): Outcome {
    const latest = existing?.revisions.at(-1);
    if (
      suffix !== undefined &&
      existing?.revisions.some((r) => r.name.toLowerCase() === `${name}--${suffix}`.toLowerCase())
    ) {
      return { kind: "fail", ...reusedSuffixError(name, suffix) };
    }
    if (!latest || suffix !== undefined || templateIdentity(template) !== templateIdentity(latest.template)) {
      let next = suffix ?? randomSuffix();
      while (existing?.revisions.some((r) => r.name === `${name}--${next}`)) next = randomSuffix();
      return { kind: "new-revision", suffix: next };
    }
    return { kind: "config-only" };
  }

  private finishSucceeded(app: AppRecord, op: AsyncOperation): void {
    if (app.operation !== op) return;
    app.provisioningState = "Succeeded";
    app.operation = undefined;
    this.deps.ops.succeed(op);
  }

  private finishFailed(app: AppRecord, op: AsyncOperation, code: string, message: string): void {
    if (app.operation !== op) return;
    app.provisioningState = "Failed";
    app.operation = undefined;
    this.deps.counters.containerApps("failedOperations");
    this.deps.ops.fail(op, code, message);
  }

  private createRevision(app: AppRecord, template: JsonObject, suffix: string): RevisionRecord {
    const rev: RevisionRecord = {
      name: `${app.name}--${suffix}`,
      createdTime: new Date(),
      template: withTemplateDefaults(template),
      active: true,
      provisioningState: "Provisioning",
      runningState: "Processing",
      healthState: "None",
      replicas: [],
      everReady: false,
    };
    app.revisions.push(rev);
    app.latestRevisionName = rev.name;
    this.deps.counters.containerApps("revisionsCreated");
    this.system(app, rev, "", "RevisionCreation", "Normal", `Creating new revision '${rev.name}'`);
    this.pruneInactive(app);
    return rev;
  }

  private async provision(app: AppRecord, rev: RevisionRecord, op: AsyncOperation): Promise<void> {
    if (app.deleted || app.operation !== op) return;
    const missing = await this.unresolvableSecrets(app, rev);
    if (missing.length > 0) {
      rev.provisioningState = "Failed";
      rev.runningState = "Failed";
      rev.healthState = "Unhealthy";
      rev.provisioningError = `Unable to get the value of Key Vault secret(s) '${missing.join(", ")}' with the app's identity.`;
      this.finishFailed(
        app,
        op,
        "ContainerAppOperationError",
        `Failed to provision revision for container app '${app.name}'. Error details: The following field(s) are either invalid or missing. Field 'configuration.secrets' is invalid with details: 'Invalid value: "${missing.join(", ")}": Unable to get value using Managed identity ${"system"} for secret ${missing.join(", ")}';.`,
      );
      return;
    }
    rev.provisioningState = "Provisioned";
    this.startReplicas(app, rev);
    this.finishSucceeded(app, op);
  }

  // -------------------------------------------------------------------------------------------
  // Replicas and containers

  private async secretValues(app: AppRecord): Promise<Map<string, string | undefined>> {
    const values = new Map<string, string | undefined>();
    for (const s of readSecrets(configurationOf(app.desired))) values.set(s.name, await this.secretValue(s));
    return values;
  }

  private async secretValue(s: SecretSpec): Promise<string | undefined> {
    if (s.keyVaultUrl !== undefined) {
      try {
        return await this.deps.keyVault({
          name: s.name,
          keyVaultUrl: s.keyVaultUrl,
          identity: s.identity ?? "",
        });
      } catch {
        return undefined;
      }
    }
    return s.value;
  }

  /** Secrets the revision references (env or volumes) whose value cannot be had. */
  private async unresolvableSecrets(app: AppRecord, rev: RevisionRecord): Promise<string[]> {
    const values = await this.secretValues(app);
    const referenced = new Set<string>();
    for (const c of readContainers(rev.template)) {
      for (const e of containerView(c).env) if (e.secretRef !== undefined) referenced.add(e.secretRef);
    }
    for (const v of readVolumes(rev.template))
      for (const item of secretVolumeItems(v) ?? []) referenced.add(item.secretRef);
    return [...referenced].filter((name) => values.get(name) === undefined);
  }

  private startReplicas(app: AppRecord, rev: RevisionRecord): void {
    const n = replicaCount(rev.template, app.demand);
    for (let i = 0; i < n; i++) void this.createReplica(app, rev);
    this.refresh(app, rev);
  }

  /** Scales an active revision to what the app's demand asks for now: new replicas, or the newest stopped. */
  private rescale(app: AppRecord, rev: RevisionRecord): void {
    if (!rev.active || rev.provisioningState !== "Provisioned") return;
    const want = replicaCount(rev.template, app.demand);
    const live = rev.replicas.filter((r) => !r.stopped);
    for (let i = live.length; i < want; i++) void this.createReplica(app, rev);
    for (const extra of live.slice(want).reverse()) {
      this.system(app, rev, extra.name, "ScaleDown", "Normal", `Replica '${extra.name}' is scaled in`);
      void this.stopReplica(extra);
      rev.replicas = rev.replicas.filter((r) => r !== extra);
    }
    this.refresh(app, rev);
  }

  private async createReplica(app: AppRecord, rev: RevisionRecord): Promise<ReplicaRecord> {
    const replica: ReplicaRecord = {
      name: `${rev.name}-${hex(4)}${alnum(2)}-${alnum(5)}`,
      createdTime: new Date(),
      dir: join(this.deps.workDir, "r", hex(4)),
      containers: [],
      stopped: false,
    };
    rev.replicas.push(replica);
    mkdirSync(replica.dir, { recursive: true });
    this.system(
      app,
      rev,
      replica.name,
      "AssigningReplica",
      "Normal",
      `Replica '${replica.name}' has been scheduled to run on a node.`,
    );
    const values = await this.secretValues(app);
    const mounts = this.materializeVolumes(app, rev, replica, values);
    const containers = readContainers(rev.template);
    replica.containers = containers.map((raw, index): ContainerRecord => {
      const view = containerView(raw);
      const { env } = resolveEnv(view, values);
      return {
        index,
        view,
        launch: {
          resourceGroup: app.resourceGroup,
          app: app.name,
          revision: rev.name,
          replica: replica.name,
          container: view.name,
          image: view.image,
          env,
          command: view.command,
          args: view.args,
          mounts: view.volumeMounts.flatMap((m) => {
            const hostDir = mounts.get(m.volumeName);
            return hostDir ? [{ mountPath: m.mountPath, hostDir }] : [];
          }),
          sidecar: isSidecar(view),
          profile: this.deps.profile(),
          console: (stream, line) =>
            this.deps.events.addConsole({
              resourceGroup: app.resourceGroup,
              app: app.name,
              revision: rev.name,
              replica: replica.name,
              container: view.name,
              stream,
              log: line,
            }),
        },
        containerId: `containerd://${hex(32)}`,
        restartCount: 0,
        state: "Waiting",
        stateDetails: "ContainerCreating",
        ready: false,
        started: false,
        instances: 0,
      };
    });
    if (replica.stopped) return replica;
    for (const c of replica.containers) void this.startContainer(app, rev, replica, c);
    this.refresh(app, rev);
    return replica;
  }

  /** Secret volumes as folders of files (one per item); other volume types as empty folders. */
  private materializeVolumes(
    app: AppRecord,
    rev: RevisionRecord,
    replica: ReplicaRecord,
    values: Map<string, string | undefined>,
  ): Map<string, string> {
    const out = new Map<string, string>();
    readVolumes(rev.template).forEach((v, i) => {
      const name = asString(v.name) ?? `volume-${i}`;
      const dir = join(replica.dir, "v", String(i));
      mkdirSync(dir, { recursive: true });
      for (const item of secretVolumeItems(v) ?? []) {
        // Only plain file names: nothing a spec says can place a file outside the volume folder.
        if (!safeFileName(item.path)) {
          this.system(
            app,
            rev,
            replica.name,
            "VolumeMountFailed",
            "Warning",
            `Secret volume '${name}': path '${item.path}' is not a plain file name; skipped.`,
          );
          continue;
        }
        writeFileSync(join(dir, item.path), values.get(item.secretRef) ?? "", { mode: 0o600 });
      }
      out.set(name, dir);
    });
    return out;
  }

  private async startContainer(
    app: AppRecord,
    rev: RevisionRecord,
    replica: ReplicaRecord,
    c: ContainerRecord,
  ): Promise<void> {
    if (replica.stopped) return;
    c.instances += 1;
    const workDir = join(replica.dir, `c${c.index}-${c.instances}`);
    mkdirSync(workDir, { recursive: true });
    c.workDir = workDir;
    c.state = "Waiting";
    c.stateDetails = "ContainerCreating";
    c.ready = false;
    c.started = false;
    let running: Awaited<ReturnType<ContainerRuntime["start"]>>;
    try {
      running = await this.deps.runtime.start({ ...c.launch, profile: this.deps.profile(), workDir });
    } catch (err) {
      c.launch.console("stderr", `failed to start container: ${(err as Error).message}`);
      this.onContainerExit(app, rev, replica, c, { exitCode: 128, reason: "StartError" });
      return;
    }
    if (replica.stopped) {
      await running.stop();
      return;
    }
    c.running = running;
    c.state = "Running";
    c.stateDetails = "";
    c.started = true;
    this.system(app, rev, replica.name, "ContainerStarted", "Normal", `Started container '${c.view.name}'`);
    running.ready.then(() => {
      if (c.running !== running || replica.stopped) return;
      c.ready = true;
      this.refresh(app, rev);
    });
    running.exited.then((exit) => {
      if (c.running !== running) return;
      this.onContainerExit(app, rev, replica, c, exit);
    });
    this.refresh(app, rev);
  }

  private onContainerExit(
    app: AppRecord,
    rev: RevisionRecord,
    replica: ReplicaRecord,
    c: ContainerRecord,
    exit: ContainerExit,
  ): void {
    c.running = undefined;
    c.ready = false;
    c.started = false;
    const oldDir = c.workDir;
    if (oldDir) rmSync(oldDir, { recursive: true, force: true });
    if (replica.stopped) {
      c.state = "Terminated";
      c.stateDetails = "Replica stopped";
      return;
    }
    this.system(
      app,
      rev,
      replica.name,
      "ContainerTerminated",
      "Warning",
      `Container '${c.view.name}' was terminated with exit code '${exit.exitCode}' and reason '${exit.reason}'`,
    );
    const profile = this.deps.profile();
    const delay = Math.min(profile.crashBackoffInitialMs * 2 ** c.restartCount, profile.crashBackoffMaxMs);
    c.state = "Waiting";
    c.stateDetails = `CrashLoopBackOff: back-off ${delay} ms restarting failed container '${c.view.name}' (exit code ${exit.exitCode})`;
    this.system(
      app,
      rev,
      replica.name,
      "ContainerBackOff",
      "Warning",
      `Persistent Failiure to start container; back-off restarting '${c.view.name}'`,
    );
    c.cancelBackoff = this.deps.timers.after(delay, () => {
      c.cancelBackoff = undefined;
      if (replica.stopped) return;
      c.restartCount += 1;
      this.deps.counters.containerApps("containerRestarts");
      void this.startContainer(app, rev, replica, c);
    });
    this.refresh(app, rev);
  }

  private async stopReplica(replica: ReplicaRecord): Promise<void> {
    if (replica.stopped) return;
    replica.stopped = true;
    const stops: Promise<void>[] = [];
    for (const c of replica.containers) {
      c.cancelBackoff?.();
      c.cancelBackoff = undefined;
      const running = c.running;
      c.running = undefined;
      c.ready = false;
      c.started = false;
      c.state = "Terminated";
      c.stateDetails = "Replica stopped";
      if (running) stops.push(running.stop().catch(() => {}));
    }
    await Promise.all(stops);
    rmSync(replica.dir, { recursive: true, force: true });
  }

  /** A replica is replaced by a new one (new name, fresh containers and data): a pod recreated. */
  private replaceReplica(app: AppRecord, rev: RevisionRecord, replica: ReplicaRecord, reason: string): void {
    this.deps.counters.containerApps("replicaRestarts");
    this.system(
      app,
      rev,
      replica.name,
      reason,
      "Normal",
      `Replica '${replica.name}' is being replaced (${reason})`,
    );
    void this.stopReplica(replica);
    rev.replicas = rev.replicas.filter((r) => r !== replica);
    void this.createReplica(app, rev);
    this.refresh(app, rev);
  }

  private deactivate(app: AppRecord, rev: RevisionRecord): void {
    rev.active = false;
    rev.lastActiveTime = new Date();
    this.system(app, rev, "", "RevisionDeactivating", "Normal", `Deactivating old revision '${rev.name}'`);
    for (const replica of rev.replicas) void this.stopReplica(replica);
    rev.replicas = [];
    this.refresh(app, rev);
  }

  private pruneInactive(app: AppRecord): void {
    const max = Number(asObject(app.desired.properties.configuration)?.maxInactiveRevisions ?? 100);
    const inactive = app.revisions.filter((r) => !r.active);
    const excess = inactive.length - (Number.isFinite(max) ? max : 100);
    if (excess <= 0) return;
    const drop = new Set(inactive.slice(0, excess));
    app.revisions = app.revisions.filter((r) => !drop.has(r));
  }

  /** Recomputes a revision's running/health state from its replicas and moves the app along. */
  private refresh(app: AppRecord, rev: RevisionRecord): void {
    if (!rev.active) {
      rev.runningState = rev.provisioningState === "Failed" ? "Failed" : "Stopped";
      rev.healthState = "None";
      return;
    }
    if (rev.provisioningState === "Provisioning") {
      rev.runningState = "Processing";
      rev.healthState = "None";
      return;
    }
    if (rev.provisioningState === "Failed") {
      rev.runningState = "Failed";
      rev.healthState = "Unhealthy";
      return;
    }
    const replicas = rev.replicas.filter((r) => !r.stopped);
    if (replicas.length === 0 && replicaCount(rev.template, app.demand) === 0) {
      rev.runningState = "ScaledToZero";
      rev.healthState = "None";
      return;
    }
    const containers = replicas.flatMap((r) => r.containers);
    const allReady = replicas.length > 0 && containers.length > 0 && containers.every((c) => c.ready);
    const crashing = containers.some(
      (c) => c.restartCount > 0 || c.stateDetails.startsWith("CrashLoopBackOff"),
    );
    if (allReady) {
      // Azure's trigger for RunningAtMaxScale is undocumented; shown here for a revision that
      // scaled out to a maximum of several replicas, so a one-replica revision reads Running.
      const { max } = scaleRange(rev.template);
      rev.runningState = max > 1 && replicas.length >= max ? "RunningAtMaxScale" : "Running";
      rev.healthState = "Healthy";
      if (!rev.everReady) {
        rev.everReady = true;
        this.onRevisionReady(app, rev);
      }
    } else if (crashing) {
      // A revision whose containers never came up reads ActivationFailed in Azure (seen for a
      // VolumeMountFailure in azure-rest-api-specs#29102), not Degraded; one that ran, or has a
      // replica running, and then crash-loops reads Degraded.
      const someReplicaUp = replicas.some(
        (r) => r.containers.length > 0 && r.containers.every((c) => c.ready),
      );
      rev.runningState = rev.everReady || someReplicaUp ? "Degraded" : "ActivationFailed";
      rev.healthState = "Unhealthy";
    } else {
      rev.runningState = rev.everReady ? "Processing" : "Activating";
      rev.healthState = rev.everReady ? "Unhealthy" : "None";
    }
  }

  private onRevisionReady(app: AppRecord, rev: RevisionRecord): void {
    const index = app.revisions.indexOf(rev);
    const currentReady = app.revisions.findIndex((r) => r.name === app.latestReadyRevisionName);
    if (index > currentReady) app.latestReadyRevisionName = rev.name;
    if (revisionsMode(app.desired) !== "Single") return;
    this.deps.timers.after(this.deps.profile().deactivateOldRevisionMs, () => {
      if (app.deleted || !rev.active) return;
      for (const other of app.revisions) {
        if (other !== rev && other.active && app.revisions.indexOf(other) < index)
          this.deactivate(app, other);
      }
    });
  }

  private system(
    app: AppRecord,
    rev: RevisionRecord,
    replica: string,
    reason: string,
    type: "Normal" | "Warning",
    log: string,
  ): void {
    this.deps.events.addSystem({
      resourceGroup: app.resourceGroup,
      app: app.name,
      revision: rev.name,
      replica,
      reason,
      type,
      log,
    });
  }

  private async stopApp(app: AppRecord): Promise<void> {
    await Promise.all(app.revisions.flatMap((r) => r.replicas.map((rep) => this.stopReplica(rep))));
  }

  // -------------------------------------------------------------------------------------------
  // Control (faults and inspection)

  /** The revision a control action targets: the latest ready one, else the latest. */
  private currentRevision(app: AppRecord): RevisionRecord {
    const rev =
      app.revisions.find((r) => r.name === app.latestReadyRevisionName && r.active) ??
      [...app.revisions].reverse().find((r) => r.active);
    if (!rev) throw new Error(`container app ${app.name} has no active revision`);
    return rev;
  }

  private findReplica(app: AppRecord, replicaName?: string): { rev: RevisionRecord; replica: ReplicaRecord } {
    if (replicaName !== undefined) {
      for (const rev of app.revisions) {
        const replica = rev.replicas.find((r) => !r.stopped && r.name === replicaName);
        if (replica) return { rev, replica };
      }
      throw new Error(`container app ${app.name} has no running replica ${replicaName}`);
    }
    const rev = this.currentRevision(app);
    const replica = rev.replicas.find((r) => !r.stopped);
    if (!replica) throw new Error(`revision ${rev.name} has no running replica`);
    return { rev, replica };
  }

  /** Fault: the replica is recreated (new name, fresh containers: data dirs gone, learnings #5, #26). */
  restartReplica(rg: string, name: string, replicaName?: string): string {
    const app = this.find(rg, name);
    const { rev, replica } = this.findReplica(app, replicaName);
    this.replaceReplica(app, rev, replica, "ReplicaRestart");
    return replica.name;
  }

  /** The SPIRE agent process of a replica's sidecar, for kill/pause/resume faults (#18). */
  agent(rg: string, name: string, replicaName?: string): AgentProcessControl {
    const app = this.find(rg, name);
    const { replica } = this.findReplica(app, replicaName);
    const sidecar = replica.containers.find((c) => c.launch.sidecar);
    if (!sidecar) throw new Error(`replica ${replica.name} has no sidecar (no container with JOIN_TOKEN)`);
    const agent = sidecar.running?.agent;
    if (!agent) throw new Error(`the sidecar of replica ${replica.name} is not running a SPIRE agent now`);
    return agent;
  }

  /**
   * Load: how many replicas the app's scale rules would ask for now (undefined: one replica's
   * worth). Every active revision scales to it within its minReplicas..maxReplicas at once.
   */
  setDemand(rg: string, name: string, replicas: number | undefined): void {
    if (replicas !== undefined && !(Number.isInteger(replicas) && replicas >= 0)) {
      throw new Error("demand must be a whole number of replicas, 0 or more");
    }
    const app = this.find(rg, name);
    app.demand = replicas;
    for (const rev of app.revisions) this.rescale(app, rev);
  }

  /** Names of running replicas of the current revision. */
  replicas(rg: string, name: string): string[] {
    const app = this.find(rg, name);
    return this.currentRevision(app)
      .replicas.filter((r) => !r.stopped)
      .map((r) => r.name);
  }

  async reset(): Promise<void> {
    const apps = [...this.apps.values()];
    this.apps.clear();
    for (const app of apps) app.deleted = true;
    await Promise.all(apps.map((a) => this.stopApp(a)));
  }
}
