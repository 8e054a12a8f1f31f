import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { seedDeploy } from "../../sandbox/baseline/seed-deploy.js";
import { SANDBOX_SPIRE_VM, startSandbox } from "../../sandbox/environment.js";
import { createDemoFleet } from "../../sandbox/scenarios/demo-fleet.js";
import { agentsHolding } from "../../sandbox/scenarios/fleet.js";
import { NEVER } from "../../sandbox/scenarios/sweep-common.js";
import { pollUntil } from "../../sandbox/spire/index.js";
import { ensureSpire } from "../../scripts/install-spire.js";
import { agentAliasId } from "../../shared/spiffe/index.js";

/*
 * The seed baseline is only worth measuring if it really deploys: a never-attested app, after
 * the seed's sequence, has an attested agent holding its alias and a signed workload SVID, all
 * through run-commands on the simulated VM against the real SPIRE server.
 */
const TIME_SCALE = 10;

it("the seed baseline deploys a never-attested app: its agent attests and its workload SVID is signed", async () => {
  await ensureSpire();
  const stateDir = mkdtempSync(join(tmpdir(), "seed-baseline-"));
  const sb = await startSandbox({
    stateDir,
    port: 0,
    timeScale: TIME_SCALE,
    echoHost: false,
    log: () => undefined,
    // The product's own timers (the sweep lists the apps; the rotation reads the bundle) would add
    // ARM calls and run-commands to the window this test counts as the baseline's.
    settings: { HEALTH_SWEEP_SCHEDULE: NEVER, BUNDLE_ROTATION_SCHEDULE: NEVER },
  });
  try {
    const fleet = await createDemoFleet(sb, { managed: 1, prefix: "seed" });
    const app = fleet.managed[0]!;
    const td = sb.settings.SPIRE_TRUST_DOMAIN!;
    const before = sb.azure.counters.snapshot();
    const realStart = Date.now();
    const r = await seedDeploy({
      arm: {
        endpoint: sb.azure.url,
        caPem: sb.azure.caPem,
        subscriptionId: sb.azure.subscriptionId,
        credential: sb.azure.credential,
      },
      appsResourceGroup: sb.settings.APPS_RESOURCE_GROUP!,
      vm: SANDBOX_SPIRE_VM,
      trustDomain: td,
      apps: [app],
      clock: sb.clock,
    });
    const realSeconds = (Date.now() - realStart) / 1000;
    const after = sb.azure.counters.snapshot();

    // start + bundle + token + agent list + entry: one run-command each, all created and deleted.
    expect(r.runCommands).toBe(5);
    expect(after.runCommands.created - before.runCommands.created).toBe(5);
    expect(after.runCommands.deleted - before.runCommands.deleted).toBe(5);
    expect(after.runCommands.wedges).toBe(0);
    expect(after.containerApps.puts - before.containerApps.puts).toBe(1);
    expect(after.containerApps.patches - before.containerApps.patches).toBe(0);
    // Its own count covers at least the simulator's view of its requests (the simulator counts routed ARM actions).
    const simArm = Object.values(after.armCalls).reduce((a, b) => a + b, 0);
    const simArmBefore = Object.values(before.armCalls).reduce((a, b) => a + b, 0);
    expect(r.armCalls).toBeGreaterThanOrEqual(simArm - simArmBefore);
    expect(r.agentsListed).toBeGreaterThanOrEqual(1);
    // Sandbox seconds: 5 run-commands of >= 5 s poll + 10 s cooldown, plus 60 s and 30 s sleeps.
    expect(r.seconds).toBeGreaterThanOrEqual(5 * 15 + 90);
    // ...reported on the sandbox clock, not in real seconds.
    expect(r.seconds).toBeGreaterThan(realSeconds * TIME_SCALE * 0.8);

    const spire = sb.spire.client();
    try {
      expect(await agentsHolding(spire, agentAliasId(td, app))).toHaveLength(1);
      const entries = await spire.listEntries({ byParentId: agentAliasId(td, app) });
      expect(entries).toHaveLength(1);
      const workload = entries[0]!.spiffeId;
      await sb.spire.waitForLog((l) => l.msg === "Signed X509 SVID" && l.json?.spiffe_id === workload, {
        timeoutMs: 90_000,
        what: `a workload SVID for ${workload}`,
      });
    } finally {
      await spire.close();
    }
    // The app now runs its agent: the sidecar stays up.
    await pollUntil(
      "the sidecar to run",
      async () =>
        (await sb.azure.containerApps.replicas(sb.settings.APPS_RESOURCE_GROUP!, app)).length === 1
          ? true
          : undefined,
      { timeoutMs: 30_000, intervalMs: 250 },
    );
  } finally {
    await sb.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
}, 600_000);
