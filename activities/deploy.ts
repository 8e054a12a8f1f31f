import { createHash } from "node:crypto";
import type { InvocationContext } from "@azure/functions";
import * as df from "durable-functions";
import { z } from "zod";
import { discoverApps } from "../shared/containerapp/discover.js";
import { selectDeploy } from "../shared/deploy/selection.js";
import { PermanentError } from "../shared/errors.js";
import { startServerContainer } from "../shared/health/server-restart.js";
import { type Logger, type LogSink, registerSecret } from "../shared/logging.js";
import type { Services } from "../shared/services.js";
import { agentAliasId } from "../shared/spiffe/ids.js";
import { type EntryDiff, reconcileEntries } from "../shared/spire/entry-reconcile.js";
import { mapLimited } from "../shared/spire/paging.js";
import { readVaultBundle } from "../shared/trust/vault.js";
import { syncBundle } from "./bundle.js";
import type { ActivityResult } from "./contracts.js";
import {
  DeployActivities,
  type DeployToken,
  type DiscoverInput,
  type DiscoverOutput,
  type EntriesAndTokensInput,
  type EntriesAndTokensOutput,
  type ProbeInput,
  type ProbeOutput,
  type RolloverInput,
  type RolloverOutput,
  type ServerHealthOutput,
  type StartServerOutput,
  type SvidCheckInput,
  type SvidCheckOutput,
} from "./deploy.contracts.js";
import { deployRecord } from "./deploy-ledger.js";
import type { ActivityHandler } from "./reattest.js";
import { workloadSvidSignedSince } from "./reattest.js";
import { appName, runActivity, sha256Hex } from "./run.js";

/*
 * The deploy's side effects that are not a re-attestation's. The join tokens are made in one
 * batch (one run-command in run-command mode) and each goes straight into a Key Vault secret of its
 * own, join-token-<app>: between this activity and the app's PUT the tokens wait there, because
 * anything an activity returns is written to durable history in the clear. The app's Container App
 * secret then references that secret (keyVaultUrl + identity), so the token is not in the PUT body
 * either, and ARM never returns it (see activities/README.md).
 */

const DiscoverSchema = z.object({
  apps: z.array(appName).max(500).optional(),
  images: z.record(appName, z.record(z.string().min(1).max(64), z.string().min(1).max(512))).optional(),
});

/** The apps this deploy acts on, classified by the app model, with image changes checked. */
export function deployDiscover(
  input: DiscoverInput,
  services?: Services,
  sink?: LogSink,
): Promise<ActivityResult<DiscoverOutput>> {
  return runActivity(
    DeployActivities.deployDiscover,
    DiscoverSchema,
    input,
    services,
    sink,
    async (i, s, log) => {
      const found = await discoverApps(s.containerApps, s.config);
      const selected = selectDeploy({
        verdicts: found.verdicts,
        apps: found.apps,
        requested: i.apps,
        images: i.images,
        resourceGroup: s.config.apps.resourceGroup,
        managedTag: `${s.config.apps.managedTag.name}=${s.config.apps.managedTag.value}`,
      });
      // The trigger checked the same request; an app changing in between is refused here alike.
      if (!selected.ok) throw new PermanentError("DeployRefused", selected.error);
      log.info("discovered the apps", {
        included: selected.value.targets.length,
        excluded: selected.value.apps.length - selected.value.targets.length,
        pages: found.pages,
      });
      return { ...selected.value, armPages: found.pages };
    },
  );
}

/** Whether the SPIRE server answers (the orchestration waits on it, bounded, with durable timers). */
export function deployServerHealth(
  input: unknown,
  services?: Services,
  sink?: LogSink,
): Promise<ActivityResult<ServerHealthOutput>> {
  return runActivity(
    DeployActivities.deployServerHealth,
    z.unknown(),
    input,
    services,
    sink,
    async (_i, s) => {
      const spire = await s.spire();
      return spire.health();
    },
  );
}

