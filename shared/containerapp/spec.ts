import { createHash } from "node:crypto";
import type {
  Container,
  ContainerApp,
  ContainerAppSecret,
  EnvironmentVar,
  Secret,
  TrafficWeight,
} from "@azure/arm-appcontainers";

/*
 * The only way spire-autopilot changes a Container App: a full-spec PUT built from the GET'd app
 * and its listSecrets values by this pure function. Never a PATCH: a partial update resets the
 * containers it omits (learnings #3, #29), and GET alone has no secret values, so re-sending it
 * fails ContainerAppSecretInvalid.
 */

export const JOIN_TOKEN_ENV = "JOIN_TOKEN";
export const TRUST_BUNDLE_ENV = "SPIRE_TRUST_BUNDLE";
export const DEFAULT_TOKEN_SECRET = "spire-join-token";
export const DEFAULT_BUNDLE_SECRET = "spire-trust-bundle";

export type SpecErrorCode =
  | "NoSidecar"
  | "SeveralSidecars"
  | "SecretWithoutValue"
  | "BadBundleReference"
  | "BadAppName"
  | "NoSuchContainer";

/** A spec we refuse to build; the message says what to fix. Never retried. */
export class SpecError extends Error {
  override readonly name = "SpecError";
  constructor(
    readonly code: SpecErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const hasEnv = (c: Container, name: string) => (c.env ?? []).some((e) => e.name === name);

/** The SPIRE agent sidecar: the one container that reads JOIN_TOKEN (as a value or a secretRef). */
export function findSidecar(app: ContainerApp): Container | undefined {
  const candidates = (app.template?.containers ?? []).filter((c) => hasEnv(c, JOIN_TOKEN_ENV));
  if (candidates.length > 1) {
    throw new SpecError(
      "SeveralSidecars",
      `Container app ${app.name} has ${candidates.length} containers with a ${JOIN_TOKEN_ENV} variable ` +
        `(${candidates.map((c) => c.name).join(", ")}); exactly one SPIRE agent sidecar is supported.`,
    );
  }
  return candidates[0];
}

/**
 * A revision suffix unique to one run: re-sending a suffix that exists fails asynchronously
 * (learning #9), and GET echoes the last one, so it is always replaced. Deterministic in the run
 * id so a retried activity recognises its own revision.
 */
export function revisionSuffixFor(runId: string): string {
  return `sa-${createHash("sha256").update(runId).digest("hex").slice(0, 12)}`;
}

/** Revision names are `<app>--<suffix>`, lowercase, at most 54 characters. */
export function revisionNameFor(appName: string, runId: string): string {
  const name = `${appName}--${revisionSuffixFor(runId)}`;
  if (!/^[a-z][a-z0-9-]*[a-z0-9]$/.test(appName) || name.length > 54) {
    throw new SpecError(
      "BadAppName",
      `Container app name "${appName}" cannot carry a revision suffix: revision names are lowercase letters, digits and '-', at most 54 characters.`,
    );
  }
  return name;
}

export interface TrustBundleReference {
  /** A versioned Key Vault secret URL: https://<vault>/secrets/<name>/<version>. */
  keyVaultUrl: string;
  /** The managed identity the app uses to read Key Vault: a user-assigned identity id, or "system". */
  identity: string;
}

export interface ReattestSpecInput {
  /** The app as GET returns it (no secret values). */
  app: ContainerApp;
  /** The app's secrets as listSecrets returns them. */
  secrets: ContainerAppSecret[];
  /** The token's value, or (a deploy) a Key Vault reference to the secret holding it. */
  joinToken: string | TokenSecretReference;
  runId: string;
  trustBundle?: TrustBundleReference;
  /** Container name → new image, changed in the same PUT (a deploy); every other container kept. */
  images?: Record<string, string>;
}

/**
 * A join token waiting in Key Vault (a deploy): the app's secret references it, so the token
 * never travels in the PUT body, ARM never returns it, and listSecrets shows only the URL.
 */
export interface TokenSecretReference {
  keyVaultUrl: string;
  identity: string;
}

const VERSIONED_SECRET_URL = /^https:\/\/[^/\s]+\/secrets\/[A-Za-z0-9-]{1,127}\/[0-9a-f]{32}$/;

function withEnv(env: EnvironmentVar[] | undefined, name: string, value: EnvironmentVar): EnvironmentVar[] {
  const list = (env ?? []).filter((e) => e.name !== name);
  const at = (env ?? []).findIndex((e) => e.name === name);
  list.splice(at < 0 ? list.length : at, 0, value);
  return list;
}

function withSecret(secrets: Secret[], secret: Secret): Secret[] {
  const at = secrets.findIndex((s) => s.name === secret.name);
  if (at < 0) return [...secrets, secret];
  return secrets.map((s, i) => (i === at ? secret : s));
}

/** listSecrets → PUT secrets: every secret keeps its value or its Key Vault reference. */
function secretsForPut(appName: string | undefined, listed: ContainerAppSecret[]): Secret[] {
  return listed.map((s) => {
    if (s.keyVaultUrl) return { name: s.name, keyVaultUrl: s.keyVaultUrl, identity: s.identity };
    if (s.value !== undefined) return { name: s.name, value: s.value };
    throw new SpecError(
      "SecretWithoutValue",
      `Secret "${s.name}" of container app ${appName} has neither a value nor a Key Vault reference in listSecrets; ` +
        "a PUT would fail with ContainerAppSecretInvalid. Fix the secret in Azure, then retry.",
    );
  });
}

/**
 * The PUT body that gives the app a fresh join token (as a secret the sidecar's JOIN_TOKEN refers
 * to), pins the trust bundle to the given Key Vault version, and starts a new revision; every other
 * part of the app — containers, images, env, probes, volumes, scale, ingress — is left as it was.
 */
export function buildReattestSpec(input: ReattestSpecInput): ContainerApp {
  const app = structuredClone(input.app);
  const sidecar = findSidecar(app);
  if (!sidecar || !app.template) {
    throw new SpecError(
      "NoSidecar",
      `Container app ${app.name} has no SPIRE agent sidecar: no container reads ${JOIN_TOKEN_ENV}. ` +
        `spire-autopilot only manages apps whose sidecar takes its join token from ${JOIN_TOKEN_ENV}.`,
    );
  }
  revisionNameFor(app.name ?? "", input.runId);
  let secrets = secretsForPut(app.name, input.secrets);

  const tokenEnv = sidecar.env!.find((e) => e.name === JOIN_TOKEN_ENV)!;
  const tokenSecret = tokenEnv.secretRef ?? DEFAULT_TOKEN_SECRET;
  const token = input.joinToken;
  secrets = withSecret(
    secrets,
    typeof token === "string"
      ? { name: tokenSecret, value: token }
      : { name: tokenSecret, keyVaultUrl: token.keyVaultUrl, identity: token.identity },
  );
  sidecar.env = withEnv(sidecar.env, JOIN_TOKEN_ENV, { name: JOIN_TOKEN_ENV, secretRef: tokenSecret });

  if (input.trustBundle) {
    if (!VERSIONED_SECRET_URL.test(input.trustBundle.keyVaultUrl)) {
      throw new SpecError(
        "BadBundleReference",
        "The trust bundle reference must be a versioned Key Vault secret URL (https://<vault>/secrets/<name>/<32-hex version>) so every replica reads the same bundle.",
      );
    }
    const bundleEnv = sidecar.env.find((e) => e.name === TRUST_BUNDLE_ENV);
    const bundleSecret = bundleEnv?.secretRef ?? DEFAULT_BUNDLE_SECRET;
    secrets = withSecret(secrets, {
      name: bundleSecret,
      keyVaultUrl: input.trustBundle.keyVaultUrl,
      identity: input.trustBundle.identity,
    });
    sidecar.env = withEnv(sidecar.env, TRUST_BUNDLE_ENV, { name: TRUST_BUNDLE_ENV, secretRef: bundleSecret });
  }

  for (const [container, image] of Object.entries(input.images ?? {})) {
    const target = app.template.containers?.find((c) => c.name === container);
    if (!target) {
      throw new SpecError(
        "NoSuchContainer",
        `Container app ${app.name} has no container "${container}" to change the image of (it has ${(app.template.containers ?? []).map((c) => c.name).join(", ")}).`,
      );
    }
    target.image = image;
  }

  app.configuration = { ...app.configuration, secrets };
  app.template.revisionSuffix = revisionSuffixFor(input.runId);
  const traffic = app.configuration.ingress?.traffic;
  if (
    app.configuration.activeRevisionsMode?.toLowerCase() === "multiple" &&
    traffic &&
    app.configuration.ingress
  ) {
    app.configuration.ingress = {
      ...app.configuration.ingress,
      traffic: trafficMovedTo(traffic, app.latestRevisionName, revisionNameFor(app.name ?? "", input.runId)),
    };
  }
  return app;
}

/**
 * Multiple revision mode keeps every revision's traffic where its entry pins it, so a new revision
 * would get none: the entries pinned to the revision being replaced (the latest, whose template the
 * new one copies) move to the new one with their weights and labels. Entries that follow the
 * latest revision, and those of other revisions (a canary, a rollback), stay as they are.
 */
function trafficMovedTo(traffic: TrafficWeight[], from: string | undefined, to: string): TrafficWeight[] {
  if (!from) return traffic;
  return traffic.map((t) => (t.revisionName === from ? { ...t, revisionName: to } : t));
}

/** JSON with sorted keys, so equal resources hash equal whatever order their fields came in. */
function canonical(value: unknown): string {
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

/**
 * What must not change between reading an app and PUTting its update. ARM Container Apps has no
 * etag and its PUT takes no If-Match (ContainerApps.json: ContainerApp is a plain TrackedResource,
 * ContainerApps_CreateOrUpdate lists no If-Match header), so a change landing in between (a CI
 * deploy) is detected by comparing this fingerprint: the last modification time, the latest
 * revision, the provisioning state (an operation in progress is a change on its way), and
 * everything a PUT would write. Read-only status that moves by itself (runningStatus,
 * latestReadyRevisionName) is left out. Only a change landing in the moment between the re-read
 * and the PUT goes unseen: without If-Match, ARM offers nothing to close that window.
 */
export function appFingerprint(app: ContainerApp): string {
  const material = {
    lastModifiedAt: app.systemData?.lastModifiedAt,
    latestRevisionName: app.latestRevisionName,
    provisioningState: app.provisioningState,
    tags: app.tags,
    identity: app.identity,
    configuration: app.configuration,
    template: app.template,
    workloadProfileName: app.workloadProfileName,
  };
  return createHash("sha256").update(canonical(material)).digest("hex");
}

/** Whether the app already runs (or provisions) the revision this run would create. */
export function runAlreadyApplied(app: ContainerApp, runId: string): boolean {
  return app.latestRevisionName === `${app.name}--${revisionSuffixFor(runId)}`;
}
