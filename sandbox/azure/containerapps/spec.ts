/**
 * Pure rules of the Container Apps resource provider: what a valid body is, Azure's error codes
 * and messages, defaults GET adds, when a change creates a revision, secret redaction, env
 * resolution, and the placeholder reset of a partial update (learnings #3, #29).
 */
import { randomBytes } from "node:crypto";
import { ArmError } from "../arm/errors.js";
import {
  asArray,
  asObject,
  asString,
  canonicalJson,
  clone,
  isObject,
  type Json,
  type JsonObject,
} from "../json.js";

/** The image Azure puts into containers a partial update did not target. */
export const PLACEHOLDER_IMAGE = "mcr.microsoft.com/k8se/quickstart:latest";

export interface SecretSpec {
  name: string;
  value?: string;
  keyVaultUrl?: string;
  identity?: string;
}

export interface EnvVarSpec {
  name: string;
  value?: string;
  secretRef?: string;
}

export interface VolumeMountSpec {
  volumeName: string;
  mountPath: string;
  subPath?: string;
}

export interface SecretVolumeItem {
  secretRef: string;
  path: string;
}

/** A container of a template, as far as the simulator reads it; other fields are kept as sent. */
export interface ContainerView {
  name: string;
  image: string;
  env: EnvVarSpec[];
  command: string[];
  args: string[];
  volumeMounts: VolumeMountSpec[];
}

const APP_NAME = /^[a-z](?:[a-z0-9-]{0,30}[a-z0-9])?$/;
const SECRET_NAME = /^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$/;
const SUFFIX = /^[a-z](?:[a-z0-9-]*[a-z0-9])?$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
const MAX_REVISION_NAME = 54;

/**
 * Confirmed from Azure's own responses (SDK specs, docs, issue reports): ContainerAppSecretInvalid,
 * ContainerAppInvalidRevisionName, the reused-suffix ContainerAppOperationError, the SecretRef text.
 * Not confirmed (plausible shapes): the generic InvalidParameterValue schema errors below, the code
 * ContainerAppSecretRefNotFound, and ContainerAppOperationInProgress (service.ts).
 */
function invalid(message: string, target?: string): ArmError {
  return new ArmError(400, "InvalidParameterValue", message, target ? { target } : {});
}

export function validateAppName(name: string): void {
  if (!APP_NAME.test(name) || name.includes("--")) {
    throw new ArmError(
      400,
      "ContainerAppInvalidName",
      `Invalid ContainerApp name '${name}'. A name must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character and cannot have '--'. The length must not be more than 32 characters.`,
    );
  }
}

/** ContainerAppInvalidRevisionName for a bad suffix (the combined name `<app>--<suffix>` is at most 54). */
export function validateRevisionSuffix(appName: string, suffix: string): void {
  const name = `${appName}--${suffix}`;
  if (!SUFFIX.test(suffix) || suffix.includes("--") || name.length > MAX_REVISION_NAME) {
    throw new ArmError(
      400,
      "ContainerAppInvalidRevisionName",
      `Revision name has an invalid value '${name}'. A revision name must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character. The length of the revision name must not be more than a combined ${MAX_REVISION_NAME} characters with the container app name.`,
      { target: "template.revisionSuffix" },
    );
  }
}

/** The async failure of a suffix that names an existing revision (GET echoes the suffix: learning #9). */
export function reusedSuffixError(appName: string, suffix: string): { code: string; message: string } {
  return {
    code: "ContainerAppOperationError",
    message: `Failed to provision revision for container app '${appName}'. Error details: The following field(s) are either invalid or missing. Field 'template.revisionsuffix' is invalid with details: 'Invalid value: "${suffix}": revision with suffix ${suffix} already exists';.`,
  };
}

/** A random revision suffix like Azure's: 7 lowercase letters and digits, starting with a letter. */
export function randomSuffix(): string {
  const letters = "abcdefghijklmnopqrstuvwxyz";
  const alnum = `${letters}0123456789`;
  const bytes = randomBytes(7);
  let out = letters[(bytes[0] ?? 0) % letters.length] as string;
  for (let i = 1; i < 7; i++) out += alnum[(bytes[i] ?? 0) % alnum.length];
  return out;
}

function stringList(x: unknown, what: string): string[] {
  if (x === undefined || x === null) return [];
  const arr = asArray(x);
  if (!arr || arr.some((v) => typeof v !== "string"))
    throw invalid(`'${what}' must be a list of strings.`, what);
  return arr as string[];
}

