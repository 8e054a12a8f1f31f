import type { ContainerApp, ContainerAppsAPIClient } from "@azure/arm-appcontainers";
import type { AppConfig } from "../config.js";
import { type AppModelSettings, type AppVerdict, classifyApp } from "./apps.js";

/*
 * Finding the apps a deploy acts on: every Container App of the resource group, read page by page
 * through the SDK's pager (learning #27: by tag on every run, never a static list), each classified
 * by the one app model so its reasons are the same ones re-attestation gives.
 */

export interface Discovered {
  /** Every app of the resource group, in name order, with its verdict. */
  verdicts: AppVerdict[];
  /** The raw apps by name, for callers that need more than the verdict (images in a dry run). */
  apps: Map<string, ContainerApp>;
  /** Pages the pager fetched: ARM calls spent on the listing. */
  pages: number;
}

export async function discoverApps(
  containerApps: ContainerAppsAPIClient,
  config: Pick<AppConfig, "apps" | "spire">,
): Promise<Discovered> {
  return listClassifiedApps(containerApps, config.apps.resourceGroup, {
    trustDomain: config.spire.trustDomain,
    apps: config.apps,
  });
}

/** The one paged listing behind every caller (deploy, sweep, fleet API): calls grow with pages. */
export async function listClassifiedApps(
  containerApps: ContainerAppsAPIClient,
  resourceGroup: string,
  settings: AppModelSettings,
): Promise<Discovered> {
  const apps = new Map<string, ContainerApp>();
  let pages = 0;
  for await (const page of containerApps.containerApps.listByResourceGroup(resourceGroup).byPage()) {
    pages++;
    for (const app of page) if (app.name) apps.set(app.name, app);
  }
  const verdicts = [...apps.values()]
    .map((app) => classifyApp(app, settings))
    .sort((a, b) => nameOf(a).localeCompare(nameOf(b)));
  return { verdicts, apps, pages };
}

export const nameOf = (v: AppVerdict): string => (v.kind === "managed" ? v.app.name : v.name);
