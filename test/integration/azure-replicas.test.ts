/**
 * Replicas with real SPIRE agents: the sidecar (the container whose env has JOIN_TOKEN) runs a
 * real spire-agent against a real spire-server, supervised like the seed's agent-proxy
 * entrypoint. Learnings exercised: #5/#26 (a recreated replica cannot reuse its spent token and
 * crash-loops), #18 (a killed agent is restarted by the entrypoint; a hung one goes unnoticed),
 * #19 (the bundle comes from the spec, also as a Key Vault-backed secret volume).
 */
import { getuid } from "node:process";
import type { ContainerApp } from "@azure/arm-appcontainers";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type AzureSimulator, FAST_PROFILE, startAzureSimulator } from "../../sandbox/azure/index.js";
import { SpireSidecarRuntime } from "../../sandbox/azure/runtime/spire-sidecar.js";
import type { SimulatorClients } from "../../sandbox/azure/simulator.js";
import { type SpireServerHandle, startSpireServer } from "../../sandbox/spire/index.js";
import { ensureSpire } from "../../scripts/install-spire.js";
import { appSpec, RG, replicas, revisions, waitFor, waitForReadyRevision } from "./azure-fixtures.js";

const TD = "replicas.sandbox.test";

let server: SpireServerHandle;
let sim: AzureSimulator;
let clients: SimulatorClients;
let bundle: string;

async function joinToken(app: string): Promise<string> {
  const res = await server.cli([
    "token",
    "generate",
    "-spiffeID",
    `spiffe://${TD}/agent/${app}`,
    "-ttl",
    "600",
  ]);
  const m = /Token: ([0-9a-f-]{36})/.exec(res.stdout);
  if (!m) throw new Error(`token generate failed: ${res.stderr || res.stdout}`);
  return m[1] as string;
}

async function agentIds(): Promise<string[]> {
  const res = await server.cli(["agent", "list", "-output", "json"]);
  const parsed = JSON.parse(res.stdout) as { agents?: { id?: { path?: string } }[] };
  return (parsed.agents ?? []).map((a) => a.id?.path ?? "");
}

async function deploy(app: string, spec?: ContainerApp): Promise<string> {
  const token = await joinToken(app);
  await clients.containerApps.containerApps
    .createOrUpdate(RG, app, spec ?? appSpec(sim, app, { joinToken: token, bundle }))
    .pollUntilDone();
  return token;
}

function consoleOf(app: string, replica?: string): string {
  return sim.events.console
    .filter((e) => e.app === app && (replica === undefined || e.replica === replica))
    .map((e) => e.log)
    .join("\n");
}

beforeAll(async () => {
  const bins = await ensureSpire();
  server = await startSpireServer({ trustDomain: TD, bins, logLevel: "INFO" });
  bundle = await server.bundlePem();
  sim = await startAzureSimulator({
    profile: { ...FAST_PROFILE, crashBackoffInitialMs: 200 },
    runtime: new SpireSidecarRuntime({
      server: { address: server.bindAddress, port: server.port, trustDomain: TD },
      bins,
    }),
  });
  clients = sim.clients();
}, 30 * 60_000);

afterAll(async () => {
  await sim?.stop();
  await server?.dispose();
});

beforeEach(async () => {
  await sim.reset();
});