export function readSecrets(configuration: JsonObject | undefined): SecretSpec[] {
  const raw = configuration?.secrets;
  if (raw === undefined || raw === null) return [];
  const arr = asArray(raw);
  if (!arr) throw invalid("'configuration.secrets' must be a list.", "configuration.secrets");
  const seen = new Set<string>();
  return arr.map((item, i) => {
    const o = asObject(item);
    const name = asString(o?.name);
    if (!o || name === undefined)
      throw invalid(`Secret ${i} must be an object with a name.`, "configuration.secrets");
    if (!SECRET_NAME.test(name)) {
      throw invalid(
        `Invalid secret name '${name}'. A secret name must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character.`,
        "configuration.secrets",
      );
    }
    if (seen.has(name))
      throw invalid(`Secret name '${name}' is used more than once.`, "configuration.secrets");
    seen.add(name);
    const secret: SecretSpec = { name };
    for (const key of ["value", "keyVaultUrl", "identity"] as const) {
      const v = o[key];
      if (v === undefined || v === null) continue;
      if (typeof v !== "string")
        throw invalid(`Secret '${name}': '${key}' must be a string.`, "configuration.secrets");
      secret[key] = v;
    }
    return secret;
  });
}

/** ContainerAppSecretInvalid: every secret needs a value, or a Key Vault URL and an identity. */
export function checkSecretsComplete(secrets: readonly SecretSpec[]): void {
  const bad = secrets.filter(
    (s) => !(s.value !== undefined && s.value !== "") && !(s.keyVaultUrl && s.identity),
  );
  if (bad.length === 0) return;
  throw new ArmError(
    400,
    "ContainerAppSecretInvalid",
    `Invalid Request: Container app secret(s) with name(s) '${bad.map((s) => s.name).join(", ")}' are invalid: value or keyVaultUrl and identity should be provided.`,
  );
}

export function readContainers(template: JsonObject | undefined, key = "containers"): JsonObject[] {
  const raw = template?.[key];
  if (raw === undefined || raw === null) return [];
  const arr = asArray(raw);
  if (!arr || arr.some((c) => !isObject(c)))
    throw invalid(`'template.${key}' must be a list of objects.`, `template.${key}`);
  return arr as JsonObject[];
}

export function containerView(c: JsonObject): ContainerView {
  const name = asString(c.name) ?? "";
  const env = (asArray(c.env) ?? []).map((e, i): EnvVarSpec => {
    const o = asObject(e);
    const envName = asString(o?.name);
    if (!o || envName === undefined)
      throw invalid(`Container '${name}': env ${i} must be an object with a name.`);
    const out: EnvVarSpec = { name: envName };
    const value = o.value;
    const secretRef = o.secretRef;
    if (value !== undefined && value !== null) {
      if (typeof value !== "string")
        throw invalid(`Container '${name}': env '${envName}' value must be a string.`);
      out.value = value;
    }
    if (secretRef !== undefined && secretRef !== null) {
      if (typeof secretRef !== "string")
        throw invalid(`Container '${name}': env '${envName}' secretRef must be a string.`);
      out.secretRef = secretRef;
    }
    return out;
  });
  const volumeMounts = (asArray(c.volumeMounts) ?? []).map((m): VolumeMountSpec => {
    const o = asObject(m);
    const volumeName = asString(o?.volumeName);
    const mountPath = asString(o?.mountPath);
    if (volumeName === undefined || mountPath === undefined) {
      throw invalid(`Container '${name}': each volumeMount needs volumeName and mountPath.`);
    }
    const subPath = asString(o?.subPath);
    return { volumeName, mountPath, ...(subPath !== undefined && { subPath }) };
  });
  return {
    name,
    image: asString(c.image) ?? "",
    env,
    command: stringList(c.command, `${name}.command`),
    args: stringList(c.args, `${name}.args`),
    volumeMounts,
  };
}

export function readVolumes(template: JsonObject | undefined): JsonObject[] {
  const raw = template?.volumes;
  if (raw === undefined || raw === null) return [];
  const arr = asArray(raw);
  if (!arr || arr.some((v) => !isObject(v)))
    throw invalid("'template.volumes' must be a list of objects.", "template.volumes");
  return arr as JsonObject[];
}

export function secretVolumeItems(volume: JsonObject): SecretVolumeItem[] | undefined {
  if (asString(volume.storageType) !== "Secret") return undefined;
  return (asArray(volume.secrets) ?? []).flatMap((s) => {
    const o = asObject(s);
    const secretRef = asString(o?.secretRef);
    if (secretRef === undefined) return [];
    return [{ secretRef, path: asString(o?.path) ?? secretRef }];
  });
}

