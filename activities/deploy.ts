import { createHash } from "node:crypto";
import type { InvocationContext } from "@azure/functions";
import * as df from "durable-functions";
import { z } from "zod";
import { discoverApps } from "../shared/containerapp/discover.js";
import { selectDeploy } from "../shared/deploy/selection.js";
import { PermanentError } from "../shared/errors.js";
import { type Logger, type LogSink, registerSecret } from "../shared/logging.js";
import type { Services } from "../shared/services.js";
import { reconcileEntries } from "../shared/spire/entry-reconcile.js";
import type { ActivityResult } from "./contracts.js";
import {
  DeployActivities,
  type DeployToken,
  type DiscoverInput,
  type DiscoverOutput,
  type EntriesAndTokensInput,
  type EntriesAndTokensOutput,
  type ServerHealthOutput,
} from "./deploy.contracts.js";
import type { ActivityHandler } from "./reattest.js";
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
const EntriesSchema = z.object({
  runId: z.string().min(1).max(400),
  targets: z.array(Target).max(2000),
  keep: z.array(appName).max(2000),
});

export const tokenSecretName = (app: string) => `join-token-${app}`;
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
      const actual = await spire.listEntries({});
      const diff = reconcileEntries({
        desired: i.targets,
        actual,
        keep: i.keep,
        x509SvidTtl: s.config.apps.workloadX509TtlSeconds,
      });
      const reused: DeployToken[] = [];
      const needed: typeof i.targets = [];
      for (const t of i.targets) {
        const found = await storedToken(s, t.name, i.runId);
        if (found) reused.push(found);
        else needed.push(t);
      }
      const ttlSeconds = s.config.spire.joinTokenTtlSeconds;
      const result = await spire.applyDeployBatch({
        tokens: { aliases: needed.map((t) => t.alias), ttlSeconds },
        create: diff.create,
        update: diff.update,
        delete: diff.delete,
      });
      const tokens = [...reused];
      for (const [n, t] of needed.entries()) {
        const token = result.tokens[n];
        if (!token) throw new Error(`the SPIRE server returned no join token for ${t.name}`);
        registerSecret(token.value);
        tokens.push(await storeToken(s, t.name, token.value, token.expiresAt, i.runId, log));
      }
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
};

export function registerDeployActivities(): void {
  for (const [name, handler] of Object.entries(DEPLOY_ACTIVITIES)) {
    df.app.activity(name, {
      handler: (input: unknown, context: InvocationContext) => handler(input, undefined, context),
    });
  }
}
