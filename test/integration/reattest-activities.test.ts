/**
 * The re-attest activities against the sandbox: the ARM simulator with real spire-agent sidecars,
 * a real spire-server (its DEBUG log followed into the Logs API), the Key Vault emulator holding
 * the trust bundle, and Azurite for the fleet ledger. Each activity is called as the orchestration
 * calls it, through the product's own services bundle built from config.
 */
import { createHash } from "node:crypto";
import { getuid } from "node:process";
import type { ContainerApp, ContainerAppsAPIClient } from "@azure/arm-appcontainers";
import { SecretClient } from "@azure/keyvault-secrets";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ActivityResult } from "../../activities/contracts.js";
import { ledgerRecord } from "../../activities/ledger.js";
import {
  REATTEST_ACTIVITIES,
  reattestApplyToken,
  reattestEvictOld,
  reattestPrepare,
  reattestRevisionState,
  reattestVerify,
} from "../../activities/reattest.js";
import { reattestRetireRevisions } from "../../activities/retire.js";
import {
  REATTEST_ORCHESTRATION,
  type ReattestInput,
  type ReattestOutput,
  reattestInstanceId,
  reattestOrchestrator,
} from "../../orchestrations/reattest.js";
import { SandboxTokenCredential } from "../../sandbox/azure/credential.js";
import {
  type AzureSimulator,
  FAST_PROFILE,
  spireServerContainer,
  startAzureSimulator,
} from "../../sandbox/azure/index.js";
import { SpireSidecarRuntime } from "../../sandbox/azure/runtime/spire-sidecar.js";
import { type AzureServices, startAzureServices } from "../../sandbox/emulators/index.js";
import { ReplayHarness } from "../../sandbox/host/testing.js";
import { type SpireServerHandle, startSpireServer } from "../../sandbox/spire/index.js";
import { ensureSpire } from "../../scripts/install-spire.js";
import { loadConfig } from "../../shared/config.js";
import { TransientError } from "../../shared/errors.js";
import type { LogSink } from "../../shared/logging.js";
import { createServices, type Services } from "../../shared/services.js";
import type { SpireServer } from "../../shared/spire/types.js";
import { RG, waitFor, waitForReadyRevision } from "./azure-fixtures.js";

const TD = "reattest.sandbox.test";
const BP = "0b1c2d3e-4f50-4a61-8b72-93a4b5c6d7e8";
const aidOf = (n: number) => `a0000000-0000-4000-8000-00000000000${n}`;
const VM_RG = "rg-spire";
const VM = "vm-spire";
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

let server: SpireServerHandle;
let azure: AzureServices;
let sim: AzureSimulator;
let arm: ContainerAppsAPIClient;
let services: Services;
let spire: SpireServer;
let env: Record<string, string>;
let bundleUrl: string;
/** Every line any activity logged, and every value any activity returned, for the leak check. */
const logLines: string[] = [];
const results: unknown[] = [];
const tokensSeen = new Set<string>();
const sink: LogSink = {
  debug: (l: unknown) => logLines.push(String(l)),
  info: (l: unknown) => logLines.push(String(l)),
  warn: (l: unknown) => logLines.push(String(l)),
  error: (l: unknown) => logLines.push(String(l)),
};

async function call<T>(p: Promise<ActivityResult<T>>): Promise<ActivityResult<T>> {
  const r = await p;
  results.push(r);
  return r;
}

function value<T>(r: ActivityResult<T>): T {
  if (!r.ok) throw new Error(`activity failed: ${r.error.code}: ${r.error.message}`);
  return r.value;
}

async function joinToken(app: string): Promise<string> {
  const res = await server.cli([
    "token",
    "generate",
    "-spiffeID",
    `spiffe://${TD}/agent/${app}`,
    "-output",
    "json",
  ]);
  if (res.code !== 0) throw new Error(`token generate failed: ${res.stderr}`);
  const token = (JSON.parse(res.stdout) as { value: string }).value;
  tokensSeen.add(token);
  return token;
}

const workloadIdOf = (n: number) => `spiffe://${TD}/ests/bp/${BP}/aid/${aidOf(n)}`;

/** The seed's app shape, tagged as managed; the bundle from Key Vault (pinned) or as plain env. */
function spec(
  app: string,
  n: number,
  token: string,
  bundle: { url: string } | { pem: string },
): ContainerApp {
  const secrets: NonNullable<ContainerApp["configuration"]>["secrets"] = [
    { name: "join-token", value: token },
  ];
  if ("url" in bundle) secrets.push({ name: "trust-bundle", keyVaultUrl: bundle.url, identity: "system" });
  return {
    location: "westeurope",
    tags: { "spire-autopilot": "managed", "spiffe-blueprint-oid": BP, "spiffe-agent-oid": aidOf(n) },
    environmentId: `/subscriptions/${sim.subscriptionId}/resourceGroups/${RG}/providers/Microsoft.App/managedEnvironments/env-sandbox`,
    configuration: { activeRevisionsMode: "Single", secrets },
    template: {
      revisionSuffix: "v1",
      containers: [
        { name: "agent", image: "example.azurecr.io/agent:1", env: [{ name: "MODE", value: "agent" }] },
        {
          name: `${app}-spiffe-proxy`,
          image: "example.azurecr.io/spiffe-proxy:1",
          env: [
            { name: "CONTAINER_MODE", value: "agent-proxy" },
            { name: "JOIN_TOKEN", secretRef: "join-token" },
            "url" in bundle
              ? { name: "SPIRE_TRUST_BUNDLE", secretRef: "trust-bundle" }
              : { name: "SPIRE_TRUST_BUNDLE", value: bundle.pem },
            { name: "SPIRE_SERVER_ADDR", value: "10.0.0.4:8081" },
          ],
        },
      ],
      scale: { minReplicas: 1, maxReplicas: 1 },
    },
  };
}

