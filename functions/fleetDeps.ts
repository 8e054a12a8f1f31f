import type { AppConfig } from "../shared/config.js";
import { classifyApps } from "../shared/containerapp/apps.js";
import { tableFleetReader } from "../shared/fleet/reader.js";
import { getServices } from "../shared/services.js";
import { adminSvidStatus } from "../shared/trust/admin-status.js";
import { readAdminSecret } from "../shared/trust/admin-vault.js";
import { sameRoots, summarizeServerBundle } from "../shared/trust/summary.js";
import { readVaultBundle } from "../shared/trust/vault.js";
import type { FleetDeps } from "./fleet.js";

/** The fleet API's sources in the product: discovery by tag, the fleet table, SPIRE and Key Vault. */
export function productFleetDeps(config: AppConfig): FleetDeps {
  return {
    cooldownSeconds: config.alerts.cooldownSeconds,
    listApps: async () => {
      const apps = [];
      for await (const a of getServices(config).containerApps.containerApps.listByResourceGroup(
        config.apps.resourceGroup,
      )) {
        apps.push(a);
      }
      const { managed, skipped } = classifyApps(apps, {
        trustDomain: config.spire.trustDomain,
        apps: config.apps,
      });
      return { managed: managed.map((m) => m.name), skipped };
    },
    reader: tableFleetReader(() => getServices(config).fleetTable()),
    readAdminSvidExpiry: async () => {
      const grpc = config.spire.api === "grpc" ? config.spire.grpc : undefined;
      if (grpc?.transport !== "tcp") return null;
      const status = adminSvidStatus(
        config,
        await readAdminSecret(getServices(config).secrets, grpc.adminSvidSecretName),
        new Date(),
      );
      return status.adminSvid?.expiresAt ?? null;
    },
    readBundle: async () => {
      const [server, vault] = await Promise.allSettled([
        (async () => summarizeServerBundle(await (await getServices(config).spire()).getBundle()))(),
        readVaultBundle(getServices(config).secrets, config.keyVault.trustBundleSecretName),
      ]);
      const err = (r: PromiseRejectedResult) => ({
        error: String((r.reason as Error)?.message ?? r.reason).split("\n")[0],
      });
      const s = server.status === "fulfilled" ? server.value : err(server);
      const v = vault.status === "fulfilled" ? (vault.value ?? null) : err(vault);
      const match =
        server.status === "fulfilled" && vault.status === "fulfilled"
          ? vault.value !== undefined && sameRoots(server.value.fingerprints, vault.value.fingerprints)
          : null;
      return { server: s, vault: v, match };
    },
  };
}
