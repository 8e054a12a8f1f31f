import { ContainerAppsAPIClient } from "@azure/arm-appcontainers";
import { ComputeManagementClient } from "@azure/arm-compute";
import type { TokenCredential } from "@azure/core-auth";
import { LogsQueryClient } from "@azure/monitor-query-logs";
import type { AppConfig, ServiceEndpoint } from "../config.js";
import { createCredential } from "./credential.js";

/*
 * Every Azure client the product uses, built from config: each takes its endpoint and, when set,
 * the CA that signs that endpoint's certificate, so the same code talks to Azure or to the local
 * simulator. Token scopes stay the public-cloud ones; the simulator accepts them.
 */

const ARM_SCOPE = "https://management.azure.com/.default";
const LOGS_SCOPE = "https://api.loganalytics.io/.default";

function tls(endpoint: ServiceEndpoint) {
  return endpoint.ca ? { tlsOptions: { ca: endpoint.ca } } : {};
}

export interface AzureClients {
  credential: TokenCredential;
  containerApps: ContainerAppsAPIClient;
  compute: ComputeManagementClient;
  /** Undefined when no Log Analytics workspace is configured. */
  logs?: LogsQueryClient;
}

export function createAzureClients(
  config: AppConfig,
  credential = createCredential(config.azure),
): AzureClients {
  const { arm, logs } = config.endpoints;
  const armOptions = { endpoint: arm.url, credentials: { scopes: [ARM_SCOPE] }, ...tls(arm) };
  return {
    credential,
    containerApps: new ContainerAppsAPIClient(credential, config.azure.subscriptionId, armOptions),
    compute: new ComputeManagementClient(credential, config.azure.subscriptionId, armOptions),
    logs: config.logs.workspaceId
      ? new LogsQueryClient(credential, {
          endpoint: logs.url,
          credentials: { scopes: [LOGS_SCOPE] },
          ...tls(logs),
        })
      : undefined,
  };
}
