import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { ContainerApp } from "@azure/arm-appcontainers";
import { type Sandbox, startSandbox } from "../environment.js";
import { pollUntil } from "../spire/index.js";
import { agentsHolding, deployFleet, type FleetApp } from "./fleet.js";
import type { Scenario, ScenarioContext } from "./types.js";

/*
 * The failure this product exists for: a replica restart spends the agent's join token, the agent
 * crash-loops, the alert fires, and spire-autopilot re-attests the app with nobody awake.
 */

const APPS = ["orders", "billing", "search"];
const VICTIM = "billing";
const TIME_SCALE = 10;

interface Operation {
  runtimeStatus: string;
  output: {
    outcome?: string;
    failure?: string;
    stepSeconds?: Record<string, number>;
    checks?: unknown;
  } | null;
}

export async function operation(sb: Sandbox, id: string): Promise<Operation | undefined> {
  const res = await fetch(`${sb.host.url}/api/operations/${id}?code=${sb.host.keys.functionKeys.default}`);
  return res.status === 200 ? ((await res.json()) as Operation) : undefined;
}

export async function waitForOperation(sb: Sandbox, id: string, timeoutMs: number, signal: AbortSignal) {
  return pollUntil(
    `operation ${id} to finish`,
    async () => {
      const op = await operation(sb, id);
      return op && ["Completed", "Failed", "Terminated"].includes(op.runtimeStatus) ? op : undefined;
    },
    { timeoutMs, intervalMs: 250, signal },
  );
}

/**
 * Where a token must never be: the product's logs, durable state (history, customStatus, outputs),
 * plain env, and anything readable from ARM about run-commands (every run-command body and
 * instance view the simulator served, and the run-command request bodies).
 */
export function countTokenLeaks(
  sb: Sandbox,
  tokens: string[],
  apps: ContainerApp[],
  stateDir: string,
): number {
  const instances = join(stateDir, "host", "instances");
  const durable = readdirSync(instances).map((f) => readFileSync(join(instances, f), "utf8"));
  const plainEnv = apps.flatMap((a) =>
    (a.template?.containers ?? []).flatMap((c) => (c.env ?? []).map((e) => e.value ?? "")),
  );
  const armRunCommands = sb.azure.transcript
    .all()
    .filter((x) => x.resourceType.toLowerCase() === "virtualmachines/runcommands")
    .flatMap((x) => [x.requestBody, x.responseBody]);
  const haystacks = [sb.host.output(), ...durable, ...plainEnv, ...armRunCommands];
  let leaks = 0;
  for (const token of tokens) for (const h of haystacks) leaks += h.split(token).length - 1;
  return leaks;
}

const comparable = (c: unknown) => JSON.stringify(c);

/** ARM calls by action made between two counter snapshots (the re-attestation's own). */
export function armCallsSince(
  before: Record<string, number>,
  after: Record<string, number>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [action, n] of Object.entries(after)) {
    const d = n - (before[action] ?? 0);
    if (d > 0) out[action] = d;
  }
  return out;
}

export async function startFleetSandbox(ctx: ScenarioContext) {
  const sb = await startSandbox({
    stateDir: ctx.workDir,
    port: 0,
    timeScale: TIME_SCALE,
    profile: ctx.profile,
    echoHost: false,
    log: (m) => ctx.log(m),
  });
  return sb;
}