const Target = z.object({
  name: appName,
  alias: z.string().min(1).max(2048),
  workloadId: z.string().min(1).max(2048),
  selectors: z.array(z.object({ type: z.string(), value: z.string() })).max(50),
});
// The adapter validates every entry spec before it reaches SPIRE; here only the shape is checked.
const DiffSchema = z.object({
  create: z
    .array(z.object({ id: z.string(), spiffeId: z.string(), parentId: z.string() }).passthrough())
    .max(2000),
  update: z.array(z.object({ id: z.string() }).passthrough()).max(2000),
  delete: z.array(z.string().min(1).max(255)).max(10000),
  providedByUnowned: z.array(z.string()).max(2000).optional(),
});
const EntriesSchema = z.object({
  runId: z.string().min(1).max(400),
  targets: z.array(Target).max(2000),
  keep: z.array(appName).max(2000),
  diff: DiffSchema.optional(),
});
const ProbeSchema = z.object({ targets: z.array(Target).max(2000), keep: z.array(appName).max(2000) });
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, "not a lowercase hex SHA-256");
const RolloverSchema = z.object({
  apps: z
    .array(
      z.object({
        app: appName,
        alias: z.string().min(1).max(2048),
        workloadId: z.string().min(1).max(2048),
        tokenSha256: sha256,
      }),
    )
    .max(2000),
  waitSeconds: z.number().int().min(0).max(3600),
  since: z.string().refine((x) => !Number.isNaN(Date.parse(x)), { message: "not an ISO time" }),
});

/** The run-command adapter's deploy methods, refused clearly when the configured adapter has none. */
function runCommandOnly<K extends "readDeployState" | "rolloverAgents" | "startServerContainer">(
  spire: Awaited<ReturnType<Services["spire"]>>,
  method: K,
): NonNullable<Awaited<ReturnType<Services["spire"]>>[K]> {
  const f = spire[method];
  if (!f)
    throw new PermanentError("BadInput", `${method} is a run-command mode step (SPIRE_API=run-command)`);
  return f.bind(spire) as NonNullable<Awaited<ReturnType<Services["spire"]>>[K]>;
}

/**
 * Run-command #1 of a deploy: health, bundle and entries in one script; the bundle synced to Key
 * Vault here (bundleSync's decision and write), the entry diff computed here. An unhealthy server
 * changes nothing and says whether its container is stopped.
 */
export function deployProbe(
  input: ProbeInput,
  services?: Services,
  sink?: LogSink,
): Promise<ActivityResult<ProbeOutput>> {
  return runActivity(DeployActivities.deployProbe, ProbeSchema, input, services, sink, async (i, s, log) => {
    const spire = await s.spire();
    const state = await runCommandOnly(spire, "readDeployState")();
    if (!state.health.healthy || !state.bundle || !state.entries) {
      log.warn("the SPIRE server did not answer", {
        detail: state.health.detail,
        container: state.container,
      });
      return {
        healthy: false,
        detail: state.health.detail,
        ...(state.container && { container: state.container }),
      };
    }
    const vault = await readVaultBundle(s.secrets, s.config.keyVault.trustBundleSecretName);
    const synced = await syncBundle(
      s,
      vault ? { version: vault.version, fingerprints: vault.fingerprints, source: vault.source } : null,
      state.bundle,
      log,
    );
    const diff = reconcileEntries({
      desired: i.targets,
      actual: state.entries,
      keep: i.keep,
      x509SvidTtl: s.config.apps.workloadX509TtlSeconds,
    });
    log.info("read the server's state in one run-command", {
      entries: state.entries.length,
      create: diff.create.length,
      update: diff.update.length,
      delete: diff.delete.length,
      bundleWritten: synced.written,
    });
    return {
      healthy: true,
      detail: state.health.detail,
      trust: {
        ...synced,
        ...(vault && { previousVersion: vault.version }),
        vaultFingerprints: vault?.fingerprints ?? [],
      },
      diff,
    };
  });
}

const SvidCheckSchema = z.object({
  apps: z.array(z.object({ app: appName, workloadId: z.string().min(1).max(2048) })).max(2000),
  since: z.string().refine((x) => !Number.isNaN(Date.parse(x)), { message: "not an ISO time" }),
});

/**
 * Whether each workload SVID was signed since the deploy began, from Log Analytics only (no
 * SPIRE, no run-command): the deploy polls this after the rollover, since a signing lands a few
 * seconds after attestation and reaches the workspace later still.
 */
export function deploySvidCheck(
  input: SvidCheckInput,
  services?: Services,
  sink?: LogSink,
): Promise<ActivityResult<SvidCheckOutput>> {
  return runActivity(
    DeployActivities.deploySvidCheck,
    SvidCheckSchema,
    input,
    services,
    sink,
    async (i, s) => {
      const apps: SvidCheckOutput["apps"] = [];
      for (const a of i.apps) {
        apps.push({
          app: a.app,
          ...(s.logs ? await workloadSvidSignedSince(s, a.workloadId, new Date(i.since)) : {}),
        });
      }
      return { apps };
    },
  );
}

