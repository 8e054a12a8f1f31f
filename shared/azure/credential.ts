import type { AccessToken, TokenCredential } from "@azure/core-auth";
import { DefaultAzureCredential, ManagedIdentityCredential } from "@azure/identity";
import type { AppConfig } from "../config.js";

/**
 * The local simulator accepts any bearer token; this one is fixed and clearly fake. Used only when
 * AZURE_CREDENTIAL=sandbox, so production code paths stay the same against the simulator.
 */
export class SandboxCredential implements TokenCredential {
  async getToken(): Promise<AccessToken> {
    return { token: "sandbox-token-not-a-secret", expiresOnTimestamp: Date.now() + 3_600_000 };
  }
}

export function createCredential(azure: AppConfig["azure"]): TokenCredential {
  switch (azure.credential) {
    case "sandbox":
      return new SandboxCredential();
    case "managed-identity":
      return azure.clientId
        ? new ManagedIdentityCredential({ clientId: azure.clientId })
        : new ManagedIdentityCredential();
    default:
      return new DefaultAzureCredential(azure.clientId ? { managedIdentityClientId: azure.clientId } : {});
  }
}
