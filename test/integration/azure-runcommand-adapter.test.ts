/**
 * The run-command SpireServer adapter end to end: the real @azure/arm-compute client, the
 * simulator's run-commands (both state machines, wedge rules on, a VM that stays "fresh"), the
 * docker shim and a real spire-server. One batch of 5 tokens + 5 workload entries is one
 * run-command; 20 batches back to back never wedge the VM; a naive client that deletes as soon
 * as executionState says Succeeded does (#20).
 */
import type { ComputeManagementClient } from "@azure/arm-compute";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spireServerContainer } from "../../sandbox/azure/compute/spire-container.js";
import { type AzureSimulator, FAST_PROFILE, startAzureSimulator } from "../../sandbox/azure/index.js";
import { type SpireServerHandle, startSpireServer } from "../../sandbox/spire/index.js";
import { ensureSpire } from "../../scripts/install-spire.js";
import { armRunCommandsClient } from "../../shared/azure/runcommands.js";
import type { GrpcSpireServer } from "../../shared/spire/grpc.js";
import { entriesJson, RunCommandSpireServer } from "../../shared/spire/runcommand/adapter.js";
import type { CliCall } from "../../shared/spire/runcommand/script.js";
import { waitFor } from "./azure-fixtures.js";

const TD = "adapter.sandbox.test";
const RG = "rg-spire";
const VM = "vm-spire";

let server: SpireServerHandle;
let grpc: GrpcSpireServer;
let sim: AzureSimulator;
let compute: ComputeManagementClient;
let adapter: RunCommandSpireServer;

beforeAll(async () => {
  const bins = await ensureSpire();
  server = await startSpireServer({ trustDomain: TD, bins, logLevel: "INFO" });
  grpc = server.client();
  sim = await startAzureSimulator({
    // The VM stays fresh, so every create is subject to the cooldown rule of #34.
    profile: {
      ...FAST_PROFILE,
      vmFreshMs: 3_600_000,
      runCommandPickupMs: 30,
      provisioningLagMs: 150,
      runCommandDeleteMs: 50,
      wedgeCooldownMs: 200,
    },
    vms: [{ resourceGroup: RG, name: VM, spireServer: spireServerContainer(server) }],
  });
  compute = sim.clients().compute;
  adapter = new RunCommandSpireServer({
    client: armRunCommandsClient(compute),
    resourceGroup: RG,
    vmName: VM,
    location: "eastus",
    trustDomain: TD,
    // The seed's default: docker exec -i spire-server /opt/spire/bin/spire-server
    pollIntervalMs: 40,
    cooldownMs: 250,
    timeoutSeconds: 60,
  });
}, 30 * 60_000);

afterAll(async () => {
  await adapter?.close();
  await grpc?.close();
  await sim?.stop();
  await server?.dispose();
});

describe("run-command adapter through the simulator", () => {
  it("runs tokens for 5 apps and 5 workload entries as one run-command and parses the results", async () => {
    const apps = ["app-a", "app-b", "app-c", "app-d", "app-e"];
    const calls: CliCall[] = [
      ...apps.map(
        (app): CliCall => ({ op: "token_generate", alias: `spiffe://${TD}/agent/${app}`, ttl: 600 }),
      ),
      {
        op: "entry_create",
        entriesJson: entriesJson(
          apps.map((app) => ({
            spiffeId: `spiffe://${TD}/ests/bp/bp-1/aid/${app}`,
            parentId: `spiffe://${TD}/agent/${app}`,
            selectors: [{ type: "unix", value: "uid:0" }],
            x509SvidTtl: 3600,
          })),
        ),
      },
    ];
    const before = sim.counters.snapshot().runCommands;
    const outputs = await adapter.runCalls(calls);
    const after = sim.counters.snapshot().runCommands;
    expect(after.created - before.created).toBe(1);
    expect(after.scriptsRun - before.scriptsRun).toBe(1);
    expect(outputs.map((o) => o.exitCode)).toEqual([0, 0, 0, 0, 0, 0]);
    const tokens = outputs.slice(0, 5).map((o) => (JSON.parse(o.stdout) as { value: string }).value);
    expect(new Set(tokens).size).toBe(5);
    for (const t of tokens) expect(t).toMatch(/^[0-9a-f-]{36}$/);
    const created = JSON.parse(outputs[5]?.stdout ?? "") as { results: { status: { code: number } }[] };
    expect(created.results.map((r) => r.status.code)).toEqual([0, 0, 0, 0, 0]);
    // The real server has them.
    for (const app of apps) {
      const entries = await grpc.listEntries({ bySpiffeId: `spiffe://${TD}/ests/bp/bp-1/aid/${app}` });
      expect(entries).toHaveLength(1);
      expect(entries[0]?.parentId).toBe(`spiffe://${TD}/agent/${app}`);
    }
    expect(sim.compute.vm(RG, VM).runCommands()).toEqual([]);
    expect(sim.counters.wedges).toBe(0);
  });

  it("serves the SpireServer port: health, tokens, bundle, agents", async () => {
    expect(await adapter.health()).toEqual({ healthy: true, detail: "Server is healthy." });
    const [token] = await adapter.createJoinTokens([`spiffe://${TD}/agent/app-f`], 600);
    expect(token?.agentId).toBe(`spiffe://${TD}/spire/agent/join_token/${token?.value}`);
    const bundle = await adapter.getBundle();
    expect(bundle.pem).toBe(await server.bundlePem());
    expect(await adapter.listAgents()).toEqual([]);
    expect(sim.counters.wedges).toBe(0);
  });

  it("20 batches back to back leave the wedge counter at 0", async () => {
    const started = Date.now();
    for (let i = 0; i < 20; i++) {
      if (i % 2 === 0) expect((await adapter.health()).healthy).toBe(true);
      else await adapter.createJoinTokens([`spiffe://${TD}/agent/batch-${i}`], 600);
    }
    expect(sim.counters.wedges).toBe(0);
    expect(sim.compute.vm(RG, VM).wedged).toBe(false);
    expect(sim.counters.snapshot().runCommands.blockedByWedge).toBe(0);
    expect(Date.now() - started).toBeLessThan(60_000);
  });

  it("a naive client that deletes as soon as executionState says Succeeded wedges the VM", async () => {
    const rc = compute.virtualMachineRunCommands;
    // Past the fresh-VM cooldown after the adapter's last delete, so only the early delete wedges.
    await new Promise((r) => setTimeout(r, 300));
    await rc
      .createOrUpdate(RG, VM, "naive-1", {
        location: "eastus",
        source: { script: "docker exec spire-server /opt/spire/bin/spire-server healthcheck" },
      })
      .submitted();
    await waitFor("executionState Succeeded", async () => {
      const v = await rc.getByVirtualMachine(RG, VM, "naive-1", { expand: "instanceView" });
      return v.instanceView?.executionState === "Succeeded" ? v : undefined;
    });
    await rc.delete(RG, VM, "naive-1").pollUntilDone();
    expect(sim.counters.wedges).toBe(1);
    expect(sim.compute.vm(RG, VM).wedgeReason).toMatch(/deleted while provisioningState was Creating/);
    await sim.compute.vm(RG, VM).reset();
  });
});
