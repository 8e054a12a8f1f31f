import type { ContainerApp } from "@azure/arm-appcontainers";
import type { AppConfig, Selector } from "../config.js";
import { agentAliasId, parseGuid, workloadId } from "../spiffe/index.js";
import { findSidecar, SpecError } from "./spec.js";

/*
 * Which Container Apps spire-autopilot manages, and what identity each one gets. Apps are found by
 * tag on every run, never from a static list (learning #27). An app tagged as managed but missing
 * what we need is reported with the reason and left alone.
 */

/**
 * How an app's agent attests. Only join-token exists today; the planned x509pop mode (DESIGN.md
 * "Attestation modes", chosen per app by tag) adds a value here, its own requirements in
 * MODE_REQUIREMENTS, and a branch in attestationModeOf.
 */
export type AttestationMode = "join-token";

export interface ManagedApp {
  name: string;
  attestation: AttestationMode;
  resourceId: string;
  blueprintOid: string;
  agentOid: string;
  /** spiffe://<td>/agent/<app>: the node alias its join token creates. */
  alias: string;
  /** spiffe://<td>/ests/bp/<bp>/aid/<aid>: the workload's SVID. */
  workloadId: string;
  selectors: Selector[];
  sidecar: string;
}

export type AppVerdict =
  | { kind: "managed"; app: ManagedApp }
  | { kind: "skipped"; name: string; reason: string }
  | { kind: "unmanaged"; name: string };

export interface AppModelSettings {
  trustDomain: string;
  apps: Pick<AppConfig["apps"], "managedTag" | "blueprintOidTag" | "agentOidTag" | "workloadSelectors">;
}

/** The mode an app attests with; one mode exists, so every managed app uses it. */
function attestationModeOf(_app: ContainerApp): AttestationMode {
  return "join-token";
}

/** Azure's defaults when the template omits them (Microsoft Learn, "Set scaling rules in Azure Container Apps"). */
const DEFAULT_MIN_REPLICAS = 0;
const DEFAULT_MAX_REPLICAS = 10;

export function replicaRange(app: ContainerApp): { min: number; max: number } {
  const scale = app.template?.scale;
  return {
    min: scale?.minReplicas ?? DEFAULT_MIN_REPLICAS,
    max: scale?.maxReplicas ?? DEFAULT_MAX_REPLICAS,
  };
}

/**
 * A join token is single-use and sits in a secret every replica reads: a second replica's agent
 * finds it spent and crash-loops (so the alert fires and re-attestation repeats after each
 * cooldown), and with minReplicas = 0 no agent may run at all, so verification can never pass.
 * Exactly one replica, always, is the only scale the mode survives.
 */
function joinTokenRequirements(app: ContainerApp): string[] {
  const { min, max } = replicaRange(app);
  if (min === 1 && max === 1) return [];
  return [
    `its scale is minReplicas = ${min}, maxReplicas = ${max}, but a join token is single-use: ` +
      (max > 1 ? "every replica but the first would crash-loop on the spent token" : "") +
      (max > 1 && min < 1 ? ", and " : "") +
      (min < 1 ? "with no replica running no agent can attest" : "") +
      "; set minReplicas = maxReplicas = 1",
  ];
}

const MODE_REQUIREMENTS: Record<AttestationMode, (app: ContainerApp) => string[]> = {
  "join-token": joinTokenRequirements,
};

export function classifyApp(app: ContainerApp, settings: AppModelSettings): AppVerdict {
  const name = app.name ?? "";
  const tags = app.tags ?? {};
  const { managedTag, blueprintOidTag, agentOidTag, workloadSelectors } = settings.apps;
  if (tags[managedTag.name] !== managedTag.value) return { kind: "unmanaged", name };

  const problems: string[] = [];
  let blueprintOid = "";
  let agentOid = "";
  try {
    blueprintOid = parseGuid(tags[blueprintOidTag] ?? "", `tag ${blueprintOidTag}`);
  } catch {
    problems.push(`tag ${blueprintOidTag} is missing or not a GUID`);
  }
  try {
    agentOid = parseGuid(tags[agentOidTag] ?? "", `tag ${agentOidTag}`);
  } catch {
    problems.push(`tag ${agentOidTag} is missing or not a GUID`);
  }
  let sidecar: string | undefined;
  try {
    sidecar = findSidecar(app)?.name;
    if (!sidecar) problems.push("no container reads JOIN_TOKEN (no SPIRE agent sidecar)");
  } catch (err) {
    if (!(err instanceof SpecError)) throw err;
    problems.push(err.message);
  }
  let alias = "";
  try {
    alias = agentAliasId(settings.trustDomain, name);
  } catch (err) {
    problems.push((err as Error).message);
  }
  const attestation = attestationModeOf(app);
  problems.push(...MODE_REQUIREMENTS[attestation](app));
  if (problems.length > 0 || !sidecar) return { kind: "skipped", name, reason: problems.join("; ") };
  return {
    kind: "managed",
    app: {
      name,
      attestation,
      resourceId: app.id ?? "",
      blueprintOid,
      agentOid,
      alias,
      workloadId: workloadId(settings.trustDomain, blueprintOid, agentOid),
      selectors: workloadSelectors,
      sidecar,
    },
  };
}

/** Split a resource group's apps into the ones we manage and the ones we report. */
export function classifyApps(apps: ContainerApp[], settings: AppModelSettings) {
  const managed: ManagedApp[] = [];
  const skipped: Array<{ name: string; reason: string }> = [];
  for (const app of apps) {
    const v = classifyApp(app, settings);
    if (v.kind === "managed") managed.push(v.app);
    else if (v.kind === "skipped") skipped.push({ name: v.name, reason: v.reason });
  }
  managed.sort((a, b) => a.name.localeCompare(b.name));
  return { managed, skipped };
}
