import type { ContainerAppsAPIClient } from "@azure/arm-appcontainers";
import type { SnapshotApp } from "../health/snapshot.js";
import type { AppModelSettings } from "./apps.js";
import { listClassifiedApps } from "./discover.js";

/*
 * The health sweep's view of the apps: the shared paged listing (discover.ts), each app as the
 * snapshot needs it (managed with its alias and workload ID, refused with the app model's reason).
 */

export async function listAppsForSweep(
  containerApps: ContainerAppsAPIClient,
  resourceGroup: string,
  settings: AppModelSettings,
): Promise<{ apps: SnapshotApp[]; pages: number }> {
  const { verdicts, apps: raw, pages } = await listClassifiedApps(containerApps, resourceGroup, settings);
  const apps: SnapshotApp[] = [];
  for (const verdict of verdicts) {
    if (verdict.kind === "managed") {
      const latest = raw.get(verdict.app.name)?.latestRevisionName;
      apps.push({
        name: verdict.app.name,
        managed: true,
        alias: verdict.app.alias,
        workloadId: verdict.app.workloadId,
        ...(latest ? { latestRevision: latest } : {}),
        restartCount: 0,
      });
    } else if (verdict.kind === "skipped") {
      apps.push({ name: verdict.name, managed: false, reason: verdict.reason });
    }
  }
  return { apps, pages: Math.max(pages, 1) };
}

/** Restarts of a revision's replicas, summed (0 when the revision has none). */
export async function replicaRestarts(
  containerApps: ContainerAppsAPIClient,
  resourceGroup: string,
  app: string,
  revision: string,
): Promise<number> {
  const replicas = await containerApps.containerAppsRevisionReplicas.listReplicas(
    resourceGroup,
    app,
    revision,
  );
  let restarts = 0;
  for (const r of replicas.value ?? []) {
    for (const c of r.containers ?? []) restarts += c.restartCount ?? 0;
  }
  return restarts;
}
