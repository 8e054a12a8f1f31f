import { useAzureMonitor } from "@azure/monitor-opentelemetry";

/*
 * Application Insights through Microsoft's OpenTelemetry distro, set up as the Functions Node docs
 * describe: once, before the app's other modules load (functions/index.ts imports this first),
 * and only when the app has a connection string: locally and in the sandbox it does nothing, and
 * the metrics API stays a no-op unless a test installs its own MeterProvider.
 */

export function startTelemetry(env: NodeJS.ProcessEnv = process.env): boolean {
  const connectionString = env.APPLICATIONINSIGHTS_CONNECTION_STRING;
  if (!connectionString) return false;
  useAzureMonitor({ azureMonitorExporterOptions: { connectionString } });
  return true;
}

startTelemetry();
