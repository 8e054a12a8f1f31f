import { readFileSync } from "node:fs";
import type { ContainerApp } from "@azure/arm-appcontainers";
import { SecretClient } from "@azure/keyvault-secrets";
import type { DeployOutput } from "../../orchestrations/deploy.js";
import { SandboxCredential } from "../../shared/azure/credential.js";
import { ownedEntryId } from "../../shared/spire/entry-reconcile.js";
import { type Sandbox, startSandbox } from "../environment.js";
import { pollUntil } from "../spire/index.js";
import { fleetAppSpec } from "./fleet.js";
import { armCallsSince, countTokenLeaks } from "./replica-restart.js";
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

async function hostFetch(sb: Sandbox, path: string, init?: RequestInit) {
  const sep = path.includes("?") ? "&" : "?";
  return fetch(`${sb.host.url}${path}${sep}code=${sb.host.keys.functionKeys.default}`, init);
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
}

/** The deploy scenario's run, sized and moded (deploy-vs-seed and the pace measurement reuse it). */
export async function runDeployScenario(ctx: ScenarioContext, opts: DeployRunOptions) {
  const MANAGED = managedNames(opts.managed);
  const sb = await startSandbox({
    stateDir: ctx.workDir,
    port: 0,
    timeScale: 10,
    profile: ctx.profile,
    echoHost: false,
    log: (m) => ctx.log(m),
    settings: { SPIRE_API: opts.spireApi },
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

    const counters0 = sb.azure.counters.snapshot();
    const started = Date.now();
    const res = await hostFetch(sb, "/api/deploy", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        images: { [MANAGED[0]!]: { [MANAGED[0]!]: NEW_IMAGE } },
        reason: "scenario deploy",
      }),
    });
    const accepted = (await res.json()) as { id?: string; error?: string };
    if (res.status !== 202 || !accepted.id)
      throw new Error(`deploy not accepted: ${res.status} ${JSON.stringify(accepted)}`);
    ctx.log(`deploy accepted as ${accepted.id}; waiting for it`);
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
      // The sandbox counts no Server API calls; the deploy-wide ones are in the dry-run plan.
      spireCalls: null,
      runCommands: counters1.runCommands.created - counters0.runCommands.created,
      entriesCreated: out?.totals.entriesCreated ?? 0,
      entriesDeleted: out?.totals.entriesDeleted ?? 0,
      imageChanged,
      otherContainersChanged,
      tokenLeaks,
      tokensChecked: tokens.length,
    };
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
