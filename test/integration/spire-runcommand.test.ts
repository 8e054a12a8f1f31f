/**
 * The run-command adapter's scripts executed by bash against the real spire-server CLI (direct
 * exec mode, the parameters as environment variables as on a Linux VM): proves the script and
 * the parsing against SPIRE's real `-output json`. The Azure side (simulator) is a later issue.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type SpireAgentHandle,
  type SpireServerHandle,
  startSpireAgent,
  startSpireServer,
} from "../../sandbox/spire/index.js";
import { LocalRunCommands } from "../../sandbox/spire/local-run-commands.js";
import { ensureSpire } from "../../scripts/install-spire.js";
import { agentAliasId } from "../../shared/spiffe/index.js";
import { rootFingerprints } from "../../shared/spire/bundle.js";
import type { GrpcSpireServer } from "../../shared/spire/grpc.js";
import { RunCommandSpireServer } from "../../shared/spire/runcommand/adapter.js";

const TD = "spire-rc.example";

let server: SpireServerHandle;
let grpc: GrpcSpireServer;
let runCommands: LocalRunCommands;
let rc: RunCommandSpireServer;
let agent: SpireAgentHandle | undefined;

beforeAll(async () => {
  const bins = await ensureSpire();
  server = await startSpireServer({ trustDomain: TD, bins });
  grpc = server.client();
  runCommands = new LocalRunCommands({ provisioningLagMs: 150 });
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
  await agent?.dispose();
  await grpc?.close();
  await server?.dispose();
});

describe("run-command adapter against the real spire-server CLI", () => {
  it("health", async () => {
    expect(await rc.health()).toEqual({ healthy: true, detail: "Server is healthy." });
  });

  it("creates join tokens in one script, and an agent attests with one", async () => {
    const before = runCommands.created.length;
    const tokens = await rc.createJoinTokens([agentAliasId(TD, "app1"), agentAliasId(TD, "app2")], 600);
    expect(runCommands.created.length - before).toBe(1);
    expect(tokens.map((t) => t.alias)).toEqual([agentAliasId(TD, "app1"), agentAliasId(TD, "app2")]);
    const aliases = await rc.listEntries({ byParentId: tokens[0]?.agentId });
    expect(aliases.map((e) => e.spiffeId)).toEqual([agentAliasId(TD, "app1")]);

    const bundlePath = join(server.dir, "bundle.pem");
    await server.writeBundle(bundlePath);
    agent = await startSpireAgent({
      serverAddress: server.bindAddress,
      serverPort: server.port,
      trustDomain: TD,
      trustBundlePath: bundlePath,
      joinToken: tokens[0]?.value,
      bins: server.bins,
    });
    await agent.waitHealthy(30_000);
    const listed = await rc.listAgents({ byAttestationType: "join_token", byBanned: false });
    expect(listed.map((a) => a.id)).toEqual([tokens[0]?.agentId]);
    expect(listed).toEqual(await grpc.listAgents());

    // Every run-command was deleted, and only after both states were terminal (LocalRunCommands throws otherwise).
    await runCommands.settle();
    expect(runCommands.deleted.length).toBe(runCommands.created.length);
  });

  it("entries: create (idempotent), update, list, delete", async () => {
    const spec = {
      spiffeId: `spiffe://${TD}/ests/bp/1a2b3c4d-0000-4000-8000-0000000000bb/aid/1a2b3c4d-0000-4000-8000-0000000000aa`,
      parentId: agentAliasId(TD, "app1"),
      selectors: [{ type: "unix", value: "uid:0" }],
      x509SvidTtl: 3600,
    };
    const [created] = await rc.createEntries([spec]);
    expect(created?.status).toBe("created");
    const [again] = await rc.createEntries([spec]);
    expect(again).toMatchObject({ status: "exists" });
    expect(
      again?.status === "exists" && created?.status === "created" && again.entry.id === created.entry.id,
    ).toBe(true);

    const listed = await rc.listEntries({ bySpiffeId: spec.spiffeId });
    expect(listed).toEqual(await grpc.listEntries({ bySpiffeId: spec.spiffeId }));

    const id = listed[0]?.id as string;
    const [updated] = await rc.updateEntries([{ ...spec, id, x509SvidTtl: 1200 }]);
    expect(updated).toMatchObject({ status: "updated", entry: { id, x509SvidTtl: 1200 } });

    expect(await rc.deleteEntries([id, "00000000-0000-4000-8000-00000000dead"])).toEqual([
      { status: "deleted", id },
      { status: "not_found", id: "00000000-0000-4000-8000-00000000dead" },
    ]);
  });

  it("bundle matches the gRPC view", async () => {
    const viaRc = await rc.getBundle();
    const viaGrpc = await grpc.getBundle();
    expect(rootFingerprints(viaRc)).toEqual(rootFingerprints(viaGrpc));
    expect(viaRc.pem).toBe(viaGrpc.pem);
    expect(viaRc.sequenceNumber).toBe(viaGrpc.sequenceNumber);
  });

  it("evicts an agent (and its alias), then reports it gone", async () => {
    const [tok] = await grpc.listAgents();
    const agentId = tok?.id as string;
    await agent?.stop();
    expect(await rc.deleteAgent(agentId)).toEqual({ deleted: true });
    expect(await rc.listEntries({ byParentId: agentId })).toEqual([]);
    expect(await rc.deleteAgent(agentId)).toEqual({ deleted: false });
  });

  it("reports a server that is down as unhealthy", async () => {
    await server.stop();
    try {
      const h = await rc.health();
      expect(h.healthy).toBe(false);
      await expect(rc.listAgents()).rejects.toMatchObject({ code: "UNAVAILABLE" });
    } finally {
      await server.restart();
    }
  });
});