/**
 * Synchronous validation of a template against the app's secrets: container shape, env names,
 * secretRefs that exist, volume mounts that name a volume.
 */
export function validateTemplate(template: JsonObject, secrets: readonly SecretSpec[]): void {
  const containers = readContainers(template);
  if (containers.length === 0) {
    throw invalid(
      "The template must have at least one container in 'template.containers'.",
      "template.containers",
    );
  }
  const names = new Set<string>();
  const secretNames = new Set(secrets.map((s) => s.name));
  const volumeNames = new Set(readVolumes(template).map((v) => asString(v.name) ?? ""));
  for (const raw of [...containers, ...readContainers(template, "initContainers")]) {
    const c = containerView(raw);
    if (c.name === "" || !/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(c.name)) {
      throw invalid(
        `Invalid container name '${c.name}'. A container name must consist of lower case alphanumeric characters or '-', start and end with an alphanumeric character.`,
        "template.containers",
      );
    }
    if (names.has(c.name))
      throw invalid(`Container name '${c.name}' is used more than once.`, "template.containers");
    names.add(c.name);
    if (c.image === "") throw invalid(`Container '${c.name}' must have an image.`, "template.containers");
    const envNames = new Set<string>();
    for (const e of c.env) {
      if (!ENV_NAME.test(e.name))
        throw invalid(`Container '${c.name}': invalid environment variable name '${e.name}'.`);
      if (envNames.has(e.name)) {
        throw invalid(`Container '${c.name}': environment variable '${e.name}' is defined more than once.`);
      }
      envNames.add(e.name);
      if (e.secretRef !== undefined && !secretNames.has(e.secretRef)) {
        throw new ArmError(
          400,
          "ContainerAppSecretRefNotFound",
          `SecretRef '${e.secretRef}' defined for container '${c.name}' not found.`,
          { target: "template.containers" },
        );
      }
    }
    for (const m of c.volumeMounts) {
      if (!volumeNames.has(m.volumeName)) {
        throw invalid(
          `Container '${c.name}': volume mount '${m.volumeName}' does not name a volume of the template.`,
        );
      }
      if (!m.mountPath.startsWith("/")) throw invalid(`Container '${c.name}': mountPath must be absolute.`);
    }
  }
  for (const v of readVolumes(template)) {
    for (const item of secretVolumeItems(v) ?? []) {
      if (!secretNames.has(item.secretRef)) {
        throw new ArmError(
          400,
          "ContainerAppSecretRefNotFound",
          `SecretRef '${item.secretRef}' defined for volume '${asString(v.name) ?? ""}' not found.`,
          { target: "template.volumes" },
        );
      }
    }
  }
  const suffix = template.revisionSuffix;
  if (suffix !== undefined && suffix !== null && typeof suffix !== "string") {
    throw invalid("'template.revisionSuffix' must be a string.", "template.revisionSuffix");
  }
  const scale = template.scale;
  if (scale !== undefined && scale !== null) {
    const s = asObject(scale);
    if (!s) throw invalid("'template.scale' must be an object.", "template.scale");
    for (const k of ["minReplicas", "maxReplicas"]) {
      const n = s[k];
      if (
        n !== undefined &&
        n !== null &&
        (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > 1000)
      ) {
        throw invalid(`'template.scale.${k}' must be a whole number from 0 to 1000.`, "template.scale");
      }
    }
  }
}

/** Defaults Azure fills in and GET returns (so the simulator's GET differs from what was sent, as Azure's does). */
export function withTemplateDefaults(template: JsonObject): JsonObject {
  const out = clone(template);
  for (const key of ["containers", "initContainers"]) {
    const list = asArray(out[key]);
    if (!list) continue;
    out[key] = list.map((c) => {
      if (!isObject(c)) return c;
      const resources = asObject(c.resources) ?? {};
      return {
        ...c,
        resources: { cpu: 0.5, memory: "1Gi", ephemeralStorage: "2Gi", ...resources },
      };
    });
  }
  const scale = asObject(out.scale) ?? {};
  out.scale = { maxReplicas: 10, ...scale };
  return out;
}

/** The part of a template that decides whether a new revision is needed: everything but the suffix. */
export function templateIdentity(template: JsonObject): string {
  const copy = withTemplateDefaults(template);
  delete copy.revisionSuffix;
  return canonicalJson(copy);
}

export function requestedSuffix(template: JsonObject): string | undefined {
  const s = asString(template.revisionSuffix);
  return s === undefined || s === "" ? undefined : s;
}

