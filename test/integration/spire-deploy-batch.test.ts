/**
 * applyDeployBatch on both adapters against a real spire-server: the run-command adapter does the
 * whole batch (entries + tokens) in ONE run-command; a retried batch finds its entries existing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SpireServerHandle, startSpireServer } from "../../sandbox/spire/index.js";
import { LocalRunCommands } from "../../sandbox/spire/local-run-commands.js";
import { ensureSpire } from "../../scripts/install-spire.js";
import { agentAliasId } from "../../shared/spiffe/index.js";
import { ownedEntryId } from "../../shared/spire/entry-reconcile.js";
import type { GrpcSpireServer } from "../../shared/spire/grpc.js";
import { RunCommandSpireServer } from "../../shared/spire/runcommand/adapter.js";
import type { DeployBatchRequest, SpireServer } from "../../shared/spire/types.js";

const TD = "deploy-batch.example";
let server: SpireServerHandle;
let grpc: GrpcSpireServer;
let runCommands: LocalRunCommands;
let rc: RunCommandSpireServer;

beforeAll(async () => {
  const bins = await ensureSpire();
  server = await startSpireServer({ trustDomain: TD, bins });
  grpc = server.client();
  runCommands = new LocalRunCommands({ provisioningLagMs: 100 });
  rc = new RunCommandSpireServer({
    client: runCommands,
    resourceGroup: "rg-spire",
    vmName: "vm-spire",
    location: "westeurope",
    trustDomain: TD,
    exec: { kind: "direct", serverPath: bins.serverBin, socketPath: server.socketPath },
    pollIntervalMs: 50,
    cooldownMs: 20,
    timeoutSeconds: 60,
  });
}, 30 * 60_000);

afterAll(async () => {
  await runCommands?.settle();
  await grpc?.close();
  await server?.dispose();
});

function request(prefix: string, n: number): DeployBatchRequest {
  const apps = Array.from({ length: n }, (_, i) => `${prefix}${i}`);
  return {
    tokens: { aliases: apps.map((a) => agentAliasId(TD, a)), ttlSeconds: 900 },
    create: apps.map((a) => ({
      id: ownedEntryId(a),
      spiffeId: `spiffe://${TD}/ests/bp/${a}/aid/${a}`,
      parentId: agentAliasId(TD, a),
      selectors: [{ type: "unix", value: "uid:0" }],
      x509SvidTtl: 3600,
    })),
    update: [],
    delete: [],
  };
}

describe.each<[string, () => SpireServer, () => number]>([
  ["run-command", () => rc, () => runCommands.created.length],
  ["gRPC", () => grpc, () => runCommands.created.length],
])("applyDeployBatch (%s)", (mode, port, runCommandCount) => {
  it("creates entries and tokens, then finds them existing on a retry, and deletes", async () => {
    const prefix = mode === "gRPC" ? "g" : "r";
    const before = runCommandCount();
    const first = await port().applyDeployBatch(request(prefix, 7));
    expect(runCommandCount() - before).toBe(mode === "gRPC" ? 0 : 1);
    expect(first).toMatchObject({ created: 7, existed: 0, updated: 0, deleted: 0, failures: [] });
    expect(first.tokens.map((t) => t.alias)).toEqual(request(prefix, 7).tokens.aliases);
    const listed = await grpc.listEntries({ bySpiffeId: `spiffe://${TD}/ests/bp/${prefix}3/aid/${prefix}3` });
    expect(listed.map((e) => e.id)).toEqual([ownedEntryId(`${prefix}3`)]);

    const again = await port().applyDeployBatch({
      ...request(prefix, 7),
      tokens: { aliases: [], ttlSeconds: 900 },
    });
    expect(again).toMatchObject({ created: 0, existed: 7, failures: [] });

    const gone = await port().applyDeployBatch({
      tokens: { aliases: [], ttlSeconds: 900 },
      create: [],
      update: [{ ...request(prefix, 1).create[0]!, id: ownedEntryId(`${prefix}0`), x509SvidTtl: 600 }],
      delete: [ownedEntryId(`${prefix}1`), ownedEntryId(`${prefix}2`), "no-such-entry"],
    });
    expect(gone).toMatchObject({ updated: 1, deleted: 3, failures: [] });
  }, 120_000);
});
