import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { ContainerApp } from "@azure/arm-appcontainers";
import { SecretClient } from "@azure/keyvault-secrets";
import type { DeployOutput, DeployPlan } from "../../orchestrations/deploy.js";
import { SandboxCredential } from "../../shared/azure/credential.js";
import { ownedEntryId } from "../../shared/spire/entry-reconcile.js";
import { type Sandbox, startSandbox } from "../environment.js";
import { type HostProcess, startHostProcess } from "../host/process.js";
import { countServerApiCalls, pollUntil } from "../spire/index.js";
import { fleetAppSpec } from "./fleet.js";
import { armCallsSince, countTokenLeaks } from "./replica-restart.js";
import { NEVER } from "./sweep-common.js";
import type { Scenario, ScenarioContext } from "./types.js";

/*
 * The product's deploy on a fleet that has never attested: 5 managed apps (a placeholder token, so
 * their agents crash-loop until deployed), one unmanaged app, one tagged but unusable; and a
 * stale owned workload entry of an app that no longer exists. One POST /api/deploy with one image
 * change; every managed app must come up attested with its workload SVID signed, nothing else of
 * any app changing, and no token anywhere it must not be.
 */

const NAMES = ["ada", "bea", "cyd", "dot", "eve"];
/** n managed app names: the five above, then app-05, app-06, ... */
const managedNames = (n: number) =>
  Array.from({ length: n }, (_, i) => NAMES[i] ?? `app-${String(i).padStart(2, "0")}`);
const UNMANAGED = "plain";
const UNUSABLE = "broken";
const GHOST = "ghost";
const NEW_IMAGE = "example.azurecr.io/agent:2.0";

interface DeployOperation {
  runtimeStatus: string;
  status: unknown;
  output: DeployOutput | null;
}

const REPO_ROOT = resolve(import.meta.dirname, "../..");
const TIME_SCALE = 10;
let currentHost: HostProcess | undefined;

async function hostFetch(sb: Sandbox, path: string, init?: RequestInit) {
  const host = currentHost ?? sb.host;
  const sep = path.includes("?") ? "&" : "?";
  return fetch(`${host.url}${path}${sep}code=${host.keys.functionKeys.default}`, init);
}

/** SIGKILLs the product host once the deploy is fanning out, and starts it again on the same state. */
async function killDuringFanOut(sb: Sandbox, ctx: ScenarioContext, id: string): Promise<HostProcess> {
  await pollUntil(
    "the deploy to be re-attesting apps",
    async () => {
      const r = await hostFetch(sb, `/api/operations/${id}`);
      const o =
        r.status === 200
          ? ((await r.json()) as { status?: { step?: string; appsDone?: number } })
          : undefined;
      return o?.status?.step === "reattest" && (o.status.appsDone ?? 0) >= 1 ? true : undefined;
    },
    { timeoutMs: 300_000, intervalMs: 100, signal: ctx.signal },
  );
  await sb.host.kill("SIGKILL");
  ctx.log("SIGKILLed the host during the fan-out; starting it again on the same state");
  return startHostProcess({
    appEntry: join(REPO_ROOT, "functions/index.ts"),
    stateDir: join(ctx.workDir, "host"),
    port: 0,
    timeScale: sb.clock.timeScale,
    clockOrigin: sb.clock.origin,
    env: sb.settings,
  });
}

/** An app as a person would have created it before spire-autopilot: no valid token yet. */
function neverAttested(sb: Sandbox, name: string, kind: "managed" | "unmanaged" | "unusable"): ContainerApp {
  const spec = fleetAppSpec(sb, name, "placeholder-not-a-token", "");
  const sidecar = spec.template!.containers![1]!;
  sidecar.env = sidecar.env!.filter((e) => e.name !== "SPIRE_TRUST_BUNDLE");
  if (kind === "unmanaged") spec.tags = {};
  if (kind === "unusable") delete spec.tags!["spiffe-agent-oid"];
  return spec;
}

export async function createNeverAttestedFleet(
  sb: Sandbox,
  ctx: ScenarioContext,
  MANAGED: string[],
): Promise<void> {
  const rg = sb.settings.APPS_RESOURCE_GROUP!;
  const { containerApps } = sb.azure.clients();
  const specs: Array<[string, ContainerApp]> = [
    ...MANAGED.map((n) => [n, neverAttested(sb, n, "managed")] as [string, ContainerApp]),
    [UNMANAGED, neverAttested(sb, UNMANAGED, "unmanaged")],
    [UNUSABLE, neverAttested(sb, UNUSABLE, "unusable")],
  ];
  await Promise.all(specs.map(([n, s]) => containerApps.containerApps.beginCreateOrUpdateAndWait(rg, n, s)));
  ctx.log(`created ${specs.length} apps that have never attested`);
}

