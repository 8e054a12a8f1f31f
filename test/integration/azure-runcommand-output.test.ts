/**
 * Output past the instance view's 4 KB (issue 9, defect 5), and sealed output (defect 4), with a
 * real spire-server holding 200 attested agents and 200 entries: through the simulator's VM, the
 * run-command adapter reads all of them from the output blob the VM wrote to Azurite; without an
 * output blob the same calls are cut off. None of the 200 tokens (every agent ID embeds one)
 * shows in anything ARM served or was sent, nor in the output blobs.
 */
import { BlobServiceClient } from "@azure/storage-blob";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spireServerContainer } from "../../sandbox/azure/compute/spire-container.js";
import { type AzureSimulator, FAST_PROFILE, startAzureSimulator } from "../../sandbox/azure/index.js";
import { type AzuriteHandle, startAzurite } from "../../sandbox/emulators/azurite.js";
import { attestJoinTokenAgents } from "../../sandbox/spire/attest.js";
import { type SpireServerHandle, startSpireServer } from "../../sandbox/spire/index.js";
import { secretsInArm } from "../../sandbox/spire/runcommand-hosts.js";
import { ensureSpire } from "../../scripts/install-spire.js";
import {
  blobOutputStore,
  OUTPUT_CONTAINER,
  runCommandVmLock,
} from "../../shared/azure/runcommand-storage.js";
import { armRunCommandsClient } from "../../shared/azure/runcommands.js";
import type { GrpcSpireServer } from "../../shared/spire/grpc.js";
import {
  RunCommandSpireServer,
  type RunCommandSpireServerOptions,
} from "../../shared/spire/runcommand/adapter.js";

const TD = "output.sandbox.test";
const RG = "rg-spire";
const VM = "vm-spire";
const N = 200;

let server: SpireServerHandle;
let grpc: GrpcSpireServer;
let azurite: AzuriteHandle;
let sim: AzureSimulator;
let blobs: BlobServiceClient;
let tokens: string[] = [];

beforeAll(async () => {
  const bins = await ensureSpire();
  server = await startSpireServer({ trustDomain: TD, bins, logLevel: "INFO", attestationRateLimit: false });
  grpc = server.client();
  azurite = await startAzurite();
  blobs = BlobServiceClient.fromConnectionString(azurite.connectionString);
  sim = await startAzureSimulator({
    profile: { ...FAST_PROFILE, runCommandPickupMs: 30, provisioningLagMs: 100, runCommandDeleteMs: 50 },
    vms: [
      { resourceGroup: RG, name: VM, spireServer: spireServerContainer(server), startedAgoMs: 3_600_000 },
    ],
  });
  const aliases = Array.from({ length: N }, (_, i) => `spiffe://${TD}/agent/app-${i}`);
  const t0 = Date.now();
  const created = await grpc.createJoinTokens(aliases, 600);
  console.log(JSON.stringify({ figures: "tokens", ms: Date.now() - t0 }));
  tokens = created.map((t) => t.value);
  await attestJoinTokenAgents(
    { address: server.bindAddress, port: server.port, trustDomain: TD, bundlePem: await server.bundlePem() },
    tokens,
  );
  console.log(JSON.stringify({ figures: "attested", ms: Date.now() - t0 }));
  const results = await grpc.createEntries(
    aliases.map((alias, i) => ({
      spiffeId: `spiffe://${TD}/workload/app-${i}`,
      parentId: alias,
      selectors: [{ type: "unix", value: `uid:${1000 + i}` }],
    })),
  );
  expect(results.filter((r) => r.status === "created")).toHaveLength(N);
}, 30 * 60_000);

afterAll(async () => {
  await grpc?.close();
  await sim?.stop();
  await azurite?.stop();
  await server?.dispose();
});

function adapter(extra: Partial<RunCommandSpireServerOptions> = {}): RunCommandSpireServer {
  return new RunCommandSpireServer({
    client: armRunCommandsClient(sim.clients().compute),
    resourceGroup: RG,
    vmName: VM,
    location: "eastus",
    trustDomain: TD,
    pollIntervalMs: 50,
    cooldownMs: 100,
    timeoutSeconds: 60,
    lock: runCommandVmLock(blobs, { resourceGroup: RG, name: VM }),
    ...extra,
  });
}

describe("run-command output past 4 KB", () => {
  it(`reads ${N} agents and ${N} entries from the output blob the VM wrote`, async () => {
    const viaVm = adapter({ outputStore: blobOutputStore({ service: blobs, vmName: VM }) });
    try {
      const before = sim.counters.snapshot().runCommands.outputBlobsWritten;
      const agents = await viaVm.listAgents();
      const entries = await viaVm.listEntries({});
      expect(agents).toHaveLength(N);
      expect(new Set(agents.map((a) => a.id))).toEqual(
        new Set(tokens.map((t) => `spiffe://${TD}/spire/agent/join_token/${t}`)),
      );
      expect(entries.filter((e) => e.spiffeId.startsWith(`spiffe://${TD}/workload/`))).toHaveLength(N);
      expect(sim.counters.snapshot().runCommands.outputBlobsWritten - before).toBe(2);
      // The blobs were read and removed; while they lived, they held only sealed output.
      const left: string[] = [];
      for await (const b of blobs.getContainerClient(OUTPUT_CONTAINER).listBlobsFlat()) left.push(b.name);
      expect(left).toEqual([]);
    } finally {
      await viaVm.close();
    }
  }, 120_000);

  it("without an output blob the same list is cut off at the instance view's 4 KB", async () => {
    const viaVm = adapter();
    try {
      await expect(viaVm.listAgents()).rejects.toThrow(/cut off|printed nothing/);
    } finally {
      await viaVm.close();
    }
  }, 60_000);

  it("no token and no private key is in anything ARM served or was sent", () => {
    expect(sim.transcript.runCommandResponses().length).toBeGreaterThan(4);
    expect(secretsInArm(sim, tokens)).toBe(0);
  });
});
