import { seedDeploy } from "../baseline/seed-deploy.js";
import { SANDBOX_SPIRE_VM, type Sandbox, startSandbox } from "../environment.js";
import { pollUntil } from "../spire/index.js";
import { createDemoFleet } from "./demo-fleet.js";
import type { Scenario, ScenarioContext } from "./types.js";

/*
 * The product's deploy beside the seed's deploy.sh, on the same kind of fleet (never-attested
 * managed apps), the same simulator and the same real SPIRE server, for N = 1, 5 and 20, with the
 * product reaching SPIRE over gRPC and by run-command.
 *
 * Time. Both sides are measured on the sandbox clock (timeScale 10: 10 sandbox s per real s).
 * The seed's own waits (5 s polls, 10 s cooldowns, sleep 60 / 30) are sandbox seconds, as are the
 * product's durable timers. SPIRE and the fast ARM latencies run in real time and count ten times
 * over on both sides, which penalises the product more than the seed (the seed is mostly its own
 * sleeps). The product's run-command executor sleeps in real time, so its cooldown is set to 1 s:
 * 10 sandbox seconds, the same cooldown the seed keeps.
 *
 * Wall time. The seed never talks to the product, so its sequence does not depend on the
 * product's SPIRE access mode: it runs once per N (in the first sandbox) and its figures stand in
 * both modes' rows. Serial and without branches, its cost is linear in N: a fixed part (server
 * start, bundle, agent list, the two sleeps) plus per app one token run-command, one update and one
 * entry run-command. N = 1 and 5 run for real; N = 20 (about 2 real minutes on its own) is
 * extrapolated from the N = 5 run's per-app step times unless SEED_FULL=1 runs it, so the whole
 * scenario stays within a few minutes of wall clock. Each row says which (`seedMeasured`).
 */

const TIME_SCALE = 10;
const SIZES = [1, 5, 20] as const;
const MODES = ["grpc", "run-command"] as const;
type Mode = (typeof MODES)[number];
const SEED_RUN_UP_TO = process.env.SEED_FULL === "1" ? 20 : 5;

interface Row {
  n: number;
  mode: Mode;
  productSeconds: number | null;
  seedSeconds: number;
  speedup: number | null;
  productRunCommands: number | null;
  seedRunCommands: number;
  productSucceeded: number | null;
  seedMeasured: boolean;
  productError?: string;
}

interface SeedFigures {
  seconds: number;
  runCommands: number;
  measured: boolean;
  stepSeconds: Record<string, number>;
}

interface DeployOperation {
  runtimeStatus: string;
  output: { outcome?: string; totals?: { succeeded?: number }; failure?: string } | null;
}

const round1 = (x: number) => Math.round(x * 10) / 10;

async function hostFetch(sb: Sandbox, path: string, init?: RequestInit) {
  const sep = path.includes("?") ? "&" : "?";
  return fetch(`${sb.host.url}${path}${sep}code=${sb.host.keys.functionKeys.default}`, init);
}

/** POST /api/deploy for exactly these apps; waits for the operation; sandbox seconds and run-commands. */
async function productDeploy(sb: Sandbox, apps: string[], ctx: ScenarioContext) {
  const rc0 = sb.azure.counters.snapshot().runCommands.created;
  const started = sb.clock.now();
  const res = await hostFetch(sb, "/api/deploy", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ apps, reason: `deploy-vs-seed N=${apps.length}` }),
  });
  const accepted = (await res.json().catch(() => ({}))) as { id?: string; error?: string };
  if (res.status !== 202 || !accepted.id)
    throw new Error(`POST /api/deploy answered ${res.status} ${JSON.stringify(accepted)}`);
  const op = await pollUntil(
    `deploy ${accepted.id} to finish`,
    async () => {
      const r = await hostFetch(sb, `/api/operations/${accepted.id}`);
      const o = r.status === 200 ? ((await r.json()) as DeployOperation) : undefined;
      return o && ["Completed", "Failed", "Terminated"].includes(o.runtimeStatus) ? o : undefined;
    },
    { timeoutMs: 240_000, intervalMs: 250, signal: ctx.signal },
  );
  const seconds = round1((sb.clock.now() - started) / 1000);
  ctx.log(
    `product N=${apps.length}: ${op.runtimeStatus} in ${seconds} sandbox s: ${JSON.stringify(op.output)}`,
  );
  return {
    seconds,
    runCommands: sb.azure.counters.snapshot().runCommands.created - rc0,
    succeeded: op.output?.totals?.succeeded ?? 0,
  };
}

