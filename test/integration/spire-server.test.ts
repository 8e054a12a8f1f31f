/**
 * The real spire-server and spire-agent (v1.15.3, built or reused by scripts/install-spire.ts)
 * driven through the gRPC adapter: the SPIRE behaviour the product relies on.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  adminTcpTarget,
  mintAdminSvid,
  type SpireAgentHandle,
  type SpireAgentOptions,
  type SpireServerHandle,
  startSpireAgent,
  startSpireServer,
} from "../../sandbox/spire/index.js";
import { ensureSpire } from "../../scripts/install-spire.js";
import { agentAliasId, workloadId } from "../../shared/spiffe/index.js";
import { rootFingerprints } from "../../shared/spire/bundle.js";
import { SpireApiError } from "../../shared/spire/errors.js";
import { GrpcSpireServer } from "../../shared/spire/grpc.js";
import type { JoinToken } from "../../shared/spire/types.js";

const TD = "spire-it.example";
const ADMIN_ID = `spiffe://${TD}/autopilot/admin`;
const BP = "1a2b3c4d-0000-4000-8000-0000000000bb";
const AID = "1a2b3c4d-0000-4000-8000-0000000000aa";
const WORKLOAD = workloadId(TD, BP, AID);
const UID = process.getuid?.() ?? 0;

let server: SpireServerHandle;
let api: GrpcSpireServer;
let bundlePath: string;
const agents: SpireAgentHandle[] = [];
const clients: GrpcSpireServer[] = [];

async function agent(joinToken: string, extra: Partial<SpireAgentOptions> = {}): Promise<SpireAgentHandle> {
  const a = await startSpireAgent({
    serverAddress: server.bindAddress,
    serverPort: server.port,
    trustDomain: TD,
    trustBundlePath: bundlePath,
    joinToken,
    bins: server.bins,
    ...extra,
  });
  agents.push(a);
  return a;
}

function tcpClient(creds?: { certChainPem: string; keyPem: string }, serverId?: string): GrpcSpireServer {
  const c = new GrpcSpireServer({
    trustDomain: TD,
    callTimeoutMs: 5_000,
    readAttempts: 1,
    target: {
      kind: "tcp",
      host: server.bindAddress,
      port: server.port,
      trustBundlePem: "",
      clientCertChainPem: creds?.certChainPem,
      clientKeyPem: creds?.keyPem,
      serverId,
    },
  });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  // Builds SPIRE on a fresh machine (minutes); instant when cached.
  const bins = await ensureSpire();
  server = await startSpireServer({
    trustDomain: TD,
    adminIds: [ADMIN_ID],
    caTtl: "2h",
    defaultX509SvidTtl: "20m",
    bins,
  });
  api = server.client();
  bundlePath = join(server.dir, "bundle.pem");
  await server.writeBundle(bundlePath);
}, 30 * 60_000);

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await Promise.allSettled(agents.map((a) => a.dispose()));
  await api?.close();
  await server?.dispose();
});

describe("real SPIRE through the gRPC adapter", () => {
  let token: JoinToken;
  let first: SpireAgentHandle;

  it("is healthy over the admin socket", async () => {
    expect(await api.health()).toEqual({ healthy: true, detail: "grpc health: SERVING" });
  });

  it("a join token attests once; a second agent with the same token is refused", async () => {
    [token] = (await api.createJoinTokens([agentAliasId(TD, "app1")], 600)) as [JoinToken];
    expect(token.agentId).toBe(`spiffe://${TD}/spire/agent/join_token/${token.value}`);
    expect(token.expiresAt.getTime()).toBeGreaterThan(Date.now() + 500_000);

    const mark = server.logs.mark();
    first = await agent(token.value, { name: "first" });
    await first.waitHealthy(30_000);
    await server.waitForLog(
      (l) => l.msg === "Agent attestation request completed" && l.json?.agent_id === token.agentId,
      { since: mark, what: "the attestation of the first agent" },
    );

    const reuseMark = server.logs.mark();
    const second = await agent(token.value, { name: "second" });
    const refused = await server.waitForLog(/join token does not exist or has already been used/, {
      since: reuseMark,
      timeoutMs: 30_000,
    });
    expect(refused.level).toBe("error");
    expect(await second.healthcheck()).toBe(false);
    await second.dispose();

    const attested = (await api.listAgents()).filter((a) => a.id === token.agentId);
    expect(attested).toHaveLength(1);
    expect(attested[0]).toMatchObject({ attestationType: "join_token", banned: false, canReattest: false });
    expect(attested[0]?.x509SvidExpiresAt?.getTime()).toBeGreaterThan(Date.now());
  });

  it("the alias entry exists under the token's agent ID", async () => {
    const entries = await api.listEntries({ byParentId: token.agentId });
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      spiffeId: agentAliasId(TD, "app1"),
      parentId: token.agentId,
      selectors: [{ type: "spiffe_id", value: token.agentId }],
    });
  });

  it("a workload entry parented to the alias gets an SVID signed and served", async () => {
    const mark = server.logs.mark();
    const [created] = await api.createEntries([
      {
        spiffeId: WORKLOAD,
        parentId: agentAliasId(TD, "app1"),
        selectors: [{ type: "unix", value: `uid:${UID}` }],
        x509SvidTtl: 600,
      },
    ]);
    expect(created?.status).toBe("created");
    const signed = await server.waitForLog(
      (l) => l.msg === "Signed X509 SVID" && l.json?.spiffe_id === WORKLOAD,
      {
        since: mark,
        timeoutMs: 30_000,
        what: "Signed X509 SVID for the workload",
      },
    );
    expect(signed.level).toBe("debug");
    const svid = await first.waitForWorkloadSvid(WORKLOAD, { timeoutMs: 30_000 });
    expect(svid.notAfter.getTime()).toBeGreaterThan(Date.now());
    // The log's serial is decimal; the served certificate is the one that was signed.
    expect(BigInt(`0x${svid.serialNumber}`)).toBe(BigInt(String(signed.json?.serial_num)));
  });

  it("createEntries twice creates once", async () => {
    const spec = {
      spiffeId: WORKLOAD,
      parentId: agentAliasId(TD, "app1"),
      selectors: [{ type: "unix", value: `uid:${UID}` }],
      x509SvidTtl: 600,
    };
    const [again] = await api.createEntries([spec]);
    expect(again?.status).toBe("exists");
    const all = await api.listEntries({ bySpiffeId: WORKLOAD });
    expect(all).toHaveLength(1);
    expect(again?.status === "exists" && again.entry.id).toBe(all[0]?.id);

    // Update and delete round-trip through the batch calls.
    const [updated] = await api.updateEntries([{ ...spec, id: all[0]?.id as string, x509SvidTtl: 900 }]);
    expect(updated).toMatchObject({ status: "updated", entry: { x509SvidTtl: 900 } });
    const gone = await api.deleteEntries(["00000000-0000-4000-8000-00000000dead"]);
    expect(gone).toEqual([{ status: "not_found", id: "00000000-0000-4000-8000-00000000dead" }]);
  });

  it("batches creates and pages through every entry and agent", async () => {
    const small = server.client({ pageSize: 2, createBatchSize: 2, deleteBatchSize: 3 });
    clients.push(small);
    const parentId = `spiffe://${TD}/paging/parent`;
    const specs = [1, 2, 3, 4, 5].map((i) => ({
      spiffeId: `spiffe://${TD}/paging/w${i}`,
      parentId,
      selectors: [{ type: "unix", value: `uid:${1000 + i}` }],
    }));
    const created = await small.createEntries(specs);
    expect(created.map((r) => r.status)).toEqual(["created", "created", "created", "created", "created"]);
    const listed = await small.listEntries({ byParentId: parentId });
    expect(listed.map((e) => e.spiffeId).sort()).toEqual(specs.map((s) => s.spiffeId).sort());
    expect((await small.listAgents()).length).toBe((await api.listAgents()).length);
    const deleted = await small.deleteEntries(listed.map((e) => e.id));
    expect(deleted.every((d) => d.status === "deleted")).toBe(true);
    expect(await small.listEntries({ byParentId: parentId })).toEqual([]);
  });

  it("deleting the old join-token agent removes its alias entry (re-attestation)", async () => {
    const [fresh] = (await api.createJoinTokens([agentAliasId(TD, "app1")], 600)) as [JoinToken];
    const replacement = await agent(fresh.value, { name: "replacement" });
    await replacement.waitHealthy(30_000);
    expect(
      (await api.listEntries({ bySpiffeId: agentAliasId(TD, "app1") })).map((e) => e.parentId).sort(),
    ).toEqual([token.agentId, fresh.agentId].sort());

    await first.stop();
    expect(await api.deleteAgent(token.agentId)).toEqual({ deleted: true });
    expect(await api.listEntries({ byParentId: token.agentId })).toEqual([]);
    expect((await api.listEntries({ bySpiffeId: agentAliasId(TD, "app1") })).map((e) => e.parentId)).toEqual([
      fresh.agentId,
    ]);
    expect((await api.listAgents()).map((a) => a.id)).not.toContain(token.agentId);
    expect(await api.deleteAgent(token.agentId)).toEqual({ deleted: false });
    // The workload SVID now comes through the replacement agent.
    await replacement.waitForWorkloadSvid(WORKLOAD, { timeoutMs: 30_000 });
  });

  it("keeps the CA (bundle fingerprints) across a server restart", async () => {
    const before = await api.getBundle();
    expect(before.roots).toHaveLength(1);
    expect(before.roots[0]?.notAfter.getTime()).toBeGreaterThan(Date.now() + 3_600_000);
    const pidBefore = server.pid;
    await server.restart();
    expect(server.pid).not.toBe(pidBefore);
    const after = await api.getBundle();
    expect(rootFingerprints(after)).toEqual(rootFingerprints(before));
    expect(after.pem).toBe(before.pem);
    expect(after.sequenceNumber).toBe(before.sequenceNumber);
  });

  it("reports a frozen server as unhealthy and recovers after SIGCONT", async () => {
    const quick = server.client({ callTimeoutMs: 1_000, readAttempts: 1 });
    clients.push(quick);
    server.pause();
    try {
      const h = await quick.health();
      expect(h.healthy).toBe(false);
      expect(h.detail).toMatch(/DEADLINE_EXCEEDED|UNAVAILABLE/);
    } finally {
      server.resume();
    }
    await expect.poll(async () => (await quick.health()).healthy, { timeout: 10_000 }).toBe(true);
  });

  it("over TCP: admin calls succeed with an admin SVID and are refused without one", async () => {
    const bundle = await api.getBundle();
    const admin = await mintAdminSvid(api, ADMIN_ID, 600);
    expect(admin.spiffeId).toBe(ADMIN_ID);
    const withAdmin = new GrpcSpireServer({
      trustDomain: TD,
      callTimeoutMs: 5_000,
      target: adminTcpTarget(server, bundle.pem, admin),
    });
    clients.push(withAdmin);
    expect((await withAdmin.listAgents()).length).toBeGreaterThan(0);
    expect((await withAdmin.listEntries({ bySpiffeId: WORKLOAD })).length).toBe(1);
    expect((await withAdmin.health()).healthy).toBe(true);

    const plain = new GrpcSpireServer({
      trustDomain: TD,
      callTimeoutMs: 5_000,
      readAttempts: 1,
      target: { kind: "tcp", host: server.bindAddress, port: server.port, trustBundlePem: bundle.pem },
    });
    clients.push(plain);
    const refused = await plain.listAgents().catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SpireApiError);
    expect((refused as SpireApiError).code).toBe("PERMISSION_DENIED");
    // GetBundle is open to anyone.
    expect(rootFingerprints(await plain.getBundle())).toEqual(rootFingerprints(bundle));

    const notAdmin = await mintAdminSvid(api, `spiffe://${TD}/someone-else`, 600);
    const wrongId = new GrpcSpireServer({
      trustDomain: TD,
      callTimeoutMs: 5_000,
      readAttempts: 1,
      target: adminTcpTarget(server, bundle.pem, notAdmin),
    });
    clients.push(wrongId);
    await expect(wrongId.createJoinTokens([agentAliasId(TD, "intruder")], 60)).rejects.toMatchObject({
      code: "PERMISSION_DENIED",
    });
  });

  it("over TCP: refuses a server that does not present the expected SPIFFE ID", async () => {
    const bundle = await api.getBundle();
    const admin = await mintAdminSvid(api, ADMIN_ID, 600);
    const c = new GrpcSpireServer({
      trustDomain: TD,
      callTimeoutMs: 3_000,
      readAttempts: 1,
      target: {
        kind: "tcp",
        host: server.bindAddress,
        port: server.port,
        trustBundlePem: bundle.pem,
        clientCertChainPem: admin.certChainPem,
        clientKeyPem: admin.keyPem,
        serverId: `spiffe://${TD}/not-the-server`,
      },
    });
    clients.push(c);
    await expect(c.listAgents()).rejects.toThrow(
      /presented spiffe:\/\/spire-it\.example\/spire\/server, expected/,
    );
    expect(() => tcpClient()).toThrow(/no CERTIFICATE block/);
  });
});