/** Azure's scale defaults when a template omits them (Microsoft Learn, "Set scaling rules"). */
export const DEFAULT_MIN_REPLICAS = 0;
export const DEFAULT_MAX_REPLICAS = 10;

export function scaleRange(template: JsonObject): { min: number; max: number } {
  const scale = asObject(template.scale);
  const min = typeof scale?.minReplicas === "number" ? scale.minReplicas : DEFAULT_MIN_REPLICAS;
  const max = typeof scale?.maxReplicas === "number" ? scale.maxReplicas : DEFAULT_MAX_REPLICAS;
  return { min, max: Math.max(min, max) };
}

/**
 * Replicas a revision runs: the load's demand (default one replica's worth) clamped to
 * minReplicas..maxReplicas, as the scaler would; at most 10 on one machine. Zero only when the
 * app may scale to zero and nothing asks for a replica.
 */
export function replicaCount(template: JsonObject, demand = 1): number {
  const { min, max } = scaleRange(template);
  return Math.min(Math.max(min, Math.min(demand, max)), 10);
}

/** configuration as GET shows it: secret names (and Key Vault references) but never values. */
export function redactConfiguration(configuration: JsonObject | undefined): JsonObject | undefined {
  if (!configuration) return undefined;
  const out = clone(configuration);
  const secrets = readSecrets(configuration);
  if (secrets.length > 0 || out.secrets !== undefined) {
    out.secrets = secrets.map((s): JsonObject => {
      const shown: JsonObject = { name: s.name };
      if (s.keyVaultUrl !== undefined) shown.keyVaultUrl = s.keyVaultUrl;
      if (s.identity !== undefined) shown.identity = s.identity;
      return shown;
    });
  }
  return out;
}

function placeholder(container: JsonObject): JsonObject {
  const out: JsonObject = { name: container.name ?? null, image: PLACEHOLDER_IMAGE };
  if (container.resources !== undefined) out.resources = container.resources;
  return out;
}

/**
 * A PATCH that touches the template: containers whose spec it changes (or adds) are its targets;
 * every other container of the result is reset to the placeholder image. A template patch with no
 * containers targets none and resets all. Returns the template to store and the reset names.
 */
export function applyPartialUpdateReset(
  current: JsonObject,
  patchTemplate: JsonObject,
  merged: JsonObject,
): { template: JsonObject; reset: string[] } {
  const before = new Map(readContainers(current).map((c) => [asString(c.name) ?? "", c]));
  const patched = patchTemplate.containers === undefined ? [] : readContainers(patchTemplate);
  const targets = new Set(
    patched
      .filter((c) => {
        const old = before.get(asString(c.name) ?? "");
        return (
          old === undefined ||
          canonicalJson(withTemplateDefaults({ containers: [old] })) !==
            canonicalJson(withTemplateDefaults({ containers: [c] }))
        );
      })
      .map((c) => asString(c.name) ?? ""),
  );
  const reset: string[] = [];
  const result: Json[] = [];
  for (const [name, old] of before) {
    if (targets.has(name)) {
      const next = patched.find((c) => c.name === name);
      if (next) result.push(next);
    } else {
      const mergedVersion = readContainers(merged).find((c) => c.name === name) ?? old;
      if (asString(mergedVersion.image) !== PLACEHOLDER_IMAGE) reset.push(name);
      result.push(placeholder(mergedVersion));
    }
  }
  for (const c of patched) if (!before.has(asString(c.name) ?? "")) result.push(c);
  return { template: { ...merged, containers: result }, reset };
}

/**
 * Environment of a container at replica start: plain values and secret values. Secrets whose
 * value is not available (a Key Vault reference without a resolver) are listed in `missing`.
 */
export function resolveEnv(
  container: ContainerView,
  secretValues: ReadonlyMap<string, string | undefined>,
): { env: Record<string, string>; missing: string[] } {
  const env: Record<string, string> = {};
  const missing: string[] = [];
  for (const e of container.env) {
    if (e.secretRef !== undefined) {
      const v = secretValues.get(e.secretRef);
      if (v === undefined) missing.push(e.secretRef);
      else env[e.name] = v;
    } else {
      env[e.name] = e.value ?? "";
    }
  }
  return { env, missing };
}

/** The sidecar is the container whose env carries JOIN_TOKEN, as a value or a secretRef. */
export function isSidecar(container: ContainerView): boolean {
  return container.env.some((e) => e.name === "JOIN_TOKEN");
}