/** Multiple revision mode with ingress, the first revision pinned to all traffic under a label. */
const multipleMode = (app: string) => (c: ContainerApp) => {
  c.configuration = {
    ...c.configuration,
    activeRevisionsMode: "Multiple",
    ingress: {
      external: false,
      targetPort: 8080,
      traffic: [{ revisionName: `${app}--v1`, weight: 100, label: "stable" }],
    },
  };
};

const DEACTIVATE = "Microsoft.App/containerApps/revisions/deactivate/action";

async function revisionsOf(app: string) {
  const list = [];
  for await (const r of arm.containerAppsRevisions.listRevisions(RG, app)) list.push(r);
  return list;
}

/** Deploys an app with a real agent and its workload entry; returns the token it attested with. */
async function deploy(
  app: string,
  n: number,
  bundle: { url: string } | { pem: string },
  shape?: (c: ContainerApp) => void,
): Promise<string> {
  const token = await joinToken(app);
  const entry = await server.cli([
    "entry",
    "create",
    "-parentID",
    `spiffe://${TD}/agent/${app}`,
    "-spiffeID",
    workloadIdOf(n),
    "-selector",
    `unix:uid:${getuid?.() ?? 0}`,
  ]);
  if (entry.code !== 0) throw new Error(`entry create failed: ${entry.stderr}`);
  const body = spec(app, n, token, bundle);
  shape?.(body);
  await arm.containerApps.createOrUpdate(RG, app, body).pollUntilDone();
  await waitForReadyRevision(arm, app, 20_000);
  return token;
}

async function pollActivity<T>(
  what: string,
  timeoutMs: number,
  once: () => Promise<ActivityResult<T>>,
  done: (v: T) => boolean,
): Promise<{ value: T; calls: number }> {
  let calls = 0;
  const v = await waitFor(
    what,
    async () => {
      calls++;
      const out = value(await call(once()));
      return done(out) ? out : undefined;
    },
    timeoutMs,
  );
  return { value: v, calls };
}

async function aliasEntries(app: string) {
  return spire.listEntries({ bySpiffeId: `spiffe://${TD}/agent/${app}` });
}

async function tokenSecret(app: string): Promise<string> {
  const listed = await arm.containerApps.listSecrets(RG, app);
  const v = listed.value?.find((s) => s.name === "join-token")?.value ?? "";
  tokensSeen.add(v);
  return v;
}

/** Services whose listSecrets runs `between` before it answers: the product has read the app but not yet PUT. */
function changingAfterRead(between: (reads: number) => Promise<void>): Services {
  const ops = services.containerApps.containerApps;
  let reads = 0;
  const hooked = Object.create(ops) as typeof ops;
  hooked.listSecrets = async (rg, name, options) => {
    const listed = await ops.listSecrets(rg, name, options);
    await between(++reads);
    return listed;
  };
  return {
    ...services,
    containerApps: { ...services.containerApps, containerApps: hooked } as ContainerAppsAPIClient,
  };
}

/** A CI pipeline's deploy: a full-spec PUT of the app as it is now, with a new image for the agent container. */
async function ciDeploy(app: string, image: string, suffix: string): Promise<void> {
  const current = await arm.containerApps.get(RG, app);
  const listed = (await arm.containerApps.listSecrets(RG, app)).value ?? [];
  const spec = structuredClone(current);
  spec.configuration = {
    ...spec.configuration,
    secrets: listed.map((x) =>
      x.keyVaultUrl
        ? { name: x.name, keyVaultUrl: x.keyVaultUrl, identity: x.identity }
        : { name: x.name, value: x.value },
    ),
  };
  spec.template = { ...spec.template, revisionSuffix: suffix };
  const agent = spec.template.containers?.find((c) => c.name === "agent");
  if (agent) agent.image = image;
  await arm.containerApps.createOrUpdate(RG, app, spec).pollUntilDone();
}

/** The durable-functions replay of the reattest orchestration, its activities the real ones. */
function realActivitiesHarness(): ReplayHarness {
  const activities = Object.fromEntries(
    Object.entries(REATTEST_ACTIVITIES).map(([name, h]) => [
      name,
      (input: unknown) => call(h(input, services, sink)),
    ]),
  );
  return new ReplayHarness({
    orchestrations: { [REATTEST_ORCHESTRATION]: reattestOrchestrator },
    activities,
    timeScale: 1,
  });
}

const orchestrationInput = (app: string): ReattestInput => ({
  app,
  trigger: "alert",
  reason: "crash loop",
  timing: { firstPollSeconds: 1, maxPollSeconds: 2, revisionTimeoutSeconds: 60, verifyTimeoutSeconds: 60 },
});

beforeAll(async () => {
  const bins = await ensureSpire();
  server = await startSpireServer({ trustDomain: TD, bins });
  try {
    azure = await startAzureServices({ startAlerts: false });
    await azure.followSpireServer(server.logFile, { processId: server.pid });
    const kv = azure.keyVault;
    if (!kv) throw new Error("Key Vault did not start");
    const secrets = new SecretClient(kv.vaultUrl, new SandboxTokenCredential(), {
      tlsOptions: { ca: azure.tls.caPem },
      disableChallengeResourceVerification: true,
    });
    const bundle = await secrets.setSecret("spire-trust-bundle", await server.bundlePem());
    bundleUrl = bundle.properties.id ?? "";
    const svc = azure;
    sim = await startAzureSimulator({
      profile: { ...FAST_PROFILE, crashBackoffInitialMs: 200 },
      runtime: new SpireSidecarRuntime({
        server: { address: server.bindAddress, port: server.port, trustDomain: TD },
        bins,
      }),
      keyVault: (s) => svc.resolveKeyVaultSecret(s),
      vms: [
        {
          resourceGroup: VM_RG,
          name: VM,
          location: "westeurope",
          spireServer: spireServerContainer(server),
          startedAgoMs: 3_600_000,
        },
      ],
    });
    arm = sim.clients().containerApps;
    env = {
      ...sim.settings(),
      ...azure.settings,
      SPIRE_TRUST_DOMAIN: TD,
      SPIRE_SERVER_SOCKET: server.socketPath,
      APPS_RESOURCE_GROUP: RG,
      JOIN_TOKEN_TTL_SECONDS: "900",
    };
    services = createServices(loadConfig(env), { env, logSink: sink });
    spire = await services.spire();
  } catch (err) {
    await sim?.stop().catch(() => undefined);
    await azure?.stop().catch(() => undefined);
    await server.dispose().catch(() => undefined);
    throw err;
  }
}, 10 * 60_000);

