import type { AppConfig } from "../shared/config.js";
import { discoverApps } from "../shared/containerapp/discover.js";
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
      const { verdicts } = await discoverApps(getServices(config).containerApps, config);
      const managed: string[] = [];
      const skipped: Array<{ name: string; reason: string }> = [];
      for (const v of verdicts) {
        if (v.kind === "managed") managed.push(v.app.name);
        else if (v.kind === "skipped") skipped.push({ name: v.name, reason: v.reason });
      }
      return { managed, skipped };
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
