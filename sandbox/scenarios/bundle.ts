import { readFileSync } from "node:fs";
import { SecretClient } from "@azure/keyvault-secrets";
import type { RotateBundleOutput } from "../../orchestrations/rotateBundle.js";
import { SandboxCredential } from "../../shared/azure/credential.js";
import { parseBundleTags } from "../../shared/trust/tags.js";
import type { Sandbox } from "../environment.js";
import { pollUntil } from "../spire/index.js";

/* What the trust bundle scenarios share: rotating now through the product, and reading Key Vault. */

export const BUNDLE_SECRET = "spire-trust-bundle";

interface RotationOperation {
  runtimeStatus: string;
  createdTime: string;
  output: RotateBundleOutput | null;
}

/**
 * POST /api/bundle/rotate and wait for the run it started (or joined) to finish; a run that
 * finished before the call does not count.
 */
export async function rotateNow(
  sb: Sandbox,
  reason: string,
  signal: AbortSignal,
): Promise<{ output: RotateBundleOutput; seconds: number }> {
  const key = sb.host.keys.functionKeys.default;
  const asked = Date.now();
  const res = await fetch(`${sb.host.url}/api/bundle/rotate?code=${key}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ reason }),
  });
  if (res.status !== 202)
    throw new Error(`POST /api/bundle/rotate answered ${res.status}: ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  const op = await pollUntil(
    "the bundle rotation to finish",
    async () => {
      const r = await fetch(`${sb.host.url}/api/operations/${id}?code=${key}`);
      if (r.status !== 200) return undefined;
      const o = (await r.json()) as RotationOperation;
      const done = ["Completed", "Failed", "Terminated"].includes(o.runtimeStatus);
      return done && Date.parse(o.createdTime) >= asked - 2_000 ? o : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 100, signal },
  );
  if (op.runtimeStatus !== "Completed" || !op.output) {
    throw new Error(`the rotation ended ${op.runtimeStatus}: ${JSON.stringify(op.output)}`);
  }
  return { output: op.output, seconds: Math.round((Date.now() - asked) / 100) / 10 };
}

export function vaultClient(sb: Sandbox): SecretClient {
  return new SecretClient(sb.settings.KEY_VAULT_URL!, new SandboxCredential(), {
    tlsOptions: { ca: readFileSync(sb.settings.KEY_VAULT_CA_CERT_FILE!, "utf8") },
    disableChallengeResourceVerification: true,
  });
}

export interface WrittenVersion {
  version: string;
  createdOn: Date;
  fingerprints: string[] | undefined;
}

/** Every version of the bundle secret, oldest first, with the roots its tags name. */
export async function bundleVersions(vault: SecretClient): Promise<WrittenVersion[]> {
  const out: WrittenVersion[] = [];
  for await (const p of vault.listPropertiesOfSecretVersions(BUNDLE_SECRET)) {
    const parsed = parseBundleTags(p.tags);
    out.push({
      version: p.version ?? "",
      createdOn: p.createdOn ?? new Date(0),
      fingerprints: parsed.complete ? parsed.summary.fingerprints : undefined,
    });
  }
  return out.sort((a, b) => a.createdOn.getTime() - b.createdOn.getTime());
}
