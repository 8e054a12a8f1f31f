import type { ContainerApp } from "@azure/arm-appcontainers";
import { ContainerAppsAPIClient } from "@azure/arm-appcontainers";
import { ComputeManagementClient, type VirtualMachineRunCommand } from "@azure/arm-compute";
import type { TokenCredential } from "@azure/core-auth";
import type { PipelinePolicy } from "@azure/core-rest-pipeline";
import { agentAliasId, workloadId } from "../../shared/spiffe/index.js";

/*
 * The seed deployment's deploy.sh steps 4-6 as it ran them (../shared/notes/seed-deployment.md;
 * seed 002 "Step 4-6"), replayed against the same simulator, the same real SPIRE server on the
 * simulated VM, and the sandbox clock, so the product's deploy can be measured beside it. It is a
 * yardstick, not a tool: serial, one managed run-command per token and per entry, each costing
 * create → poll every 5 s → wait for provisioningState → delete → 10 s cooldown; one full-YAML
 * update per app; `sleep 60` after the updates and `sleep 30` after the entries. Like the seed it
 * reads join tokens back from run-command output (readable from ARM): never copy it into product
 * code.
 *
 * Every wait is in sandbox time (the shared clock's `scale` sandbox ms per real ms) and the
 * seconds it reports are sandbox seconds, so a run at timeScale 10 reports what the seed would
 * have taken, and compares fairly with the product's durable timers on the same clock.
 */

export interface SeedDeployOptions {
  /** The simulator's ARM endpoint and CA, and a credential it accepts (the sandbox's). */
  arm: { endpoint: string; caPem: string; subscriptionId: string; credential: TokenCredential };
  appsResourceGroup: string;
  vm: { resourceGroup: string; name: string };
  trustDomain: string;
  /** The apps to deploy, in order (the seed looped over its list of agents). */
  apps: string[];
  clock: { scale: number; now(): number };
  tags?: { blueprintOid: string; agentOid: string };
  /** The sidecar container of each app (the seed's `<app>-spiffe-proxy`). */
  sidecarOf?: (app: string) => string;
  log?: (message: string) => void;
  signal?: AbortSignal;
}

export interface SeedDeployResult {
  /** Sandbox-clock seconds from the first run-command to the end of the last sleep. */
  seconds: number;
  /** Every HTTP request its ARM clients sent (LRO polls and run-command polls included). */
  armCalls: number;
  runCommands: number;
  /** Agents `agent list` counted after the updates (the seed's only check). */
  agentsListed: number;
  /** Per step, sandbox seconds. */
  stepSeconds: Record<string, number>;
}

/** Its run-commands are named so a measurement beside the product can tell them apart. */
export const SEED_RUN_COMMAND_PREFIX = "seed-deploy-";
const ARM_SCOPE = "https://management.azure.com/.default";
const POLL_SECONDS = 5;
const COOLDOWN_SECONDS = 10;
const SLEEP_AFTER_UPDATES_SECONDS = 60;
const SLEEP_AFTER_ENTRIES_SECONDS = 30;
/** A run-command that is not done after this many polls is a failed deploy (bounded wait). */
const MAX_POLLS = 120;
const SERVER = "docker exec spire-server /opt/spire/bin/spire-server";
const TERMINAL = new Set(["Succeeded", "Failed", "TimedOut", "Canceled"]);

