import { createRequire } from "node:module";
import type * as AzureMonitor from "@azure/monitor-opentelemetry";

/*
 * Application Insights through Microsoft's OpenTelemetry distro, set up as the Functions Node docs
 * describe: once, before the app's other modules load (functions/index.ts imports this module
 * first), and only when the app has a connection string. The distro is required synchronously in
 * that case only: a static import would cost every start ~2 s of module loading even where it is
 * unused (locally, the sandbox, tests), and a dynamic import() would let the app's other modules
 * load before it. Without a connection string the metrics API stays a no-op unless a test installs
 * its own MeterProvider.
 */

const require = createRequire(import.meta.url);

export function startTelemetry(env: NodeJS.ProcessEnv = process.env): boolean {
  const connectionString = env.APPLICATIONINSIGHTS_CONNECTION_STRING;
  if (!connectionString) return false;
  const { useAzureMonitor } = require("@azure/monitor-opentelemetry") as typeof AzureMonitor;
  useAzureMonitor({ azureMonitorExporterOptions: { connectionString } });
  return true;
}

/** Flushes and stops the distro (tests; a host shutting down). */
export async function stopTelemetry(): Promise<void> {
  const { shutdownAzureMonitor } = require("@azure/monitor-opentelemetry") as typeof AzureMonitor;
  await shutdownAzureMonitor();
}

startTelemetry();