describe("Azure simulator: replicas with real SPIRE agents", () => {
  it("the sidecar attests with the join token from a secret and serves workload SVIDs", async () => {
    const token = await deploy("a1");
    const rev = await waitForReadyRevision(clients.containerApps, "a1", 15_000);
    const [replica] = await replicas(clients.containerApps, "a1", rev);
    expect(replica?.containers?.find((c) => c.name === "a1-spiffe-proxy")).toMatchObject({
      ready: true,
      runningState: "Running",
      restartCount: 0,
    });
    expect(await agentIds()).toContain(`/spire/agent/join_token/${token}`);
    const log = consoleOf("a1", replica?.name);
    expect(log).toContain("Node attestation was successful");
    expect(log).toContain("(sandbox: 127.0.0.1:");
    // A workload entry under the app's alias reaches the agent's Workload API.
    const uid = getuid?.() ?? 0;
    const create = await server.cli([
      "entry",
      "create",
      "-parentID",
      `spiffe://${TD}/agent/a1`,
      "-spiffeID",
      `spiffe://${TD}/workload/a1`,
      "-selector",
      `unix:uid:${uid}`,
    ]);
    expect(create.code).toBe(0);
    const agent = sim.containerApps.agent(RG, "a1");
    const svid = await waitFor(
      "a workload SVID",
      async () => (await agent.svids()).find((s) => s.spiffeId === `spiffe://${TD}/workload/a1`),
      20_000,
    );
    expect(svid.notAfter.getTime()).toBeGreaterThan(Date.now());
  });

  it("a recreated replica gets a fresh data dir, cannot reuse the spent token and crash-loops (#5, #26)", async () => {
    await deploy("a2");
    const rev = await waitForReadyRevision(clients.containerApps, "a2", 15_000);
    const old = sim.containerApps.restartReplica(RG, "a2");
    const sidecar = await waitFor(
      "the sidecar of the new replica to restart twice",
      async () => {
        const [r] = await replicas(clients.containerApps, "a2", rev);
        const c = r?.containers?.find((x) => x.name === "a2-spiffe-proxy");
        return r && r.name !== old && (c?.restartCount ?? 0) >= 2 ? { replica: r, container: c } : undefined;
      },
      30_000,
    );
    expect(sidecar.container?.ready).toBe(false);
    const log = consoleOf("a2", sidecar.replica.name);
    expect(log).toContain("join token does not exist or has already been used");
    expect(log).toContain("spire-agent could not start");
    const revState = (await revisions(clients.containerApps, "a2")).find((r) => r.name === rev);
    expect(revState).toMatchObject({ runningState: "Degraded", healthState: "Unhealthy" });
    expect(sim.events.system.some((e) => e.app === "a2" && e.reason === "ContainerBackOff")).toBe(true);
  });

  it("one join token, three replicas: the first agent attests, the other two crash-loop on the spent token", async () => {
    const token = await joinToken("a4");
    const spec = appSpec(sim, "a4", { joinToken: token, bundle, scale: { minReplicas: 1, maxReplicas: 3 } });
    await clients.containerApps.containerApps.createOrUpdate(RG, "a4", spec).pollUntilDone();
    const rev = await waitFor(
      "the first replica to run",
      async () => {
        const [r] = await revisions(clients.containerApps, "a4");
        return r?.provisioningState === "Provisioned" ? (r.name as string) : undefined;
      },
      10_000,
    );
    // Load scales the app out to its maximum: every replica's agent reads the same token.
    sim.containerApps.setDemand(RG, "a4", 3);
    const crashLooping = await waitFor(
      "two replicas whose sidecar restarted",
      async () => {
        const reps = await replicas(clients.containerApps, "a4", rev);
        const sidecars = reps.map((r) => r.containers?.find((c) => c.name === "a4-spiffe-proxy"));
        const ready = sidecars.filter((c) => c?.ready).length;
        const looping = reps.filter((_, i) => (sidecars[i]?.restartCount ?? 0) >= 1);
        return reps.length === 3 && ready === 1 && looping.length === 2 ? looping : undefined;
      },
      45_000,
    );
    for (const r of crashLooping) {
      expect(consoleOf("a4", r.name)).toContain("join token does not exist or has already been used");
    }
    expect((await agentIds()).filter((id) => id === `/spire/agent/join_token/${token}`)).toHaveLength(1);
    const revState = (await revisions(clients.containerApps, "a4")).find((r) => r.name === rev);
    expect(revState).toMatchObject({ replicas: 3, healthState: "Unhealthy" });
  });

  it("a killed agent is restarted by the entrypoint on its stored SVID; a paused one goes unnoticed (#18)", async () => {
    const token = await deploy("a3");
    const rev = await waitForReadyRevision(clients.containerApps, "a3", 15_000);
    const agent = sim.containerApps.agent(RG, "a3");
    const firstPid = agent.pid;
    agent.kill();
    await waitFor(
      "the agent to be restarted",
      () => (agent.starts === 2 && agent.running ? true : undefined),
      15_000,
    );
    expect(agent.pid).not.toBe(firstPid);
    await waitFor(
      "the restarted agent to open its APIs",
      () => (consoleOf("a3").split("Starting agent APIs").length >= 3 ? true : undefined),
      15_000,
    );
    expect(consoleOf("a3")).toContain("died; restarting it");
    // Same agent identity: it came back on its stored SVID, no new attestation.
    expect((await agentIds()).filter((id) => id === `/spire/agent/join_token/${token}`)).toHaveLength(1);
    const [replica] = await replicas(clients.containerApps, "a3", rev);
    expect(replica?.containers?.find((c) => c.name === "a3-spiffe-proxy")?.restartCount).toBe(0);

    agent.pause();
    try {
      await new Promise((r) => setTimeout(r, 3 * FAST_PROFILE.sidecarMonitorIntervalMs));
      expect(agent.starts).toBe(2);
      expect(agent.running).toBe(true);
      const [still] = await replicas(clients.containerApps, "a3", rev);
      expect(still?.containers?.find((c) => c.name === "a3-spiffe-proxy")?.ready).toBe(true);
    } finally {
      agent.resume();
    }
  });

  it("a new revision brings a new agent and retires the old replica's agent", async () => {
    await deploy("a4");
    const first = await waitForReadyRevision(clients.containerApps, "a4", 15_000);
    const oldAgent = sim.containerApps.agent(RG, "a4");
    const token2 = await joinToken("a4");
    await clients.containerApps.containerApps
      .createOrUpdate(RG, "a4", appSpec(sim, "a4", { joinToken: token2, bundle, suffix: "reattest1" }))
      .pollUntilDone();
    const second = await waitForReadyRevision(clients.containerApps, "a4", 15_000);
    expect(second).toBe("a4--reattest1");
    expect(second).not.toBe(first);
    await waitFor("the old agent to stop", () => (oldAgent.running ? undefined : true), 10_000);
    expect(await agentIds()).toContain(`/spire/agent/join_token/${token2}`);
  });

  it("reads the bundle from a secret volume backed by a Key Vault reference", async () => {
    const url = "https://sandbox-vault.vault.azure.net/secrets/spire-trust-bundle/0123456789abcdef";
    sim.keyVaultSecrets.set(url, bundle);
    const token = await joinToken("a5");
    const spec = appSpec(sim, "a5", { joinToken: token });
    spec.configuration?.secrets?.push({ name: "trust-bundle", keyVaultUrl: url, identity: "system" });
    const template = spec.template as NonNullable<ContainerApp["template"]>;
    template.volumes = [
      {
        name: "spire-bundle",
        storageType: "Secret",
        secrets: [{ secretRef: "trust-bundle", path: "bundle.pem" }],
      },
    ];
    const sidecar = template.containers?.[1];
    if (!sidecar) throw new Error("no sidecar in the spec");
    sidecar.env = (sidecar.env ?? [])
      .filter((e) => e.name !== "SPIRE_TRUST_BUNDLE")
      .concat([{ name: "SPIRE_TRUST_BUNDLE_PATH", value: "/mnt/spire-bundle/bundle.pem" }]);
    sidecar.volumeMounts = [{ volumeName: "spire-bundle", mountPath: "/mnt/spire-bundle" }];
    await clients.containerApps.containerApps.createOrUpdate(RG, "a5", spec).pollUntilDone();
    await waitForReadyRevision(clients.containerApps, "a5", 15_000);
    expect(await agentIds()).toContain(`/spire/agent/join_token/${token}`);
    const listed = await clients.containerApps.containerApps.listSecrets(RG, "a5");
    expect(listed.value?.find((s) => s.name === "trust-bundle")).toEqual({
      name: "trust-bundle",
      keyVaultUrl: url,
      identity: "system",
    });
  });

  it("an unresolvable Key Vault reference fails the revision's provisioning", async () => {
    const spec = appSpec(sim, "a6", { joinToken: "unused" });
    spec.configuration?.secrets?.push({
      name: "missing",
      keyVaultUrl: "https://sandbox-vault.vault.azure.net/secrets/nope",
      identity: "system",
    });
    spec.template?.containers?.[0]?.env?.push({ name: "FROM_KV", secretRef: "missing" });
    await expect(
      clients.containerApps.containerApps.createOrUpdate(RG, "a6", spec).pollUntilDone(),
    ).rejects.toThrow(/Unable to get value using Managed identity/);
    const [rev] = await revisions(clients.containerApps, "a6");
    expect(rev).toMatchObject({ provisioningState: "Failed", runningState: "Failed" });
  });
});
