import { readFileSync } from "node:fs";
import type { ContainerApp } from "@azure/arm-appcontainers";
import { SecretClient } from "@azure/keyvault-secrets";
import { SandboxCredential } from "../../shared/azure/credential.js";
import { agentAliasId, workloadId } from "../../shared/spiffe/index.js";
import type { SpireServer } from "../../shared/spire/types.js";
import type { Sandbox } from "../environment.js";
import { pollUntil } from "../spire/index.js";

/*
 * A fleet deployed the way the seed deployment did it by hand (one token per app, a workload entry
 * under each alias, the full spec with the token in a secret and the bundle in plain env), so the
 * scenarios start from a running fleet of real agents. The product's own deploy workflow replaces
 * this in a later issue.
 */

export interface FleetApp {
  name: string;
  alias: string;
  workloadId: string;
}

const oid = (app: string, kind: number) => {
  const hex = Buffer.from(`${app}:${kind}`).toString("hex").padEnd(12, "0").slice(0, 12);
  return `${kind}${kind}${kind}${kind}${kind}${kind}${kind}${kind}-0000-4000-8000-${hex}`;
};

export function fleetAppSpec(
  sandbox: Sandbox,
  name: string,
  joinToken: string,
  bundlePem: string,
): ContainerApp {
  const rg = sandbox.settings.APPS_RESOURCE_GROUP!;
  return {
    location: "westeurope",
    tags: {
      "spire-autopilot": "managed",
      "spiffe-blueprint-oid": oid(name, 1),
      "spiffe-agent-oid": oid(name, 2),
    },
    environmentId: `/subscriptions/${sandbox.azure.subscriptionId}/resourceGroups/${rg}/providers/Microsoft.App/managedEnvironments/env-sandbox`,
    configuration: { activeRevisionsMode: "Single", secrets: [{ name: "join-token", value: joinToken }] },
    template: {
      revisionSuffix: "v1",
      containers: [
        {
          name: name,
          image: "example.azurecr.io/agent:1.0",
          env: [
            { name: "PORT", value: "8080" },
            { name: "LOG_LEVEL", value: "info" },
          ],
          resources: { cpu: 0.5, memory: "1Gi" },
        },
        {
          name: `${name}-spiffe-proxy`,
          image: "example.azurecr.io/spiffe-proxy:1.0",
          env: [
            { name: "CONTAINER_MODE", value: "agent-proxy" },
            { name: "JOIN_TOKEN", secretRef: "join-token" },
            { name: "SPIRE_TRUST_BUNDLE", value: bundlePem },
            { name: "SPIRE_SERVER_ADDR", value: "spire-server:8081" },
          ],
        },
      ],
      scale: { minReplicas: 1, maxReplicas: 1 },
    },
  };
}

/** The agent IDs holding `alias` (one per attested join token), from the alias entries' parents. */
export async function agentsHolding(spire: SpireServer, alias: string): Promise<string[]> {
  const entries = await spire.listEntries({ bySpiffeId: alias });
  const agents = new Set((await spire.listAgents()).map((a) => a.id));
  return entries.map((e) => e.parentId).filter((id) => agents.has(id));
}

export async function deployFleet(
  sandbox: Sandbox,
  names: string[],
  log: (m: string) => void,
  /** False when the product's own rotation has written the Key Vault bundle already. */
  options: { writeBundle?: boolean } = {},
): Promise<FleetApp[]> {
  const td = sandbox.settings.SPIRE_TRUST_DOMAIN!;
  const rg = sandbox.settings.APPS_RESOURCE_GROUP!;
  const spire = sandbox.spire.client();
  try {
    const bundle = await spire.getBundle();
    if (options.writeBundle !== false) {
      const vault = new SecretClient(sandbox.settings.KEY_VAULT_URL!, new SandboxCredential(), {
        tlsOptions: { ca: readFileSync(sandbox.settings.KEY_VAULT_CA_CERT_FILE!, "utf8") },
        disableChallengeResourceVerification: true,
      });
      await vault.setSecret("spire-trust-bundle", bundle.pem, { contentType: "application/x-pem-file" });
    }

    const apps = names.map((name) => {
      const tags = fleetAppSpec(sandbox, name, "", "").tags!;
      return {
        name,
        alias: agentAliasId(td, name),
        workloadId: workloadId(td, tags["spiffe-blueprint-oid"]!, tags["spiffe-agent-oid"]!),
      };
    });
    const tokens = await spire.createJoinTokens(
      apps.map((a) => a.alias),
      600,
    );
    const created = await spire.createEntries(
      apps.map((a) => ({
        spiffeId: a.workloadId,
        parentId: a.alias,
        selectors: [{ type: "unix", value: "uid:0" }],
      })),
    );
    const failed = created.filter((c) => c.status === "failed");
    if (failed.length > 0) throw new Error(`workload entries failed: ${JSON.stringify(failed)}`);
    const { containerApps } = sandbox.azure.clients();
    await Promise.all(
      apps.map((a, i) =>
        containerApps.containerApps.createOrUpdate(
          rg,
          a.name,
          fleetAppSpec(sandbox, a.name, tokens[i]!.value, bundle.pem),
        ),
      ),
    );
    log(
      `deployed ${apps.length} apps; waiting for their agents to attest and their workload SVIDs to be signed`,
    );
    for (const a of apps) {
      await pollUntil(
        `the agent of ${a.name} to attest`,
        async () => ((await agentsHolding(spire, a.alias)).length === 1 ? true : undefined),
        { timeoutMs: 60_000, intervalMs: 250 },
      );
      await sandbox.spire.waitForLog(
        (l) => l.msg === "Signed X509 SVID" && l.json?.spiffe_id === a.workloadId,
        { timeoutMs: 60_000, what: `an SVID for ${a.workloadId}` },
      );
    }
    return apps;
  } finally {
    await spire.close();
  }
}