/** `docker start` of the server's stopped container (never rm); the orchestration waits, bounded. */
export function deployStartServer(
  input: unknown,
  services?: Services,
  sink?: LogSink,
): Promise<ActivityResult<StartServerOutput>> {
  return runActivity(
    DeployActivities.deployStartServer,
    z.unknown(),
    input,
    services,
    sink,
    async (_i, s, log) => {
      const spire = await s.spire();
      // By run-command through the adapter; over the API through a run-command of its own (the VM).
      const out = spire.startServerContainer
        ? await spire.startServerContainer()
        : await startServerContainer(s, log);
      log.warn("started the SPIRE server's stopped container", { ...out });
      return out;
    },
  );
}

/**
 * Run-command #3 of a deploy: for every app at once, wait (bounded, on the VM) for the agent with
 * its new token and evict the old agents holding its alias; then, where logs exist, whether each
 * workload SVID was signed since the deploy began (Log Analytics, not SPIRE).
 */
export function deployRollover(
  input: RolloverInput,
  services?: Services,
  sink?: LogSink,
): Promise<ActivityResult<RolloverOutput>> {
  return runActivity(
    DeployActivities.deployRollover,
    RolloverSchema,
    input,
    services,
    sink,
    async (i, s, log) => {
      const td = s.config.spire.trustDomain;
      for (const a of i.apps) {
        if (a.alias !== agentAliasId(td, a.app))
          throw new PermanentError("BadInput", `alias ${a.alias} is not app ${a.app}'s alias`);
      }
      const results = await runCommandOnly(
        await s.spire(),
        "rolloverAgents",
      )({
        apps: i.apps.map((a) => ({ alias: a.alias, keepTokenSha256: a.tokenSha256 })),
        waitSeconds: i.waitSeconds,
      });
      const out: RolloverOutput["apps"] = [];
      for (const [n, a] of i.apps.entries()) {
        const r = results[n] ?? { attested: false, evicted: 0, stale: 0, detail: "no result" };
        const row: RolloverOutput["apps"][number] = {
          app: a.app,
          agentAttested: r.attested,
          evicted: r.evicted,
          stale: r.stale,
          ...(r.detail && { detail: r.detail }),
        };
        if (r.attested && s.logs)
          Object.assign(row, await workloadSvidSignedSince(s, a.workloadId, new Date(i.since)));
        out.push(row);
      }
      log.info("verified the new agents and evicted the old ones in one run-command", {
        apps: out.length,
        attested: out.filter((r) => r.agentAttested).length,
        evicted: out.reduce((t, r) => t + r.evicted, 0),
      });
      return { apps: out };
    },
  );
}

export const tokenSecretName = (app: string) => `join-token-${app}`;
/** Key Vault calls in flight at once for a deploy's tokens (far inside a vault's 4,000 per 10 s). */
const KEY_VAULT_CONCURRENCY = 8;
const runTag = (runId: string) => createHash("sha256").update(runId).digest("hex").slice(0, 32);

/** This run's token for the app, when a previous attempt of the activity stored it already. */
async function storedToken(s: Services, app: string, runId: string): Promise<DeployToken | undefined> {
  try {
    const secret = await s.secrets.getSecret(tokenSecretName(app));
    const tags = secret.properties.tags ?? {};
    const expires = secret.properties.expiresOn?.getTime() ?? 0;
    // A token needs its lifetime's margin left to survive the revision start and attestation.
    if (tags.deployRun !== runTag(runId) || expires < Date.now() + 60_000 || !secret.properties.id)
      return undefined;
    if (secret.value) registerSecret(secret.value);
    return { app, secretUrl: secret.properties.id, tokenSha256: tags.tokenSha256 ?? "", reused: true };
  } catch (err) {
    if ((err as { statusCode?: unknown }).statusCode === 404) return undefined;
    throw err;
  }
}

/**
 * Reconciles the workload entries (paged list → pure diff) and creates the apps' join tokens, all
 * in one applyDeployBatch, then stores each token in Key Vault. Only URLs and hashes come back.
 */