async function runSeed(sb: Sandbox, apps: string[], ctx: ScenarioContext): Promise<SeedFigures> {
  const r = await seedDeploy({
    arm: {
      endpoint: sb.azure.url,
      caPem: sb.azure.caPem,
      subscriptionId: sb.azure.subscriptionId,
      credential: sb.azure.credential,
    },
    appsResourceGroup: sb.settings.APPS_RESOURCE_GROUP!,
    vm: SANDBOX_SPIRE_VM,
    trustDomain: sb.settings.SPIRE_TRUST_DOMAIN!,
    apps,
    clock: sb.clock,
    signal: ctx.signal,
  });
  ctx.log(
    `seed N=${apps.length}: ${r.seconds} sandbox s, ${r.runCommands} run-commands, ${r.armCalls} ARM calls`,
  );
  return { seconds: r.seconds, runCommands: r.runCommands, measured: true, stepSeconds: r.stepSeconds };
}

/** The seed at N from a measured run at m apps: fixed steps as measured, per-app steps scaled. */
export function extrapolateSeed(measured: SeedFigures, m: number, n: number): SeedFigures {
  const s = measured.stepSeconds;
  const perApp = ((s.updates ?? 0) + (s.entries ?? 0)) / m;
  const fixed = (s.server ?? 0) + (s.agentList ?? 0) + (s.settle ?? 0);
  return {
    seconds: round1(fixed + perApp * n),
    // start, bundle, agent list, and per app a token and an entry.
    runCommands: 3 + 2 * n,
    measured: false,
    stepSeconds: {},
  };
}

async function startModeSandbox(ctx: ScenarioContext, mode: Mode): Promise<Sandbox> {
  const sb = await startSandbox({
    stateDir: `${ctx.workDir}/${mode}`,
    port: 0,
    timeScale: TIME_SCALE,
    echoHost: false,
    log: (m) => ctx.log(m),
    settings:
      mode === "run-command"
        ? { SPIRE_API: "run-command", RUN_COMMAND_COOLDOWN_SECONDS: "1", JOIN_TOKEN_TTL_SECONDS: "1200" }
        : {},
  });
  // The alert path is other scenarios' subject: its re-attestations must not race the deploys.
  sb.services.alerts.setReceivers([]);
  return sb;
}

export const deployVsSeed: Scenario = {
  name: "deploy-vs-seed",
  description:
    "The product's POST /api/deploy beside the seed's deploy.sh sequence (serial run-commands, sleeps), on never-attested fleets of 1, 5 and 20 apps, with SPIRE over gRPC and by run-command; sandbox-clock seconds and run-commands per row.",
  // A fresh machine builds SPIRE first (about 5 minutes on 2 cores); the run itself is a few minutes.
  timeoutSeconds: 1_500,
  async run(ctx) {
    const seeds = new Map<number, SeedFigures>();
    const rows: Row[] = [];
    for (const mode of MODES) {
      const sb = await startModeSandbox(ctx, mode);
      try {
        for (const n of SIZES) {
          const tag = mode === "grpc" ? "g" : "r";
          const product = (await createDemoFleet(sb, { managed: n, prefix: `p${tag}${n}` })).managed;
          let p: Awaited<ReturnType<typeof productDeploy>> | undefined;
          let productError: string | undefined;
          try {
            p = await productDeploy(sb, product, ctx);
          } catch (err) {
            productError = (err as Error).message;
            ctx.log(`product N=${n} (${mode}): ${productError}`);
          }
          if (!seeds.has(n)) {
            if (n <= SEED_RUN_UP_TO) {
              const seedApps = (await createDemoFleet(sb, { managed: n, prefix: `seed${n}` })).managed;
              seeds.set(n, await runSeed(sb, seedApps, ctx));
            } else {
              const base = seeds.get(SEED_RUN_UP_TO)!;
              seeds.set(n, extrapolateSeed(base, SEED_RUN_UP_TO, n));
            }
          }
          const seed = seeds.get(n)!;
          rows.push({
            n,
            mode,
            productSeconds: p?.seconds ?? null,
            seedSeconds: seed.seconds,
            speedup: p ? round1(seed.seconds / Math.max(p.seconds, 0.1)) : null,
            productRunCommands: p?.runCommands ?? null,
            seedRunCommands: seed.runCommands,
            productSucceeded: p?.succeeded ?? null,
            seedMeasured: seed.measured,
            ...(productError ? { productError } : {}),
          });
        }
      } finally {
        await sb.stop();
      }
    }
    const complete = rows.every((r) => r.productSeconds !== null && r.productSucceeded === r.n);
    const fastAtFive = rows.filter((r) => r.n === 5).every((r) => (r.speedup ?? 0) >= 5);
    const fewRunCommands = rows
      .filter((r) => r.mode === "run-command")
      .every((r) => r.productRunCommands !== null && r.productRunCommands <= 3);
    return { rows, pass: complete && fastAtFive && fewRunCommands };
  },
};
