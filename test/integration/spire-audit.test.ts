/**
 * Counting a client's Server API calls from real SPIRE's audit log (the deploy scenario's
 * `spireCalls`): a batch is one call, admin-socket and admin-ID callers are counted, agents and
 * other TCP callers are not.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { attestJoinTokenAgents } from "../../sandbox/spire/attest.js";
import {
  adminTcpTarget,
  countServerApiCalls,
  mintAdminSvid,
  type SpireServerHandle,
  startSpireServer,
} from "../../sandbox/spire/index.js";
import { ensureSpire } from "../../scripts/install-spire.js";
import { agentAliasId } from "../../shared/spiffe/index.js";
import { GrpcSpireServer } from "../../shared/spire/grpc.js";

const TD = "audit-it.example";
const ADMIN_ID = `spiffe://${TD}/autopilot/admin`;
let server: SpireServerHandle;

beforeAll(async () => {
  server = await startSpireServer({
    trustDomain: TD,
    adminIds: [ADMIN_ID],
    auditLog: true,
    bins: await ensureSpire(),
  });
}, 120_000);
afterAll(async () => {
  await server?.dispose();
});

it("counts the calls SPIRE's audit log shows, one per batch, by caller", async () => {
  await server.logs.poll();
  const from = server.logs.lines.at(-1)?.index ?? -1;
  const api = server.client();
  let tokens: string[];
  let bundlePem: string;
  try {
    bundlePem = (await api.getBundle()).pem;
    await api.listEntries({});
    await api.createEntries(
      [1, 2, 3].map((i) => ({
        id: `audit-${i}`,
        spiffeId: `spiffe://${TD}/w${i}`,
        parentId: `spiffe://${TD}/p`,
        selectors: [{ type: "unix", value: "uid:0" }],
      })),
    );
    tokens = (await api.createJoinTokens([agentAliasId(TD, "a1"), agentAliasId(TD, "a2")], 600)).map(
      (t) => t.value,
    );
  } finally {
    await api.close();
  }
  // Two agents attest over TCP (agents are not the product: not counted).
  await attestJoinTokenAgents(
    { address: server.bindAddress, port: server.port, trustDomain: TD, bundlePem },
    tokens,
  );
  // The CLI on the admin socket, as a run-command script runs it.
  expect((await server.cli(["entry", "show"])).code).toBe(0);

  const mintApi = server.client();
  const admin = await mintAdminSvid(mintApi, ADMIN_ID, 600);
  await mintApi.close();
  const tcp = new GrpcSpireServer({
    trustDomain: TD,
    callTimeoutMs: 5_000,
    target: adminTcpTarget(server, bundlePem, admin),
  });
  const tcpFrom = server.logs.lines.at(-1)?.index ?? -1;
  try {
    await tcp.listAgents();
  } finally {
    await tcp.close();
  }

  await expect
    .poll(
      async () => {
        await server.logs.poll();
        return countServerApiCalls(
          server.logs.lines.filter((l) => l.index > from),
          { adminIds: [ADMIN_ID] },
        ).byCaller[ADMIN_ID];
      },
      { timeout: 10_000 },
    )
    .toBeGreaterThanOrEqual(1);
  const lines = server.logs.lines.filter((l) => l.index > from);
  const all = countServerApiCalls(lines, { adminIds: [ADMIN_ID] });
  // getBundle, listEntries, one batch of 3 entries, two join tokens, the CLI's listing, minting the
  // admin SVID, and the admin's listAgents over TCP; never the agents' attestations.
  expect(all.byMethod).toMatchObject({
    "bundle.v1.Bundle/GetBundle": 1,
    "entry.v1.Entry/BatchCreateEntry": 1,
    "agent.v1.Agent/CreateJoinToken": 2,
  });
  // The admin's listAgents over TCP is its only ListAgents (one page, or one more for a page token).
  const adminCalls = all.byCaller[ADMIN_ID]!;
  expect(all.byMethod["agent.v1.Agent/ListAgents"]).toBe(adminCalls);
  expect(all.byMethod["agent.v1.Agent/AttestAgent"]).toBeUndefined();
  expect(all.byCaller["spire-server"]).toBeGreaterThanOrEqual(1);
  expect(all.calls).toBe(Object.values(all.byCaller).reduce((a, b) => a + b, 0));
  // SPIRE did log the attestations, over TCP and without an admin ID.
  expect(lines.some((l) => l.json?.type === "audit" && l.json.method === "AttestAgent")).toBe(true);
  // Only the TCP admin when the admin socket is left out; nothing without the admin ID.
  const tcpOnly = server.logs.lines.filter((l) => l.index > tcpFrom);
  expect(countServerApiCalls(tcpOnly, { local: false, adminIds: [ADMIN_ID] }).calls).toBe(adminCalls);
  expect(countServerApiCalls(lines, { local: false }).calls).toBe(0);
}, 120_000);
