/**
 * Two host processes, one VM: starts a real spire-server (as the VM's `spire-server` container),
 * Azurite (the hosts' AzureWebJobsStorage) and the ARM simulator with the wedge rules on and a
 * VM that stays fresh, then runs two `runcommand-host.ts` processes that re-attest their apps at
 * the same time through the product's run-command path. Reports what the simulator saw: the most
 * run-commands that existed at once, wedges, and any join token in what ARM served or was sent
 * (Container App secrets aside: there is none here).
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { gunzipSync } from "node:zlib";
import { ensureSpire } from "../../scripts/install-spire.js";
import { agentAliasId } from "../../shared/spiffe/index.js";
import { spireServerContainer } from "../azure/compute/spire-container.js";
import { type AzureSimulator, FAST_PROFILE, startAzureSimulator } from "../azure/index.js";
import { startAzurite } from "../emulators/azurite.js";
import { attestJoinTokenAgents } from "./attest.js";
import { startSpireServer } from "./server.js";

const REPO_ROOT = resolve(import.meta.dirname, "../..");
const TD = "hosts.sandbox.test";
const RG = "rg-spire";
const VM = "vm-spire-server";

export interface TwoHostsOptions {
  workDir: string;
  /** Apps per host (default 3: six in all). */
  appsPerHost?: number;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface TwoHostsResult {
  hosts: { host: string; exitCode: number | null; error?: string; apps: number; ms: number }[];
  apps: number;
  /** Tokens scanned for: the first ones (whose agents were evicted) and the new ones. */
  tokens: number;
  /** Agents the hosts evicted (each app's previous one; their IDs embed the first tokens). */
  agentsEvicted: number;
  maxConcurrentRunCommands: number;
  runCommandsCreated: number;
  wedges: number;
  /** Tokens (or agent IDs embedding them) found in any ARM request or response body. */
  secretsInArm: number;
  /** Run-command bodies the simulator served (the scan covered them all). */
  runCommandResponsesScanned: number;
}

/**
 * The body plus whatever its base64 (and gzip) fields decode to: a reader of the instance view
 * can decode the script's plain `b:`/`z:` streams as easily as the adapter does.
 */
function readable(body: string): string {
  const parts = [body];
  for (const m of body.matchAll(/\b([bz]):([A-Za-z0-9+/]{8,}={0,2})/g)) {
    try {
      const data = Buffer.from(m[2] as string, "base64");
      parts.push((m[1] === "z" ? gunzipSync(data) : data).toString("utf8"));
    } catch {
      // not a stream after all
    }
  }
  return parts.join("\n");
}

/** Join tokens (agent IDs embed them too) and private keys found in the ARM transcript. */
export function secretsInArm(sim: AzureSimulator, tokens: readonly string[]): number {
  let found = 0;
  for (const x of sim.transcript.all()) {
    // Container App PUTs carry the token in their secrets by design; GETs never return values.
    const request = x.resourceType === "containerApps" ? "" : readable(x.requestBody);
    const response = readable(x.responseBody);
    if (/PRIVATE KEY/.test(request) || /PRIVATE KEY/.test(response)) found++;
    for (const t of tokens) {
      if (t === "") continue;
      if (request.includes(t)) found++;
      if (response.includes(t) && !x.action.endsWith("listSecrets/action")) found++;
    }
  }
  return found;
}

interface HostRun {
  host: string;
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

function runHost(env: NodeJS.ProcessEnv, job: object, signal?: AbortSignal): Promise<HostRun> {
  return new Promise((resolvePromise) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(REPO_ROOT, "sandbox/spire/runcommand-host.ts")],
      {
        cwd: REPO_ROOT,
        env: { ...env, SANDBOX_HOST_JOB: JSON.stringify(job) },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => {
      stdout += b.toString("utf8");
    });
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString("utf8");
    });
    const kill = () => child.kill("SIGKILL");
    signal?.addEventListener("abort", kill, { once: true });
    // Bounded: a host that hangs is killed.
    const timer = setTimeout(kill, 150_000);
    child.once("close", (code) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", kill);
      if (process.env.SANDBOX_HOST_DEBUG) console.error(stderr);
      resolvePromise({ host: (job as { host: string }).host, exitCode: code, stdout, stderr });
    });
  });
}

