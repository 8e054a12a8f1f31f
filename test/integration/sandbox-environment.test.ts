import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { startSandbox } from "../../sandbox/environment.js";
import { ensureSpire } from "../../scripts/install-spire.js";
import { loadConfig } from "../../shared/config.js";

it("npm run sandbox's environment comes up whole, the product loads its config from it, and goes down", async () => {
  await ensureSpire();
  const stateDir = mkdtempSync(join(tmpdir(), "sandbox-env-"));
  const sandbox = await startSandbox({ stateDir, port: 0, echoHost: false, log: () => undefined });
  try {
    // The settings the host got are a valid product configuration pointing at local services.
    const config = loadConfig(sandbox.settings);
    expect(config.endpoints.arm.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+/);
    expect(config.endpoints.arm.ca).toContain("BEGIN CERTIFICATE");
    expect(config.logs.workspaceId).toBeDefined();
    expect(config.spire.api === "grpc" && config.spire.grpc).toMatchObject({
      transport: "unix",
      socketPath: sandbox.spire.socketPath,
    });

    const health = await fetch(`${sandbox.host.url}/api/health`);
    expect(await health.json()).toMatchObject({ status: "ok", trustDomain: "sandbox.spire-autopilot.test" });
    const spire = sandbox.spire.client();
    try {
      expect((await spire.health()).healthy).toBe(true);
    } finally {
      await spire.close();
    }
    expect(sandbox.describe()).toMatch(/ARM simulator {4}https:\/\/127\.0\.0\.1/);
    // Key Vault's events reach the product's Event Grid trigger: the handshake passed at start.
    expect(sandbox.keyVaultEvents?.name).toBe("spire-autopilot-trust-material");
    expect(sandbox.describe()).toMatch(
      /Event Grid .*Microsoft\.KeyVault\/vaults\/.* → keyVaultEvents \(spire-trust-bundle\)/,
    );
  } finally {
    await sandbox.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
  expect(sandbox.spire.running).toBe(false);
}, 300_000);