export const replicaRestart: Scenario = {
  name: "replica-restart",
  description: `A fleet of ${APPS.length} apps with real agents; one replica restarts (spent token, crash loop); the alert fires and the product re-attests the app.`,
  timeoutSeconds: 1_500,
  async run(ctx) {
    const sb = await startFleetSandbox(ctx);
    try {
      const rg = sb.settings.APPS_RESOURCE_GROUP!;
      const { containerApps } = sb.azure.clients();
      const fleet: FleetApp[] = await deployFleet(sb, APPS, ctx.log);
      const deployTokens = await Promise.all(
        APPS.map(
          async (a) =>
            (await containerApps.containerApps.listSecrets(rg, a)).value?.find((s) => s.name === "join-token")
              ?.value ?? "",
        ),
      );
      const before = new Map<string, ContainerApp>();
      for (const a of APPS) before.set(a, await containerApps.containerApps.get(rg, a));

      const armBefore = sb.azure.counters.snapshot().armCalls;
      ctx.log(`restarting the replica of ${VICTIM}: its agent's join token is spent`);
      const restartedAt = Date.now();
      sb.azure.containerApps.restartReplica(rg, VICTIM);

      const instanceId = `reattest-${VICTIM}`;
      await pollUntil(
        "the alert to start a re-attestation",
        async () => ((await operation(sb, instanceId)) ? true : undefined),
        {
          timeoutMs: 180_000,
          intervalMs: 250,
          signal: ctx.signal,
        },
      );
      const alertedSeconds = (Date.now() - restartedAt) / 1000;
      ctx.log(
        `the alert started ${instanceId} after ${alertedSeconds.toFixed(1)} s; waiting for it to finish`,
      );
      const op = await waitForOperation(sb, instanceId, 600_000, ctx.signal);
      const mttrSeconds = Math.round((Date.now() - restartedAt) / 100) / 10;
      ctx.log(`re-attestation ${op.runtimeStatus}: ${JSON.stringify(op.output)}`);

      const spire = sb.spire.client();
      let agentsPerApp = 0;
      let aliasEntriesPerApp = 0;
      try {
        const victim = fleet.find((a) => a.name === VICTIM)!;
        agentsPerApp = (await agentsHolding(spire, victim.alias)).length;
        aliasEntriesPerApp = (await spire.listEntries({ bySpiffeId: victim.alias })).length;
      } finally {
        await spire.close();
      }

      const armCalls = armCallsSince(armBefore, sb.azure.counters.snapshot().armCalls);
      const after = new Map<string, ContainerApp>();
      for (const a of APPS) after.set(a, await containerApps.containerApps.get(rg, a));
      const otherAppsTouched = APPS.filter(
        (a) => a !== VICTIM && after.get(a)!.latestRevisionName !== before.get(a)!.latestRevisionName,
      ).length;
      const sidecar = `${VICTIM}-spiffe-proxy`;
      const beforeContainers = before.get(VICTIM)!.template!.containers!;
      const afterContainers = after.get(VICTIM)!.template!.containers!;
      let otherContainersChanged = Math.abs(beforeContainers.length - afterContainers.length);
      for (const c of beforeContainers) {
        const now = afterContainers.find((x) => x.name === c.name);
        if (!now) continue;
        if (c.name === sidecar) {
          // The sidecar may change only where the token and the pinned bundle are referenced.
          const strip = (x: typeof c) => ({
            ...x,
            env: (x.env ?? []).filter((e) => e.name !== "JOIN_TOKEN" && e.name !== "SPIRE_TRUST_BUNDLE"),
          });
          if (comparable(strip(c)) !== comparable(strip(now))) otherContainersChanged++;
        } else if (comparable(c) !== comparable(now)) {
          otherContainersChanged++;
        }
      }
      const newToken =
        (await containerApps.containerApps.listSecrets(rg, VICTIM)).value?.find(
          (s) => s.name === "join-token",
        )?.value ?? "";
      const tokenLeaks = countTokenLeaks(
        sb,
        [...deployTokens, newToken].filter(Boolean),
        [...after.values()],
        ctx.workDir,
      );
      const reattestRuns = op.runtimeStatus === "Completed" ? 1 : 0;
      const succeeded = op.output?.outcome === "succeeded";
      return {
        mttrSeconds,
        // On the sandbox clock (what Azure would take, except that SPIRE runs in real time, so its
        // 5 s agent sync counts timeScale times over).
        mttrSandboxSeconds: Math.round(mttrSeconds * TIME_SCALE),
        alertToRunSeconds: Math.round(alertedSeconds * 10) / 10,
        stepSeconds: op.output?.stepSeconds ?? {},
        reattestRuns,
        agentsPerApp,
        aliasEntriesPerApp,
        otherAppsTouched,
        otherContainersChanged,
        tokenLeaks,
        armCalls,
        armCallsTotal: Object.values(armCalls).reduce((a, b) => a + b, 0),
        timeScale: TIME_SCALE,
        profile: ctx.profile ?? "fast",
        outcome: op.output?.outcome ?? op.runtimeStatus,
        failure: op.output?.failure,
        pass:
          succeeded &&
          reattestRuns === 1 &&
          agentsPerApp === 1 &&
          aliasEntriesPerApp === 1 &&
          otherAppsTouched === 0 &&
          otherContainersChanged === 0 &&
          tokenLeaks === 0,
      };
    } finally {
      await sb.stop();
    }
  },
};
