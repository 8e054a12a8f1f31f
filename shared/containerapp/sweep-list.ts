import type { ContainerAppsAPIClient } from "@azure/arm-appcontainers";
import type { SnapshotApp } from "../health/snapshot.js";
import { type AppModelSettings, classifyApp } from "./apps.js";

/*
 * The health sweep's app lister: one paged listByResourceGroup, each app put through the app model
 * (managed, refused with a reason, or not ours). Calls grow with pages, never with apps. A minimal
 * lister of its own while the deploy workflow's is not merged; the two do the same job.
 */

export async function listAppsForSweep(
  containerApps: ContainerAppsAPIClient,
  resourceGroup: string,
  settings: AppModelSettings,
): Promise<{ apps: SnapshotApp[]; pages: number }> {
  const apps: SnapshotApp[] = [];
  let pages = 0;
  for await (const page of containerApps.containerApps.listByResourceGroup(resourceGroup).byPage()) {
    pages++;
    for (const app of page) {
      const verdict = classifyApp(app, settings);
      if (verdict.kind === "managed") {
        apps.push({
          name: verdict.app.name,
          managed: true,
          alias: verdict.app.alias,
          workloadId: verdict.app.workloadId,
          ...(app.latestRevisionName ? { latestRevision: app.latestRevisionName } : {}),
          restartCount: 0,
        });
      } else if (verdict.kind === "skipped") {
        apps.push({ name: verdict.name, managed: false, reason: verdict.reason });
      }
    }
  }
  apps.sort((a, b) => a.name.localeCompare(b.name));
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
