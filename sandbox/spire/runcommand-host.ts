/**
 * One "host" of the runcommand-two-hosts scenario and test: a separate process that builds the
 * product's services from its settings (SPIRE_API=run-command, AzureWebJobsStorage, the ARM
 * simulator) and makes, for each of its apps at once (a Functions worker runs several activities
 * in parallel), the SPIRE calls a re-attestation makes: the agents holding the app's alias
 * (prepare), a fresh join token (apply), the agent list (verify), and the eviction of the agents
 * it replaces (evict-old).
 *
 * Input: the product's settings in the environment plus SANDBOX_HOST_JOB =
 * {"host":"h1","apps":["app-1",...],"resultFile":"/tmp/.../h1.json"}. The result file (mode 0600,
 * the test's own) gets the tokens so the test can look for them in what ARM served; stdout gets
 * only counts.
 */
import { writeFileSync } from "node:fs";
import { z } from "zod";
import { loadConfig } from "../../shared/config.js";
import { createServices } from "../../shared/services.js";
import { agentAliasId } from "../../shared/spiffe/index.js";

const Job = z.object({
  host: z.string(),
  apps: z.array(z.string()).min(1),
  resultFile: z.string(),
  pollIntervalMs: z.number().int().positive().optional(),
});

const t0 = Date.now();

async function main(): Promise<void> {
  const job = Job.parse(JSON.parse(process.env.SANDBOX_HOST_JOB ?? "{}"));
  const config = loadConfig(process.env);
  const services = createServices(config, {
    env: process.env,
    logSink: process.env.SANDBOX_HOST_DEBUG
      ? {
          debug: (...a: unknown[]) => console.error(Date.now() - t0, ...a),
          info: (...a: unknown[]) => console.error(Date.now() - t0, ...a),
          warn: console.error,
          error: console.error,
        }
      : { debug: () => undefined, info: () => undefined, warn: console.error, error: console.error },
    ...(job.pollIntervalMs !== undefined && {
      runCommand: { pollIntervalMs: job.pollIntervalMs, leasePollMs: job.pollIntervalMs },
    }),
  });
  const started = Date.now();
  const results: { app: string; tokens: string[]; previousAgents: number; agentsListed: number }[] = [];
  let error: string | undefined;
  try {
    const spire = await services.spire();
    const td = config.spire.trustDomain;
    await Promise.all(
      job.apps.map(async (app) => {
        const alias = agentAliasId(td, app);
        const trace = (step: string) => {
          if (process.env.SANDBOX_HOST_DEBUG) console.error(`${job.host} ${app} ${step} @${Date.now() - t0}`);
        };
        trace("start");
        const entries = await spire.listEntries({ bySpiffeId: alias });
        const previous = [...new Set(entries.map((e) => e.parentId))];
        trace("prepared");
        const [token] = await spire.createJoinTokens([alias], config.spire.joinTokenTtlSeconds);
        trace("token");
        const agents = await spire.listAgents();
        trace("listed");
        let evicted = 0;
        for (const id of previous) if ((await spire.deleteAgent(id)).deleted) evicted++;
        results.push({
          app,
          tokens: token ? [token.value] : [],
          previousAgents: evicted,
          agentsListed: agents.length,
        });
      }),
    );
  } catch (err) {
    error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  } finally {
    if (process.env.SANDBOX_HOST_DEBUG) console.error(`${job.host} closing @${Date.now() - t0}`);
    await services.close();
    if (process.env.SANDBOX_HOST_DEBUG) console.error(`${job.host} closed @${Date.now() - t0}`);
  }
  writeFileSync(
    job.resultFile,
    JSON.stringify({ host: job.host, results, error, ms: Date.now() - started }),
    {
      mode: 0o600,
    },
  );
  console.log(JSON.stringify({ host: job.host, apps: results.length, error: error ?? null }));
  process.exit(error ? 1 : 0);
}

void main();