export async function seedDeploy(opts: SeedDeployOptions): Promise<SeedDeployResult> {
  const log = opts.log ?? (() => undefined);
  let armCalls = 0;
  const counting: PipelinePolicy = {
    name: "seedArmCallCounter",
    sendRequest(request, next) {
      armCalls++;
      return next(request);
    },
  };
  const clientOptions = {
    endpoint: opts.arm.endpoint,
    credentials: { scopes: [ARM_SCOPE] },
    tlsOptions: { ca: opts.arm.caPem },
    additionalPolicies: [{ policy: counting, position: "perRetry" as const }],
  };
  const containerApps = new ContainerAppsAPIClient(
    opts.arm.credential,
    opts.arm.subscriptionId,
    clientOptions,
  );
  const compute = new ComputeManagementClient(opts.arm.credential, opts.arm.subscriptionId, clientOptions);

  const sleep = (sandboxSeconds: number) =>
    new Promise<void>((resolve, reject) => {
      if (opts.signal?.aborted) return reject(new Error("seed deploy aborted"));
      const t = setTimeout(resolve, (sandboxSeconds * 1000) / opts.clock.scale);
      opts.signal?.addEventListener(
        "abort",
        () => {
          clearTimeout(t);
          reject(new Error("seed deploy aborted"));
        },
        { once: true },
      );
    });

  let runCommands = 0;
  const { resourceGroup: vmRg, name: vmName } = opts.vm;
  /** The seed's shared run-command helper: create, poll, wait for ARM, delete, cool down. */
  const runCommand = async (
    script: string,
    parameters: Record<string, string> = {},
  ): Promise<{ output: string; exitCode: number }> => {
    runCommands++;
    const name = `${SEED_RUN_COMMAND_PREFIX}${runCommands}`;
    const body: VirtualMachineRunCommand = {
      location: "westeurope",
      source: { script },
      parameters: Object.entries(parameters).map(([n, value]) => ({ name: n, value })),
      timeoutInSeconds: 300,
    };
    await compute.virtualMachineRunCommands.createOrUpdate(vmRg, vmName, name, body).submitted();
    let view: VirtualMachineRunCommand | undefined;
    for (let poll = 0; ; poll++) {
      if (poll >= MAX_POLLS) throw new Error(`run-command ${name} did not finish after ${MAX_POLLS} polls`);
      await sleep(POLL_SECONDS);
      view = await compute.virtualMachineRunCommands.getByVirtualMachine(vmRg, vmName, name, {
        expand: "instanceView",
      });
      const exec = view.instanceView?.executionState ?? "";
      if (TERMINAL.has(exec) && TERMINAL.has(view.provisioningState ?? "")) break;
    }
    await compute.virtualMachineRunCommands.delete(vmRg, vmName, name).pollUntilDone();
    await sleep(COOLDOWN_SECONDS);
    const output = view.instanceView?.output ?? "";
    const exitCode = view.instanceView?.exitCode ?? -1;
    if (view.instanceView?.executionState !== "Succeeded" || exitCode !== 0) {
      throw new Error(
        `run-command ${name} ended ${view.instanceView?.executionState} (exit ${exitCode}): ${view.instanceView?.error ?? ""}`,
      );
    }
    return { output, exitCode };
  };

  const tagNames = opts.tags ?? { blueprintOid: "spiffe-blueprint-oid", agentOid: "spiffe-agent-oid" };
  const sidecarOf = opts.sidecarOf ?? ((app: string) => `${app}-spiffe-proxy`);
  const stepSeconds: Record<string, number> = {};
  const started = opts.clock.now();
  let stepStart = started;
  const step = (name: string) => {
    const now = opts.clock.now();
    stepSeconds[name] = Math.round((now - stepStart) / 100) / 10;
    stepStart = now;
  };

  // Step 4: the server container, then its bundle.
  log("seed step 4: start the SPIRE server (run-command), extract the bundle (run-command)");
  await runCommand("docker start spire-server");
  const bundlePem = (await runCommand(`${SERVER} bundle show -format pem`)).output.trim();
  if (!bundlePem.includes("BEGIN CERTIFICATE")) throw new Error("bundle show printed no certificate");
  step("server");

  // Step 5: per app, a token then a full-YAML update.
  const workloads = new Map<string, string>();
  for (const app of opts.apps) {
    log(`seed step 5: ${app}: token generate (run-command), full-YAML update`);
    const alias = agentAliasId(opts.trustDomain, app);
    const out = await runCommand(`${SERVER} token generate -spiffeID "$ALIAS" -ttl 600`, { ALIAS: alias });
    const token = /Token:\s*(\S+)/.exec(out.output)?.[1];
    if (!token) throw new Error(`token generate printed no token for ${app}`);
    // `az containerapp update --yaml` reads the app (and its secrets, which the YAML must carry
    // again) and replaces the whole spec; the suffix is dropped so a new revision is named freshly.
    const current = await containerApps.containerApps.get(opts.appsResourceGroup, app);
    const secrets = (await containerApps.containerApps.listSecrets(opts.appsResourceGroup, app)).value ?? [];
    const spec = withToken(current, sidecarOf(app), token, bundlePem, secrets);
    await containerApps.containerApps.createOrUpdate(opts.appsResourceGroup, app, spec).pollUntilDone();
    const tags = current.tags ?? {};
    workloads.set(
      alias,
      workloadId(opts.trustDomain, tags[tagNames.blueprintOid] ?? "", tags[tagNames.agentOid] ?? ""),
    );
  }
  step("updates");
  log(`seed: sleep ${SLEEP_AFTER_UPDATES_SECONDS}`);
  await sleep(SLEEP_AFTER_UPDATES_SECONDS);
  const listed = await runCommand(`${SERVER} agent list`);
  const agentsListed = listed.output.split("\n").filter((l) => l.includes("SPIFFE ID")).length;
  step("agentList");

  // Step 6: per app, one workload entry under its alias.
  for (const [alias, spiffeId] of workloads) {
    log(`seed step 6: entry create ${spiffeId} (run-command)`);
    await runCommand(
      `${SERVER} entry create -parentID "$PARENT" -spiffeID "$SPIFFE" -selector unix:uid:0 -x509SVIDTTL 3600`,
      { PARENT: alias, SPIFFE: spiffeId },
    );
  }
  step("entries");
  log(`seed: sleep ${SLEEP_AFTER_ENTRIES_SECONDS}`);
  await sleep(SLEEP_AFTER_ENTRIES_SECONDS);
  step("settle");

  return {
    seconds: Math.round((opts.clock.now() - started) / 100) / 10,
    armCalls,
    runCommands,
    agentsListed,
    stepSeconds,
  };
}

/** The seed's full spec: the token as the sidecar's secret, the bundle PEM in plain env. */
function withToken(
  app: ContainerApp,
  sidecar: string,
  token: string,
  bundlePem: string,
  secrets: Array<{ name?: string; value?: string }>,
): ContainerApp {
  const kept = secrets.filter((s) => s.name !== "join-token").map((s) => ({ name: s.name, value: s.value }));
  const containers = (app.template?.containers ?? []).map((c) => {
    if (c.name !== sidecar) return c;
    const env = (c.env ?? []).filter((e) => e.name !== "JOIN_TOKEN" && e.name !== "SPIRE_TRUST_BUNDLE");
    env.push(
      { name: "JOIN_TOKEN", secretRef: "join-token" },
      { name: "SPIRE_TRUST_BUNDLE", value: bundlePem },
    );
    return { ...c, env };
  });
  const { revisionSuffix: _dropped, ...template } = app.template ?? {};
  return {
    location: app.location,
    tags: app.tags,
    environmentId: app.environmentId,
    configuration: {
      ...app.configuration,
      secrets: [...kept, { name: "join-token", value: token }],
    },
    template: { ...template, containers },
  };
}
