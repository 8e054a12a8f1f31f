import type { ContainerApp } from "@azure/arm-appcontainers";
import type { Sandbox } from "../environment.js";
import { fleetAppSpec } from "./fleet.js";

/*
 * Apps as a platform team hands them over before the first deploy: tagged for the product, one
 * replica, a real agent sidecar, but no join token yet, so the sidecar exits at once ("JOIN_TOKEN
 * is empty") and restarts with backoff until a deploy gives it a token. That message is not one
 * the attestation-failure alert matches, so nothing re-attests them before the user deploys.
 * Beside them: an app the product must ignore (no tag) and one it must report and leave alone
 * (tagged, but scaled 0..3, which a join token cannot survive: classifyApp's reason).
 */

export const DEMO_UNMANAGED_APP = "legacy-portal";
export const DEMO_UNUSABLE_APP = "batch-worker";

export interface DemoFleetOptions {
  /** How many never-attested managed apps (default 3). */
  managed?: number;
  /** Names of the managed apps are `<prefix>-<i>` (1-based, two digits; default "agent"). */
  prefix?: string;
  /** Also create the untagged app (default false). */
  unmanaged?: boolean;
  /** Also create the tagged app whose scale the product refuses (default false). */
  unusable?: boolean;
}

export interface DemoFleet {
  /** The never-attested managed apps, in name order. */
  managed: string[];
  unmanaged?: string;
  unusable?: string;
}

/** The full spec of a managed app whose sidecar has not been given a join token yet. */
export function neverAttestedSpec(sb: Sandbox, name: string): ContainerApp {
  const spec = fleetAppSpec(sb, name, "", "");
  const sidecar = spec.template!.containers![1]!;
  // No secret and no bundle yet: the first deploy adds both (as secretRefs) in one full-spec PUT.
  sidecar.env = (sidecar.env ?? [])
    .filter((e) => e.name !== "SPIRE_TRUST_BUNDLE")
    .map((e) => (e.name === "JOIN_TOKEN" ? { name: "JOIN_TOKEN", value: "" } : e));
  spec.configuration = { activeRevisionsMode: "Single" };
  // Its first revision gets a random name, so any later suffix (a deploy's, "v1") is new (#9).
  delete spec.template!.revisionSuffix;
  return spec;
}

export function demoAppNames(count: number, prefix = "agent"): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}-${String(i + 1).padStart(2, "0")}`);
}

export async function createDemoFleet(sb: Sandbox, opts: DemoFleetOptions = {}): Promise<DemoFleet> {
  const rg = sb.settings.APPS_RESOURCE_GROUP!;
  const { containerApps } = sb.azure.clients();
  const managed = demoAppNames(opts.managed ?? 3, opts.prefix);
  const specs: Array<[string, ContainerApp]> = managed.map((name) => [name, neverAttestedSpec(sb, name)]);
  if (opts.unmanaged) {
    const spec = neverAttestedSpec(sb, DEMO_UNMANAGED_APP);
    spec.tags = { team: "portal" };
    specs.push([DEMO_UNMANAGED_APP, spec]);
  }
  if (opts.unusable) {
    const spec = neverAttestedSpec(sb, DEMO_UNUSABLE_APP);
    spec.template!.scale = { minReplicas: 0, maxReplicas: 3 };
    specs.push([DEMO_UNUSABLE_APP, spec]);
  }
  await Promise.all(
    specs.map(([name, spec]) => containerApps.containerApps.createOrUpdate(rg, name, spec).pollUntilDone()),
  );
  return {
    managed,
    ...(opts.unmanaged ? { unmanaged: DEMO_UNMANAGED_APP } : {}),
    ...(opts.unusable ? { unusable: DEMO_UNUSABLE_APP } : {}),
  };
}