afterAll(async () => {
  await services?.close().catch(() => undefined);
  await sim?.stop().catch(() => undefined);
  await azure?.stop().catch(() => undefined);
  await server?.dispose().catch(() => undefined);
});

describe("re-attest activities against the sandbox", () => {
  it("re-attests an app with a real agent sidecar, step by step, and records the run", async () => {
    const app = "app-a";
    const firstToken = await deploy(app, 1, { url: bundleUrl });
    expect(await aliasEntries(app)).toHaveLength(1);
    const before = sim.counters.snapshot();
    const ms: Record<string, number> = {};
    const armByStep: Record<string, Record<string, number>> = {};
    const timed = async <T>(step: string, fn: () => Promise<T>): Promise<T> => {
      const t0 = performance.now();
      const calls0 = sim.counters.snapshot().armCalls;
      try {
        return await fn();
      } finally {
        ms[step] = (ms[step] ?? 0) + Math.round(performance.now() - t0);
        const byAction = armByStep[step] ?? {};
        armByStep[step] = byAction;
        for (const [action, n] of Object.entries(sim.counters.snapshot().armCalls)) {
          const d = n - (calls0[action] ?? 0);
          const name = action.replace(/^Microsoft\.App\//, "");
          if (d > 0) byAction[name] = (byAction[name] ?? 0) + d;
        }
      }
    };
    const startedAt = new Date();
    const runId = `reattest-${app}@${startedAt.toISOString()}`;

    const prepared = value(await timed("prepare", () => call(reattestPrepare({ app }, services, sink))));
    expect(prepared).toEqual({
      app,
      alias: `spiffe://${TD}/agent/${app}`,
      workloadId: workloadIdOf(1),
      previousAgents: [sha256(firstToken)],
    });

    const applied = value(
      await timed("apply", () => call(reattestApplyToken({ app, runId }, services, sink))),
    );
    expect(applied.alreadyApplied).toBe(false);
    expect(applied.revisionName).toMatch(/^app-a--sa-[0-9a-f]{12}$/);
    const newToken = await tokenSecret(app);
    expect(applied.tokenSha256).toBe(sha256(newToken));
    const putsAfterApply = sim.counters.snapshot().containerApps.puts;

    // A retried apply of the same run changes nothing and names the same agent.
    const again = value(
      await timed("applyRetry", () => call(reattestApplyToken({ app, runId }, services, sink))),
    );
    expect(again).toEqual({ ...applied, alreadyApplied: true });
    expect(sim.counters.snapshot().containerApps.puts).toBe(putsAfterApply);

    const revision = await timed("revision", () =>
      pollActivity(
        "the new revision to run",
        30_000,
        () => reattestRevisionState({ app, revisionName: applied.revisionName }, services, sink),
        (v) => v.state !== "Pending",
      ),
    );
    expect(revision.value.state).toBe("Running");

    const verifyInput = {
      app,
      alias: prepared.alias,
      workloadId: prepared.workloadId,
      tokenSha256: applied.tokenSha256,
      since: startedAt.toISOString(),
    };
    const verified = await timed("verify", () =>
      pollActivity(
        "the new agent to attest and the workload SVID to be signed",
        45_000,
        () => reattestVerify(verifyInput, services, sink),
        (v) => v.agentAttested && v.svidSigned === true,
      ),
    );
    expect(verified.value).toEqual({ agentAttested: true, svidSigned: true });
    // Before the run, the old agent's signing does not count: the check looks after `since` only.
    const future = { ...verifyInput, since: new Date(Date.now() + 3_600_000).toISOString() };
    expect(value(await call(reattestVerify(future, services, sink))).svidSigned).toBe(false);

    const evicted = value(
      await timed("evict", () =>
        call(
          reattestEvictOld(
            { app, alias: prepared.alias, keepTokenSha256: applied.tokenSha256 },
            services,
            sink,
          ),
        ),
      ),
    );
    expect(evicted).toEqual({ evicted: 1, remaining: 1 });
    const entries = await aliasEntries(app);
    expect(entries).toHaveLength(1);
    expect(entries[0]?.parentId).toBe(`spiffe://${TD}/spire/agent/join_token/${newToken}`);
    const agents = (await spire.listAgents()).map((a) => a.id);
    expect(agents).toContain(`spiffe://${TD}/spire/agent/join_token/${newToken}`);
    expect(agents).not.toContain(`spiffe://${TD}/spire/agent/join_token/${firstToken}`);
    // Evicting again finds nothing more to do.
    expect(
      value(
        await call(
          reattestEvictOld(
            { app, alias: prepared.alias, keepTokenSha256: applied.tokenSha256 },
            services,
            sink,
          ),
        ),
      ),
    ).toEqual({ evicted: 0, remaining: 1 });

    const after = sim.counters.snapshot();
    const finishedAt = new Date();
    const record = value(
      await timed("record", () =>
        call(
          ledgerRecord(
            {
              app,
              runId,
              trigger: "http",
              reason: "test",
              startedAt: startedAt.toISOString(),
              finishedAt: finishedAt.toISOString(),
              outcome: "succeeded",
              stepSeconds: { prepare: 0.1, apply: 1.2 },
              previousAgents: prepared.previousAgents.length,
              newAgentSha256: applied.tokenSha256,
            },
            services,
            sink,
          ),
        ),
      ),
    );
    const table = await services.fleetTable();
    const row = await table.getEntity<Record<string, unknown>>(app, record.rowKey);
    expect(row).toMatchObject({
      runId,
      trigger: "http",
      outcome: "succeeded",
      previousAgents: 1,
      newAgentSha256: applied.tokenSha256,
      stepSeconds: JSON.stringify({ prepare: 0.1, apply: 1.2 }),
    });
    expect(record.rowKey.startsWith(finishedAt.toISOString())).toBe(true);

    // The PUT kept everything else, pinned the bundle to its Key Vault version, and was a PUT.
    const listed = (await arm.containerApps.listSecrets(RG, app)).value ?? [];
    expect(listed.find((s) => s.name === "trust-bundle")).toEqual({
      name: "trust-bundle",
      keyVaultUrl: bundleUrl,
      identity: "system",
    });
    const got = await arm.containerApps.get(RG, app);
    expect(got.template?.containers?.[0]).toMatchObject({
      name: "agent",
      image: "example.azurecr.io/agent:1",
      env: [{ name: "MODE", value: "agent" }],
    });
    expect(after.containerApps).toMatchObject({
      puts: before.containerApps.puts + 1,
      patches: 0,
      containersReset: 0,
    });

    const sum = (o: Record<string, number> = {}) => Object.values(o).reduce((a, b) => a + b, 0);
    console.log(
      JSON.stringify({
        figures: "reattest activities",
        ms,
        revisionPolls: revision.calls,
        verifyPolls: verified.calls,
        armByStep,
        // One run as the orchestration makes it: no apply retry, one revision poll per wait.
        armCallsPerReattest:
          sum(armByStep.prepare) + sum(armByStep.apply) + sum(armByStep.revision) / revision.calls,
      }),
    );
  }, 180_000);

  it("rethrows a 403 of role propagation, then applies; evicts the token the failed attempt spent", async () => {
    const app = "app-b";
    const pem = await server.bundlePem();
    const firstToken = await deploy(app, 2, { pem });
    // No bundle secret under this name: the app keeps its bundle as it is (no pin).
    const cfgEnv = { ...env, TRUST_BUNDLE_SECRET_NAME: "absent-bundle" };
    const noPin = createServices(loadConfig(cfgEnv), { env: cfgEnv, spire, logSink: sink });
    const runId = `reattest-${app}@${new Date().toISOString()}`;
    const prepared = value(await call(reattestPrepare({ app }, noPin, sink)));
    expect(prepared.previousAgents).toEqual([sha256(firstToken)]);

    sim.faults.set({
      authorizationFailed: { actions: ["Microsoft.App/containerApps/write"], forSeconds: 60 },
    });
    const denied = reattestApplyToken({ app, runId }, noPin, sink);
    await expect(denied).rejects.toBeInstanceOf(TransientError);
    await expect(denied).rejects.toMatchObject({ code: "AuthorizationFailed" });
    sim.faults.set({ authorizationFailed: null });
    const afterDenied = await aliasEntries(app);
    expect(afterDenied).toHaveLength(2); // the first token, and the one the 403 wasted
    for (const e of afterDenied) tokensSeen.add(e.parentId.split("/").at(-1) ?? "");

    const applied = value(await call(reattestApplyToken({ app, runId }, noPin, sink)));
    expect(applied.alreadyApplied).toBe(false);
    expect(applied.tokenSha256).toBe(sha256(await tokenSecret(app)));
    const sidecar = (await arm.containerApps.get(RG, app)).template?.containers?.[1];
    expect(sidecar?.env?.find((e) => e.name === "SPIRE_TRUST_BUNDLE")).toEqual({
      name: "SPIRE_TRUST_BUNDLE",
      value: pem,
    });
    await pollActivity(
      "app-b's revision to run",
      30_000,
      () => reattestRevisionState({ app, revisionName: applied.revisionName }, noPin, sink),
      (v) => v.state === "Running",
    );
    await pollActivity(
      "app-b's new agent to attest",
      30_000,
      () =>
        reattestVerify(
          { ...prepared, tokenSha256: applied.tokenSha256, since: new Date().toISOString() },
          noPin,
          sink,
        ),
      (v) => v.agentAttested,
    );
    const evicted = value(
      await call(
        reattestEvictOld({ app, alias: prepared.alias, keepTokenSha256: applied.tokenSha256 }, noPin, sink),
      ),
    );
    expect(evicted).toEqual({ evicted: 2, remaining: 1 });
    expect(await aliasEntries(app)).toHaveLength(1);
    await noPin.close();
  }, 120_000);

  it("refuses what it must not touch, as results", async () => {
    // An app without the tag or the sidecar, with simulated containers.
    await arm.containerApps
      .createOrUpdate(RG, "plain", {
        location: "westeurope",
        environmentId: `/subscriptions/${sim.subscriptionId}/resourceGroups/${RG}/providers/Microsoft.App/managedEnvironments/env-sandbox`,
        template: { containers: [{ name: "web", image: "example.azurecr.io/web:1" }] },
      })
      .pollUntilDone();
    const unmanaged = await call(reattestPrepare({ app: "plain" }, services, sink));
    expect(unmanaged).toMatchObject({ ok: false, error: { code: "AppNotManaged" } });
    expect(await call(reattestApplyToken({ app: "plain", runId: "r1" }, services, sink))).toMatchObject({
      ok: false,
      error: { code: "AppNotManaged" },
    });
    expect(await call(reattestPrepare({ app: "nope" }, services, sink))).toMatchObject({
      ok: false,
      error: { code: "AppNotFound" },
    });
    expect(await call(reattestPrepare({ app: "Bad/Name" }, services, sink))).toMatchObject({
      ok: false,
      error: { code: "BadInput" },
    });
    // Another app's alias is refused before anything is deleted.
    expect(
      await call(
        reattestEvictOld(
          { app: "app-a", alias: `spiffe://${TD}/agent/app-b`, keepTokenSha256: "0".repeat(64) },
          services,
          sink,
        ),
      ),
    ).toMatchObject({ ok: false, error: { code: "BadInput" } });
    // A keep that holds no alias entry: nothing is evicted.
    expect(
      await call(
        reattestEvictOld(
          { app: "app-a", alias: `spiffe://${TD}/agent/app-a`, keepTokenSha256: "0".repeat(64) },
          services,
          sink,
        ),
      ),
    ).toMatchObject({ ok: false, error: { code: "NewAgentNotFound" } });
    expect(await aliasEntries("app-a")).toHaveLength(1);
  });

  it("a spec the transform refuses (SpecError) is a result, and costs no join token", async () => {
    // listSecrets that returns a secret without a value, as Azure does for some secret kinds.
    const ops = services.containerApps.containerApps;
    const withBrokenSecret: typeof ops = {
      ...ops,
      listSecrets: async (rg, name, options) => {
        const listed = await ops.listSecrets(rg, name, options);
        return { ...listed, value: [...(listed.value ?? []), { name: "opaque" }] };
      },
    };
    const broken: Services = {
      ...services,
      containerApps: { ...services.containerApps, containerApps: withBrokenSecret } as ContainerAppsAPIClient,
    };
    const entriesBefore = (await aliasEntries("app-a")).length;
    const putsBefore = sim.counters.snapshot().containerApps.puts;
    const r = await call(
      reattestApplyToken({ app: "app-a", runId: "reattest-app-a@spec-error" }, broken, sink),
    );
    expect(r).toMatchObject({ ok: false, error: { code: "SecretWithoutValue" } });
    expect(!r.ok && r.error.message).toContain('Secret "opaque"');
    expect((await aliasEntries("app-a")).length).toBe(entriesBefore);
    expect(sim.counters.snapshot().containerApps.puts).toBe(putsBefore);
  });

  it("a CI deploy landing between the read and the PUT is kept: the update is rebuilt from the new spec", async () => {
    const app = "app-ci";
    await deploy(app, 4, { url: bundleUrl });
    const putsBefore = sim.counters.snapshot().containerApps.puts;
    const ci = changingAfterRead(async (reads) => {
      if (reads === 1) await ciDeploy(app, "example.azurecr.io/agent:2", "ci2");
    });
    const runId = `reattest-${app}@ci-race`;
    const applied = value(await call(reattestApplyToken({ app, runId }, ci, sink)));
    const after = await arm.containerApps.get(RG, app);
    // The product's revision is the latest and carries the CI deploy's image: nothing was reverted.
    expect(after.latestRevisionName).toBe(applied.revisionName);
    expect(after.template?.containers?.find((c) => c.name === "agent")?.image).toBe(
      "example.azurecr.io/agent:2",
    );
    const revision = await arm.containerAppsRevisions.getRevision(RG, app, applied.revisionName);
    expect(revision.template?.containers?.find((c) => c.name === "agent")?.image).toBe(
      "example.azurecr.io/agent:2",
    );
    // One PUT by CI, one by the product.
    expect(sim.counters.snapshot().containerApps.puts - putsBefore).toBe(2);
    expect(logLines.some((l) => l.includes("the app changed since it was read"))).toBe(true);
    await tokenSecret(app);
  });

  it("an app that keeps changing is left alone with a clear ConcurrentChange, after bounded rebuilds", async () => {
    const app = "app-ci";
    const putsBefore = sim.counters.snapshot().containerApps.puts;
    const ci = changingAfterRead((reads) =>
      ciDeploy(app, `example.azurecr.io/agent:3.${reads}`, `ci3-${reads}`),
    );
    const r = await call(reattestApplyToken({ app, runId: `reattest-${app}@busy` }, ci, sink));
    expect(r).toMatchObject({ ok: false, error: { code: "ConcurrentChange" } });
    expect(!r.ok && r.error.message).toMatch(/changed 3 times .* nothing was changed/);
    // Only CI's three deploys reached ARM; the product PUT nothing.
    expect(sim.counters.snapshot().containerApps.puts - putsBefore).toBe(3);
    expect((await arm.containerApps.get(RG, app)).latestRevisionName).toBe(`${app}--ci3-3`);
    // CI's revisions carry a spent token and crash-loop; their agents' restarts would load the machine.
    await arm.containerApps.beginDeleteAndWait(RG, app);
  });

  it("in Multiple revision mode the new revision takes the traffic (weight and label) the old one had", async () => {
    const app = "app-mm";
    const token = await joinToken(app);
    const base = spec(app, 5, token, { url: bundleUrl });
    base.configuration = {
      ...base.configuration,
      activeRevisionsMode: "Multiple",
      ingress: {
        external: false,
        targetPort: 8080,
        traffic: [{ revisionName: `${app}--v1`, weight: 100, label: "stable" }],
      },
    };
    await arm.containerApps.createOrUpdate(RG, app, base).pollUntilDone();
    const applied = value(
      await call(reattestApplyToken({ app, runId: `reattest-${app}@mm` }, services, sink)),
    );
    const after = await arm.containerApps.get(RG, app);
    expect(after.configuration?.ingress?.traffic).toEqual([
      { revisionName: applied.revisionName, weight: 100, label: "stable" },
    ]);
    const weight = await waitFor(
      "the new revision to run and carry the traffic",
      async () => {
        const r = await arm.containerAppsRevisions.getRevision(RG, app, applied.revisionName);
        return r.runningState === "Running" ? r.trafficWeight : undefined;
      },
      20_000,
    );
    expect(weight).toBe(100);
    expect((await arm.containerAppsRevisions.getRevision(RG, app, `${app}--v1`)).trafficWeight).toBe(0);
    await tokenSecret(app);
    await arm.containerApps.beginDeleteAndWait(RG, app);
  });

  it("in Multiple revision mode the replaced revision, left running on a spent token, is retired: its crash loop ends", async () => {
    const app = "app-mr";
    await deploy(app, 7, { url: bundleUrl }, multipleMode(app));
    const old = `${app}--v1`;
    const startedAt = new Date();
    const prepared = value(await call(reattestPrepare({ app }, services, sink)));
    const applied = value(
      await call(reattestApplyToken({ app, runId: `reattest-${app}@retire` }, services, sink)),
    );
    await tokenSecret(app);
    await pollActivity(
      "the new revision to run",
      30_000,
      () => reattestRevisionState({ app, revisionName: applied.revisionName }, services, sink),
      (v) => v.state === "Running",
    );
    const verifyInput = {
      app,
      alias: prepared.alias,
      workloadId: prepared.workloadId,
      tokenSha256: applied.tokenSha256,
      since: startedAt.toISOString(),
    };
    await pollActivity(
      "the new agent to attest",
      45_000,
      () => reattestVerify(verifyInput, services, sink),
      (v) => v.agentAttested,
    );
    value(
      await call(
        reattestEvictOld(
          { app, alias: prepared.alias, keepTokenSha256: applied.tokenSha256 },
          services,
          sink,
        ),
      ),
    );

    // The defect: Azure keeps the old revision active beside the new one. When its replica
    // restarts, its sidecar presents a spent join token and crash-loops, which is what fires the
    // attestation-failure alert again after every cooldown.
    expect((await arm.containerAppsRevisions.getRevision(RG, app, old)).active).toBe(true);
    await arm.containerAppsRevisions.restartRevision(RG, app, old);
    await waitFor(
      "the old revision's sidecar to crash-loop on its spent token",
      async () => {
        const replicas = (await arm.containerAppsRevisionReplicas.listReplicas(RG, app, old)).value ?? [];
        return replicas.some((r) => r.containers?.some((c) => (c.restartCount ?? 0) > 0)) ? true : undefined;
      },
      30_000,
    );

    const deactivations = sim.counters.calls(DEACTIVATE);
    const retired = value(
      await call(reattestRetireRevisions({ app, keepRevision: applied.revisionName }, services, sink)),
    );
    expect(retired).toMatchObject({ mode: "Multiple", retired: [old], keptWithTraffic: [], keptNewer: [] });
    expect(retired.detail).toMatch(new RegExp(`^Multiple revision mode: deactivated ${old} `));
    expect(sim.counters.calls(DEACTIVATE) - deactivations).toBe(1);

    // The old revision is inactive with no replica left to crash, and cannot be restarted.
    const oldRev = await arm.containerAppsRevisions.getRevision(RG, app, old);
    expect(oldRev).toMatchObject({ active: false, replicas: 0, trafficWeight: 0 });
    expect((await arm.containerAppsRevisionReplicas.listReplicas(RG, app, old)).value).toEqual([]);
    await expect(arm.containerAppsRevisions.restartRevision(RG, app, old)).rejects.toMatchObject({
      statusCode: 400,
    });
    // The new revision keeps the traffic (and its label) and runs; the app is never without one.
    const newRev = await arm.containerAppsRevisions.getRevision(RG, app, applied.revisionName);
    expect(newRev).toMatchObject({ active: true, trafficWeight: 100, runningState: "Running" });
    expect((await arm.containerApps.get(RG, app)).configuration?.ingress?.traffic).toEqual([
      { revisionName: applied.revisionName, weight: 100, label: "stable" },
    ]);
    expect((await revisionsOf(app)).filter((r) => r.active).map((r) => r.name)).toEqual([
      applied.revisionName,
    ]);

    // A retry finds nothing left to do and calls no deactivate.
    expect(
      value(await call(reattestRetireRevisions({ app, keepRevision: applied.revisionName }, services, sink))),
    ).toMatchObject({ mode: "Multiple", retired: [] });
    expect(sim.counters.calls(DEACTIVATE) - deactivations).toBe(1);
    // A kept revision that is not active is refused: nothing else is deactivated.
    const refused = await call(reattestRetireRevisions({ app, keepRevision: old }, services, sink));
    expect(refused).toMatchObject({ ok: false, error: { code: "KeepRevisionNotActive" } });
    expect((await arm.containerAppsRevisions.getRevision(RG, app, applied.revisionName)).active).toBe(true);
    // A revision of another app is bad input, before any ARM call.
    expect(
      await call(reattestRetireRevisions({ app, keepRevision: "app-a--v1" }, services, sink)),
    ).toMatchObject({ ok: false, error: { code: "BadInput" } });
    expect(sim.counters.calls(DEACTIVATE) - deactivations).toBe(1);
    await arm.containerApps.beginDeleteAndWait(RG, app);
  }, 150_000);

  it("in Multiple revision mode an old revision that still takes traffic is left active and named", async () => {
    const app = "app-mc";
    const token = await joinToken(app);
    const base = spec(app, 8, token, { url: bundleUrl });
    multipleMode(app)(base);
    await arm.containerApps.createOrUpdate(RG, app, base).pollUntilDone();
    await waitForReadyRevision(arm, app, 20_000);
    // A second deploy takes the stable label and 80 %; the first revision keeps a 20 % slice.
    const current = await arm.containerApps.get(RG, app);
    const listed = (await arm.containerApps.listSecrets(RG, app)).value ?? [];
    const v2 = structuredClone(current);
    v2.configuration = {
      ...v2.configuration,
      secrets: listed.map((x) =>
        x.keyVaultUrl
          ? { name: x.name, keyVaultUrl: x.keyVaultUrl, identity: x.identity }
          : { name: x.name, value: x.value },
      ),
      ingress: {
        ...v2.configuration?.ingress,
        traffic: [
          { revisionName: `${app}--v1`, weight: 20 },
          { revisionName: `${app}--v2`, weight: 80, label: "stable" },
        ],
      },
    };
    v2.template = { ...v2.template, revisionSuffix: "v2" };
    await arm.containerApps.createOrUpdate(RG, app, v2).pollUntilDone();
    const applied = value(
      await call(reattestApplyToken({ app, runId: `reattest-${app}@slice` }, services, sink)),
    );
    await tokenSecret(app);
    await waitFor(
      "the new revision to run",
      async () =>
        (await arm.containerAppsRevisions.getRevision(RG, app, applied.revisionName)).runningState ===
        "Running"
          ? true
          : undefined,
      20_000,
    );
    const deactivations = sim.counters.calls(DEACTIVATE);
    const retired = value(
      await call(reattestRetireRevisions({ app, keepRevision: applied.revisionName }, services, sink)),
    );
    // The replaced revision's traffic moved to the new one, so it goes; the older slice stays.
    expect(retired).toMatchObject({
      mode: "Multiple",
      retired: [`${app}--v2`],
      keptWithTraffic: [`${app}--v1`],
      keptNewer: [],
    });
    expect(retired.detail).toMatch(/left app-mc--v1 active because traffic .* then deactivate them/);
    expect(sim.counters.calls(DEACTIVATE) - deactivations).toBe(1);
    expect(await arm.containerAppsRevisions.getRevision(RG, app, `${app}--v1`)).toMatchObject({
      active: true,
      trafficWeight: 20,
    });
    expect(await arm.containerAppsRevisions.getRevision(RG, app, applied.revisionName)).toMatchObject({
      active: true,
      trafficWeight: 80,
    });
    await arm.containerApps.beginDeleteAndWait(RG, app);
  }, 60_000);

  it("in Single revision mode the retire step changes nothing: Azure retires the old revision itself", async () => {
    const app = "app-a";
    const got = await arm.containerApps.get(RG, app);
    const before = (await revisionsOf(app)).map((r) => ({ name: r.name, active: r.active }));
    const deactivations = sim.counters.calls(DEACTIVATE);
    const r = value(
      await call(
        reattestRetireRevisions({ app, keepRevision: got.latestRevisionName ?? "" }, services, sink),
      ),
    );
    expect(r).toEqual({
      mode: "Single",
      retired: [],
      keptWithTraffic: [],
      keptNewer: [],
      detail: expect.stringMatching(/^Single revision mode: Azure deactivates the replaced revision itself/),
    });
    expect(sim.counters.calls(DEACTIVATE)).toBe(deactivations);
    expect((await revisionsOf(app)).map((x) => ({ name: x.name, active: x.active }))).toEqual(before);
  });

  it("reports revision states: missing is Pending, a failed provisioning is Failed", async () => {
    expect(
      value(await call(reattestRevisionState({ app: "app-a", revisionName: "app-a--nope" }, services, sink))),
    ).toMatchObject({ state: "Pending" });
    const failing: ContainerApp = {
      location: "westeurope",
      environmentId: `/subscriptions/${sim.subscriptionId}/resourceGroups/${RG}/providers/Microsoft.App/managedEnvironments/env-sandbox`,
      configuration: {
        secrets: [
          {
            name: "missing",
            keyVaultUrl: `${bundleUrl.replace(/\/[0-9a-f]{32}$/, "")}-gone`,
            identity: "system",
          },
        ],
      },
      template: {
        revisionSuffix: "r1",
        containers: [
          { name: "web", image: "example.azurecr.io/web:1", env: [{ name: "X", secretRef: "missing" }] },
        ],
      },
    };
    await expect(arm.containerApps.createOrUpdate(RG, "broken", failing).pollUntilDone()).rejects.toThrow();
    const state = value(
      await call(reattestRevisionState({ app: "broken", revisionName: "broken--r1" }, services, sink)),
    );
    expect(state.state).toBe("Failed");
    expect(state.detail).toContain("provisioning Failed");

    // A new revision whose containers exit at once never activates: Failed now, not Pending
    // until the revision timeout.
    const crashing = spec("crashing", 6, "not-a-token", { url: bundleUrl });
    crashing.template!.containers![0]!.command = ["/bin/false"];
    await arm.containerApps.createOrUpdate(RG, "crashing", crashing).pollUntilDone();
    const activation = await pollActivity(
      "the crash-looping revision to be reported",
      15_000,
      () => reattestRevisionState({ app: "crashing", revisionName: "crashing--v1" }, services, sink),
      (v) => v.state !== "Pending",
    );
    expect(activation.value).toMatchObject({ state: "Failed", runningState: "ActivationFailed" });
    expect(activation.value.detail).toMatch(/^its containers never started \(ActivationFailed\)/);
    await arm.containerApps.beginDeleteAndWait(RG, "crashing");
  });

  it("rethrows 503 and 429 from the Logs API (after the SDK's own retries), then verifies", async () => {
    const prepared = value(await call(reattestPrepare({ app: "app-a" }, services, sink)));
    const input = {
      app: "app-a",
      alias: prepared.alias,
      workloadId: prepared.workloadId,
      tokenSha256: prepared.previousAgents[0] ?? "",
      since: new Date(Date.now() - 600_000).toISOString(),
    };
    for (const status of [503, 429]) {
      // The SDK tries 4 times (1 + 3 retries); Retry-After 0 keeps that fast.
      azure.logsApi.injectFault({ status, count: 4, retryAfterSeconds: 0 });
      const p = reattestVerify(input, services, sink);
      await expect(p).rejects.toBeInstanceOf(TransientError);
      await expect(p).rejects.toMatchObject({
        code: expect.stringMatching(/ServiceUnavailable|Http5|Http429/),
      });
    }
    expect(value(await call(reattestVerify(input, services, sink)))).toEqual({
      agentAttested: true,
      svidSigned: true,
    });
  });

  it("reaches SPIRE through managed run-commands on the VM when SPIRE_API=run-command", async () => {
    const rcEnv = {
      ...env,
      SPIRE_API: "run-command",
      SPIRE_SERVER_SOCKET: "",
      SPIRE_VM_RESOURCE_GROUP: VM_RG,
      SPIRE_VM_NAME: VM,
      RUN_COMMAND_COOLDOWN_SECONDS: "0",
    };
    const viaVm = createServices(loadConfig(rcEnv), { env: rcEnv, logSink: sink });
    try {
      const viaGrpc = value(await call(reattestPrepare({ app: "app-a" }, services, sink)));
      const t0 = performance.now();
      const prepared = value(await call(reattestPrepare({ app: "app-a" }, viaVm, sink)));
      expect(prepared).toEqual(viaGrpc);
      expect(sim.counters.snapshot().runCommands).toMatchObject({ wedges: 0 });
      console.log(
        JSON.stringify({ figures: "prepare via run-command", ms: Math.round(performance.now() - t0) }),
      );
    } finally {
      await viaVm.close();
    }
  }, 60_000);

  it("the reattest orchestration, replayed by durable-functions, runs on the real activities", async () => {
    const app = "app-c";
    const firstToken = await deploy(app, 3, { url: bundleUrl });
    const harness = realActivitiesHarness();
    try {
      const input = orchestrationInput(app);
      const t0 = Date.now();
      const id = reattestInstanceId(app);
      const status = await harness.run(REATTEST_ORCHESTRATION, input, id, 120_000);
      const seconds = (Date.now() - t0) / 1000;
      expect(status.runtimeStatus).toBe("Completed");
      const out = status.output as ReattestOutput;
      expect(out).toMatchObject({
        outcome: "succeeded",
        previousAgents: 1,
        evicted: 1,
        retired: 0,
        checks: { agentAttested: true, svidSigned: true },
      });
      const newToken = await tokenSecret(app);
      expect(newToken).not.toBe(firstToken);
      expect(await aliasEntries(app)).toHaveLength(1);
      const rows = [];
      for await (const r of (await services.fleetTable()).listEntities({
        queryOptions: { filter: `PartitionKey eq '${app}'` },
      })) {
        rows.push(r);
      }
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({
        outcome: "succeeded",
        trigger: "alert",
        newAgentSha256: sha256(newToken),
      });
      // Durable history, customStatus and output are stored in plain text: no token in any of them.
      const stored = JSON.stringify([harness.history(id), status]);
      for (const token of tokensSeen) expect(stored).not.toContain(token);
      console.log(
        JSON.stringify({ figures: "reattest orchestration", seconds, stepSeconds: out.stepSeconds }),
      );
    } finally {
      await harness.dispose();
    }
  }, 150_000);

  it("the orchestration in Multiple revision mode: the new revision takes the traffic, the old one is retired", async () => {
    const app = "app-md";
    await deploy(app, 9, { url: bundleUrl }, multipleMode(app));
    const old = `${app}--v1`;
    const harness = realActivitiesHarness();
    try {
      const id = reattestInstanceId(app);
      const status = await harness.run(REATTEST_ORCHESTRATION, orchestrationInput(app), id, 120_000);
      expect(status.runtimeStatus).toBe("Completed");
      const out = status.output as ReattestOutput;
      const revisionName = out.revisionName ?? "";
      expect(await arm.containerAppsRevisions.getRevision(RG, app, revisionName)).toMatchObject({
        active: true,
        trafficWeight: 100,
        runningState: "Running",
      });
      // Without the retire step the old revision would stay active on a spent token: a crash
      // loop on its next replica restart, the alert again, and another re-attestation.
      expect(await arm.containerAppsRevisions.getRevision(RG, app, old)).toMatchObject({
        active: false,
        replicas: 0,
      });
      expect((await arm.containerAppsRevisionReplicas.listReplicas(RG, app, old)).value).toEqual([]);
      expect((await revisionsOf(app)).filter((r) => r.active).map((r) => r.name)).toEqual([revisionName]);
      expect(out).toMatchObject({ outcome: "succeeded", evicted: 1, retired: 1 });
      expect(out.warning).toBeUndefined();
      expect(Object.keys(out.stepSeconds)).toContain("retire");
      await tokenSecret(app);
      const stored = JSON.stringify([harness.history(id), status]);
      for (const token of tokensSeen) expect(stored).not.toContain(token);
    } finally {
      await harness.dispose();
      await arm.containerApps.beginDeleteAndWait(RG, app);
    }
  }, 150_000);

  it("no join token appears in any activity's output or log line", () => {
    expect(tokensSeen.size).toBeGreaterThanOrEqual(4);
    const outputs = JSON.stringify(results);
    const logs = logLines.join("\n");
    expect(logLines.length).toBeGreaterThan(20);
    for (const token of tokensSeen) {
      expect(token).toMatch(/^[0-9a-f-]{36}$/);
      expect(outputs).not.toContain(token);
      expect(logs).not.toContain(token);
    }
    expect(outputs).not.toContain("join_token/");
    expect(logs).not.toContain("join_token/");
  });
});
