import type { ContainerApp } from "@azure/arm-appcontainers";
import type { AppConfig, Selector } from "../config.js";
import { agentAliasId, parseGuid, workloadId } from "../spiffe/index.js";
import { findSidecar, SpecError } from "./spec.js";

/*
 * Which Container Apps spire-autopilot manages, and what identity each one gets. Apps are found by
 * tag on every run, never from a static list (learning #27). An app tagged as managed but missing
 * what we need is reported with the reason and left alone.
 */

export interface ManagedApp {
  name: string;
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
  if (problems.length > 0 || !sidecar) return { kind: "skipped", name, reason: problems.join("; ") };
  return {
    kind: "managed",
    app: {
      name,
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