export interface DeployRunOptions {
  managed: number;
  spireApi: "grpc" | "run-command";
  maxParallel: number;
  /** Ask for the dry-run plan first and compare it with what the deploy then does. */
  dryRunFirst?: boolean;
  /** Real ms between two apps' attestations (default 1200; 0 = no pacing, to measure SPIRE). */
  attestSpacingMs?: number;
  /** SIGKILL the host during the fan-out and restart it (deploy-resume). */
  killHost?: boolean;
}

/** The deploy scenario's run, sized and moded (deploy-vs-seed and the pace measurement reuse it). */
export async function runDeployScenario(ctx: ScenarioContext, opts: DeployRunOptions) {
  const MANAGED = managedNames(opts.managed);
  const sb = await startSandbox({
    stateDir: ctx.workDir,
    port: 0,
    timeScale: TIME_SCALE,
    profile: ctx.profile,
    echoHost: false,
    log: (m) => ctx.log(m),
    // The product's Server API calls are counted from SPIRE's own audit log.
    spireAuditLog: true,
    // SPIRE runs in real time but durable timers on the sandbox clock: the attestation spacing is
    // scaled up so agents still attest 1.2 real seconds apart (SPIRE's 1/s per-IP limit).
    settings: {
      SPIRE_API: opts.spireApi,
      DEPLOY_ATTEST_SPACING_MS: String((opts.attestSpacingMs ?? 1200) * TIME_SCALE),
      // The sweep and the scheduled rotation are other scenarios' subjects; on the sandbox clock
      // they fire every few real seconds, and their run-commands are not the deploy's.
      HEALTH_SWEEP_SCHEDULE: NEVER,
      BUNDLE_ROTATION_SCHEDULE: NEVER,
    },
  });
  try {
    // The alert path is another scenario's subject; here its re-attestations of the
    // crash-looping apps would race the deploy for the same apps.
    sb.services.alerts.setReceivers([]);
    const rg = sb.settings.APPS_RESOURCE_GROUP!;
    const td = sb.settings.SPIRE_TRUST_DOMAIN!;
    const { containerApps } = sb.azure.clients();
    await createNeverAttestedFleet(sb, ctx, MANAGED);
    const spire = sb.spire.client();
    try {
      await spire.createEntries([
        {
          id: ownedEntryId(GHOST),
          spiffeId: `spiffe://${td}/ests/bp/${GHOST}/aid/${GHOST}`,
          parentId: `spiffe://${td}/agent/${GHOST}`,
          selectors: [{ type: "unix", value: "uid:0" }],
        },
      ]);
    } finally {
      await spire.close();
    }
    const before = new Map<string, ContainerApp>();
    for (const a of [...MANAGED, UNMANAGED, UNUSABLE])
      before.set(a, await containerApps.containerApps.get(rg, a));

    let plan: DeployPlan | undefined;
    let planUnchanged = true;
    if (opts.dryRunFirst) {
      const puts = sb.azure.counters.snapshot().containerApps.puts;
      const r = await hostFetch(sb, "/api/deploy", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ dryRun: true, images: { [MANAGED[0]!]: { [MANAGED[0]!]: NEW_IMAGE } } }),
      });
      if (r.status !== 200) throw new Error(`dry run answered ${r.status}: ${await r.text()}`);
      plan = ((await r.json()) as { plan: DeployPlan }).plan;
      ctx.log(`dry-run plan: ${JSON.stringify(plan)}`);
      planUnchanged = sb.azure.counters.snapshot().containerApps.puts === puts;
    }
    const counters0 = sb.azure.counters.snapshot();
    const logFrom = sb.spire.logs.lines.at(-1)?.index ?? -1;
    const started = Date.now();
    const res = await hostFetch(sb, "/api/deploy", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        images: { [MANAGED[0]!]: { [MANAGED[0]!]: NEW_IMAGE } },
        maxParallel: opts.maxParallel,
        reason: "scenario deploy",
      }),
    });
    const accepted = (await res.json()) as { id?: string; error?: string };
    if (res.status !== 202 || !accepted.id)
      throw new Error(`deploy not accepted: ${res.status} ${JSON.stringify(accepted)}`);
    ctx.log(`deploy accepted as ${accepted.id}; waiting for it`);
    const putsBefore = sb.azure.transcript.all().length;
    if (opts.killHost) currentHost = await killDuringFanOut(sb, ctx, accepted.id);
    const op = await pollUntil(
      "the deploy to finish",
      async () => {
        const r = await hostFetch(sb, `/api/operations/${accepted.id}`);
        const o = r.status === 200 ? ((await r.json()) as DeployOperation) : undefined;
        return o && ["Completed", "Failed", "Terminated"].includes(o.runtimeStatus) ? o : undefined;
      },
      { timeoutMs: 600_000, intervalMs: 500, signal: ctx.signal },
    );
    const seconds = Math.round((Date.now() - started) / 100) / 10;
    ctx.log(`deploy ${op.runtimeStatus}: ${JSON.stringify(op.output)}`);
    const counters1 = sb.azure.counters.snapshot();
    await sb.spire.logs.poll();
    const serverLines = sb.spire.logs.lines.filter((l) => l.index > logFrom);
    const spireCalls = countServerApiCalls(serverLines);
    const armCalls = Object.values(armCallsSince(counters0.armCalls, counters1.armCalls)).reduce(
      (a, b) => a + b,
      0,
    );

    const after = new Map<string, ContainerApp>();
    for (const a of before.keys()) after.set(a, await containerApps.containerApps.get(rg, a));
    const imageOf = (app: ContainerApp | undefined, c: string) =>
      app?.template?.containers?.find((x) => x.name === c)?.image;
    const imageChanged = imageOf(after.get(MANAGED[0]!), MANAGED[0]!) === NEW_IMAGE;
    let otherContainersChanged = 0;
    for (const [name, b] of before) {
      const a = after.get(name)!;
      for (const c of b.template?.containers ?? []) {
        const now = a.template?.containers?.find((x) => x.name === c.name);
        if (!now) {
          otherContainersChanged++;
          continue;
        }
        const strip = (x: typeof c) => ({
          ...x,
          image: name === MANAGED[0] && x.name === MANAGED[0] ? "" : x.image,
          env: (x.env ?? []).filter(
            (e) =>
              !(
                (x.name ?? "").endsWith("-spiffe-proxy") &&
                ["JOIN_TOKEN", "SPIRE_TRUST_BUNDLE"].includes(e.name ?? "")
              ),
          ),
        });
        if (JSON.stringify(strip(c)) !== JSON.stringify(strip(now))) otherContainersChanged++;
      }
    }

    // The tokens, from where they wait: Key Vault. They must appear nowhere else.
    const vault = new SecretClient(sb.settings.KEY_VAULT_URL!, new SandboxCredential(), {
      tlsOptions: { ca: readFileSync(sb.settings.KEY_VAULT_CA_CERT_FILE!, "utf8") },
      disableChallengeResourceVerification: true,
    });
    const tokens: string[] = [];
    for (const a of MANAGED) {
      const v = (await vault.getSecret(`join-token-${a}`).catch(() => undefined))?.value;
      if (v) tokens.push(v);
    }
    const armAppBodies = sb.azure.transcript
      .all()
      .filter((x) => x.resourceType.toLowerCase().startsWith("containerapps"))
      .flatMap((x) => [x.requestBody, x.responseBody]);
    let tokenLeaks = countTokenLeaks(sb, tokens, [...after.values()], ctx.workDir);
    for (const t of tokens) for (const h of armAppBodies) tokenLeaks += h.split(t).length - 1;
    // customStatus and output, as the operations API serves them.
    for (const t of tokens) tokenLeaks += JSON.stringify(op).split(t).length - 1;

    const out = op.output;
    const succeeded = out?.totals.succeeded ?? 0;
    const skipped = out?.totals.skipped ?? 0;
    const result = {
      apps: out?.totals.apps ?? 0,
      succeeded,
      skipped,
      seconds,
      armCalls,
      // Server API calls SPIRE's audit log shows from the admin socket while the deploy ran: the
      // product's gRPC client, or the spire-server CLI its run-command scripts run (agents are
      // TCP callers and are not counted; the scenario makes no call of its own in that window).
      spireCalls: spireCalls.calls,
      spireCallsByMethod: spireCalls.byMethod,
      spireCallers: spireCalls.byCaller,
      runCommands: counters1.runCommands.created - counters0.runCommands.created,
      entriesCreated: out?.totals.entriesCreated ?? 0,
      entriesDeleted: out?.totals.entriesDeleted ?? 0,
      imageChanged,
      otherContainersChanged,
      tokenLeaks,
      tokensChecked: tokens.length,
      // What real SPIRE did with the fan-out: attestations it completed and ones it refused for its
      // per-IP rate limit (every agent of the sandbox attests from 127.0.0.1).
      attestationsCompleted: serverLines.filter((l) => /attestation request completed/i.test(l.msg)).length,
      rateLimited: serverLines.filter((l) => /rate.?limit|resource.?exhausted/i.test(l.raw)).length,
      maxParallel: opts.maxParallel,
      spireApi: opts.spireApi,
      // Container restarts during the deploy: each failed attestation (rate limit, the placeholder
      // token of a not-yet-deployed app) restarts the sidecar.
      containerRestarts:
        counters1.containerApps.containerRestarts - counters0.containerApps.containerRestarts,
    };
    if (opts.killHost) {
      // PUTs per app after the deploy started: a resumed deploy must not PUT an app twice.
      const puts = new Map<string, number>();
      for (const x of sb.azure.transcript.all().slice(putsBefore)) {
        const m = /\/containerApps\/([^/?]+)$/i.exec(x.path.split("?")[0] ?? "");
        if (x.method === "PUT" && m) puts.set(m[1]!, (puts.get(m[1]!) ?? 0) + 1);
      }
      const appsPutTwice = [...puts.values()].filter((n) => n > 1).length;
      // Every Key Vault version of an app's token secret beyond the first is a token made twice.
      let tokensWasted = 0;
      for (const a of MANAGED) {
        let versions = 0;
        for await (const _v of vault.listPropertiesOfSecretVersions(`join-token-${a}`)) versions++;
        tokensWasted += Math.max(0, versions - 1);
      }
      const resumed = op.runtimeStatus === "Completed";
      await currentHost?.stop();
      currentHost = undefined;
      return {
        resumed,
        appsPutTwice,
        tokensWasted,
        succeeded,
        seconds,
        pass:
          resumed &&
          appsPutTwice === 0 &&
          tokensWasted === 0 &&
          succeeded === MANAGED.length &&
          tokenLeaks === 0,
      };
    }
    if (plan) {
      // ARM writes are the deploy's (one full-spec PUT per app); reads include revision and LRO
      // polls whose number depends on how fast revisions start, so the plan gives their floor.
      const byAction = armCallsSince(counters0.armCalls, counters1.armCalls);
      const armWrites = byAction["Microsoft.App/containerApps/write"] ?? 0;
      const deployed = {
        apps: (out?.apps.map((a) => [a.app, a.outcome !== "skipped"]) ?? []).sort(),
        entries: {
          create: result.entriesCreated,
          update: out?.totals.entriesUpdated ?? 0,
          delete: result.entriesDeleted,
        },
        images: out?.totals.imagesChanged ?? 0,
        tokens: out?.totals.tokenCount ?? 0,
        calls: { armWrites, runCommands: result.runCommands },
      };
      const planned = {
        apps: plan.apps.map((a) => [a.app, a.included]).sort(),
        entries: plan.entries,
        images: plan.images.length,
        tokens: plan.tokens,
        calls: { armWrites: plan.tokens, runCommands: plan.calls.runCommands },
      };
      const same = (k: keyof typeof planned) => JSON.stringify(planned[k]) === JSON.stringify(deployed[k]);
      const matches = {
        apps: same("apps"),
        entries: same("entries"),
        images: same("images"),
        tokens: same("tokens"),
        calls: same("calls"),
        armReadsAtLeastPlanned: armCalls >= plan.calls.arm,
      };
      return {
        planned,
        deployed,
        matches,
        armPlannedFloor: plan.calls.arm,
        armActual: armCalls,
        armByAction: byAction,
        unchangedByDryRun: planUnchanged,
        pass: planUnchanged && Object.values(matches).every(Boolean),
      };
    }
    return {
      ...result,
      pass:
        op.runtimeStatus === "Completed" &&
        succeeded === MANAGED.length &&
        skipped === 2 &&
        result.entriesCreated === MANAGED.length &&
        result.entriesDeleted === 1 &&
        imageChanged &&
        otherContainersChanged === 0 &&
        tokens.length === MANAGED.length &&
        tokenLeaks === 0,
    };
  } finally {
    await currentHost?.stop();
    currentHost = undefined;
    await sb.stop();
  }
}

export const deploy: Scenario = {
  name: "deploy",
  description:
    "POST /api/deploy on a never-attested fleet (5 managed, 1 unmanaged, 1 tagged but unusable) with one image change: all managed apps attested, the stale owned entry deleted, nothing else changed, no token leaked.",
  timeoutSeconds: 900,
  run: (ctx) => runDeployScenario(ctx, { managed: 5, spireApi: "grpc", maxParallel: 5 }),
};

export const deployDryRun: Scenario = {
  name: "deploy-dry-run",
  description:
    "The dry-run plan (apps in/out, entries, images, tokens, ARM calls and run-commands) compared with what the deploy then does, call for call.",
  timeoutSeconds: 900,
  run: (ctx) => runDeployScenario(ctx, { managed: 5, spireApi: "grpc", maxParallel: 5, dryRunFirst: true }),
};

export const deployResume: Scenario = {
  name: "deploy-resume",
  description:
    "SIGKILL the product host while the deploy fans out, restart it on the same state: the deploy completes, no app is PUT twice, no token is made twice.",
  timeoutSeconds: 900,
  run: (ctx) => runDeployScenario(ctx, { managed: 5, spireApi: "grpc", maxParallel: 2, killHost: true }),
};