export async function runTwoHosts(opts: TwoHostsOptions): Promise<TwoHostsResult> {
  const log = opts.log ?? (() => undefined);
  const perHost = opts.appsPerHost ?? 3;
  const bins = await ensureSpire({ log });
  const server = await startSpireServer({
    trustDomain: TD,
    bins,
    logLevel: "INFO",
    attestationRateLimit: false,
  });
  const azurite = await startAzurite().catch(async (err) => {
    await server.dispose();
    throw err;
  });
  let sim: AzureSimulator | undefined;
  try {
    sim = await startAzureSimulator({
      // Fresh for the whole run, so a create within 800 ms of a delete wedges the VM (#34).
      profile: {
        ...FAST_PROFILE,
        vmFreshMs: 3_600_000,
        runCommandPickupMs: 50,
        provisioningLagMs: 200,
        wedgeCooldownMs: 800,
      },
      vms: [
        { resourceGroup: RG, name: VM, location: "westeurope", spireServer: spireServerContainer(server) },
      ],
      log: (l) => log(`simulator: ${l}`),
    });
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...(process.env.SANDBOX_HOST_DEBUG && { SANDBOX_HOST_DEBUG: "1" }),
      ...sim.settings(),
      AzureWebJobsStorage: azurite.connectionString,
      SPIRE_API: "run-command",
      SPIRE_TRUST_DOMAIN: TD,
      SPIRE_VM_RESOURCE_GROUP: RG,
      SPIRE_VM_NAME: VM,
      RUN_COMMAND_COOLDOWN_SECONDS: "1",
      RUN_COMMAND_TIMEOUT_SECONDS: "60",
      APPS_RESOURCE_GROUP: "rg-apps",
      KEY_VAULT_URL: "https://kv-unused.vault.azure.net",
      JOIN_TOKEN_TTL_SECONDS: "900",
    };
    const jobs = ["h1", "h2"].map((host, h) => ({
      host,
      apps: Array.from({ length: perHost }, (_, i) => `app-${h * perHost + i + 1}`),
      resultFile: join(opts.workDir, `${host}.json`),
      pollIntervalMs: 150,
    }));
    // Each app has an agent now (attested with a first token) holding its alias: the hosts'
    // re-attestation evicts it, so the old token's agent ID is an input to a run-command.
    const admin = server.client();
    const oldTokens: string[] = [];
    try {
      const apps = jobs.flatMap((j) => j.apps);
      const first = await admin.createJoinTokens(
        apps.map((a) => agentAliasId(TD, a)),
        600,
      );
      await attestJoinTokenAgents(
        {
          address: server.bindAddress,
          port: server.port,
          trustDomain: TD,
          bundlePem: await server.bundlePem(),
        },
        first.map((t) => t.value),
      );
      await admin.createEntries(
        first.map((t) => ({
          spiffeId: t.alias,
          parentId: t.agentId,
          selectors: [{ type: "unix", value: "uid:1000" }],
        })),
      );
      oldTokens.push(...first.map((t) => t.value));
    } finally {
      await admin.close();
    }
    log(`two hosts, ${perHost} apps each, one VM`);
    const runs = await Promise.all(jobs.map((j) => runHost(env, j, opts.signal)));
    const tokens: string[] = [...oldTokens];
    let evicted = 0;
    const hosts: TwoHostsResult["hosts"] = [];
    for (const [i, run] of runs.entries()) {
      let parsed: { results?: { tokens: string[]; previousAgents: number }[]; error?: string; ms?: number } =
        {};
      try {
        parsed = JSON.parse(readFileSync(jobs[i]?.resultFile ?? "", "utf8"));
      } catch {
        parsed = {
          error: `no result (exit ${run.exitCode}): ${run.stderr.split("\n").slice(-5).join(" | ")}`,
        };
      }
      for (const r of parsed.results ?? []) {
        tokens.push(...r.tokens);
        evicted += r.previousAgents;
      }
      hosts.push({
        host: run.host,
        exitCode: run.exitCode,
        ...(parsed.error !== undefined && { error: parsed.error }),
        apps: parsed.results?.length ?? 0,
        ms: parsed.ms ?? 0,
      });
    }
    const counters = sim.counters.snapshot().runCommands;
    return {
      hosts,
      apps: hosts.reduce((n, h) => n + h.apps, 0),
      tokens: tokens.length,
      agentsEvicted: evicted,
      maxConcurrentRunCommands: counters.maxConcurrent,
      runCommandsCreated: counters.created,
      wedges: counters.wedges,
      secretsInArm: secretsInArm(sim, tokens),
      runCommandResponsesScanned: sim.transcript.runCommandResponses().length,
    };
  } finally {
    await sim?.stop().catch(() => undefined);
    await azurite.stop().catch(() => undefined);
    await server.dispose().catch(() => undefined);
  }
}
