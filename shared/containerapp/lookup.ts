import type { ContainerAppsAPIClient } from "@azure/arm-appcontainers";
import type { AppConfig } from "../config.js";
import { type AppVerdict, classifyApp } from "./apps.js";

export type AppLookup = AppVerdict | { kind: "notFound"; name: string };

function statusOf(err: unknown): number | undefined {
  const code = (err as { statusCode?: unknown }).statusCode;
  return typeof code === "number" ? code : undefined;
}

/** GET one app and say whether we manage it; a 404 is an answer, anything else an error. */
export async function lookupApp(
  containerApps: ContainerAppsAPIClient,
  config: Pick<AppConfig, "apps" | "spire">,
  name: string,
): Promise<AppLookup> {
  try {
    const app = await containerApps.containerApps.get(config.apps.resourceGroup, name);
    return classifyApp(app, { trustDomain: config.spire.trustDomain, apps: config.apps });
  } catch (err) {
    if (statusOf(err) === 404) return { kind: "notFound", name };
    throw err;
  }
}

/** The 4xx answer for an app we will not act on, or undefined when it is managed. */
export function refusal(
  lookup: AppLookup,
  config: Pick<AppConfig, "apps">,
): { status: number; error: string } | undefined {
  switch (lookup.kind) {
    case "managed":
      return undefined;
    case "notFound":
      return {
        status: 404,
        error: `Container app "${lookup.name}" does not exist in resource group ${config.apps.resourceGroup}.`,
      };
    case "unmanaged":
      return {
        status: 404,
        error: `Container app "${lookup.name}" is not managed by spire-autopilot: it lacks the tag ${config.apps.managedTag.name}=${config.apps.managedTag.value}.`,
      };
    case "skipped":
      return {
        status: 422,
        error: `Container app "${lookup.name}" is tagged as managed but cannot be: ${lookup.reason}.`,
      };
  }
}