export function deployEntriesAndTokens(
  input: EntriesAndTokensInput,
  services?: Services,
  sink?: LogSink,
): Promise<ActivityResult<EntriesAndTokensOutput>> {
  return runActivity(
    DeployActivities.deployEntriesAndTokens,
    EntriesSchema,
    input,
    services,
    sink,
    async (i, s, log) => {
      const spire = await s.spire();
      // Run-command mode hands in deployProbe's diff: listing again would cost a run-command.
      const diff = i.diff
        ? { ...(i.diff as unknown as EntryDiff), providedByUnowned: i.diff.providedByUnowned ?? [] }
        : reconcileEntries({
            desired: i.targets,
            actual: await spire.listEntries({}),
            keep: i.keep,
            x509SvidTtl: s.config.apps.workloadX509TtlSeconds,
          });
      // Key Vault round trips, a few at a time: a wide deploy stores a token per app.
      const stored = await mapLimited(i.targets, KEY_VAULT_CONCURRENCY, (t) =>
        storedToken(s, t.name, i.runId),
      );
      const reused = stored.filter((x): x is DeployToken => x !== undefined);
      const needed = i.targets.filter((_, n) => stored[n] === undefined);
      const ttlSeconds = s.config.spire.joinTokenTtlSeconds;
      const result = await spire.applyDeployBatch({
        tokens: { aliases: needed.map((t) => t.alias), ttlSeconds },
        create: diff.create,
        update: diff.update,
        delete: diff.delete,
      });
      for (const [n, t] of needed.entries()) {
        const token = result.tokens[n];
        if (!token) throw new Error(`the SPIRE server returned no join token for ${t.name}`);
        registerSecret(token.value);
      }
      const created = await mapLimited(needed, KEY_VAULT_CONCURRENCY, (t, n) => {
        const token = result.tokens[n]!;
        return storeToken(s, t.name, token.value, token.expiresAt, i.runId, log);
      });
      const tokens = [...reused, ...created];
      tokens.sort((a, b) => a.app.localeCompare(b.app));
      const failures = result.failures.map((f) => `${f.op} ${f.id}: ${f.code} ${f.message}`);
      log.info("reconciled entries and created tokens", {
        created: result.created,
        existed: result.existed,
        updated: result.updated,
        deleted: result.deleted,
        providedByUnowned: diff.providedByUnowned.length,
        tokensCreated: needed.length,
        tokensReused: reused.length,
        failures: failures.length,
      });
      return {
        entries: {
          created: result.created,
          existed: result.existed,
          updated: result.updated,
          deleted: result.deleted,
          providedByUnowned: diff.providedByUnowned,
          failures,
        },
        tokens,
      };
    },
  );
}

async function storeToken(
  s: Services,
  app: string,
  value: string,
  expiresOn: Date,
  runId: string,
  log: Logger,
): Promise<DeployToken> {
  const tokenSha256 = sha256Hex(value);
  const written = await s.secrets.setSecret(tokenSecretName(app), value, {
    contentType: "application/x-spire-join-token",
    expiresOn,
    tags: { deployRun: runTag(runId), tokenSha256, app },
  });
  const secretUrl = written.properties.id;
  if (!secretUrl || !written.properties.version) {
    throw new Error(`Key Vault returned no versioned id for ${tokenSecretName(app)}`);
  }
  log.debug("stored a join token in Key Vault", { app, tokenSha256, version: written.properties.version });
  return { app, secretUrl, tokenSha256, reused: false };
}

const asHandler =
  <I, O>(h: (input: I, services?: Services, sink?: LogSink) => Promise<ActivityResult<O>>): ActivityHandler =>
  (input, services, sink) =>
    h(input as I, services, sink);

export const DEPLOY_ACTIVITIES: Readonly<Record<string, ActivityHandler>> = {
  [DeployActivities.deployDiscover]: asHandler(deployDiscover),
  [DeployActivities.deployServerHealth]: asHandler(deployServerHealth),
  [DeployActivities.deployEntriesAndTokens]: asHandler(deployEntriesAndTokens),
  [DeployActivities.deployProbe]: asHandler(deployProbe),
  [DeployActivities.deployStartServer]: asHandler(deployStartServer),
  [DeployActivities.deployRollover]: asHandler(deployRollover),
  [DeployActivities.deployRecord]: asHandler(deployRecord),
  [DeployActivities.deploySvidCheck]: asHandler(deploySvidCheck),
};

export function registerDeployActivities(): void {
  for (const [name, handler] of Object.entries(DEPLOY_ACTIVITIES)) {
    df.app.activity(name, {
      handler: (input: unknown, context: InvocationContext) => handler(input, undefined, context),
    });
  }
}
