import type { ContainerApp, ContainerAppSecret } from "@azure/arm-appcontainers";
import type { InvocationContext } from "@azure/functions";
import type { LogsTable } from "@azure/monitor-query-logs";
import * as df from "durable-functions";
import { z } from "zod";
import { classifyRevision } from "../shared/containerapp/revision-state.js";
import {
  appFingerprint,
  buildReattestSpec,
  findSidecar,
  JOIN_TOKEN_ENV,
  revisionNameFor,
  runAlreadyApplied,
  TRUST_BUNDLE_ENV,
  type TrustBundleReference,
} from "../shared/containerapp/spec.js";
import { PermanentError } from "../shared/errors.js";
import { loadKql } from "../shared/kql/index.js";
import { debugHidden, readServerLogLevel } from "../shared/kql/server-log-level.js";
import { type Logger, type LogSink, registerSecret } from "../shared/logging.js";
import type { Services } from "../shared/services.js";
import { agentAliasId, parseWorkloadId } from "../shared/spiffe/ids.js";
import { SpireApiError } from "../shared/spire/errors.js";
import {
  Activities,
  type ActivityResult,
  type ApplyTokenInput,
  type ApplyTokenOutput,
  type EvictInput,
  type EvictOutput,
  type PrepareInput,
  type PrepareOutput,
  type RevisionStateInput,
  type RevisionStateOutput,
  type VerifyInput,
  type VerifyOutput,
} from "./contracts.js";
import { ledgerRecord } from "./ledger.js";
import { reattestRetireRevisions } from "./retire.js";
import { agentRef, appName, getApp, requireManaged, runActivity, sha256Hex } from "./run.js";

/*
 * The side effects of a re-attestation, one per activity. The join token exists only inside
 * reattestApplyToken: created, registered as a secret with the logger, written into the app's
 * secrets by a full-spec PUT, and hashed; agents are named by the SHA-256 of their token.
 */

// ---------------------------------------------------------------------------------------------
// Inputs

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, "not a lowercase hex SHA-256");
const isoTime = z.string().refine((s) => !Number.isNaN(Date.parse(s)), { message: "not an ISO time" });

const PrepareSchema = z.object({ app: appName, skipSpire: z.boolean().optional() });
const KEY_VAULT_SECRET_VERSION_URL = /^https:\/\/[^/\s]+\/secrets\/[A-Za-z0-9-]{1,127}\/[0-9a-f]{32}$/;
const ApplySchema = z.object({
  app: appName,
  runId: z.string().min(1).max(400),
  token: z
    .object({
      secretUrl: z.string().regex(KEY_VAULT_SECRET_VERSION_URL, "not a versioned Key Vault secret URL"),
      tokenSha256: sha256,
    })
    .optional(),
  images: z.record(z.string().min(1).max(64), z.string().min(1).max(512)).optional(),
});
const RevisionSchema = z.object({ app: appName, revisionName: z.string().min(1).max(80) });
const VerifySchema = z.object({
  app: appName,
  alias: z.string(),
  workloadId: z.string(),
  tokenSha256: sha256,
  since: isoTime,
});
const EvictSchema = z.object({ app: appName, alias: z.string(), keepTokenSha256: sha256 });

/** The alias the input names must be the app's own: an activity never touches another app's agents. */
function requireOwnAlias(services: Services, app: string, alias: string): void {
  const expected = agentAliasId(services.config.spire.trustDomain, app);
  if (alias !== expected) {
    throw new PermanentError("BadInput", `alias ${alias} is not app ${app}'s alias ${expected}.`);
  }
}

// ---------------------------------------------------------------------------------------------
// reattestPrepare

/** The app's alias and workload ID, and the agents holding the alias now (to evict later). */
export function reattestPrepare(
  input: PrepareInput,
  services?: Services,
  sink?: LogSink,
): Promise<ActivityResult<PrepareOutput>> {
  return runActivity(Activities.reattestPrepare, PrepareSchema, input, services, sink, async (i, s, log) => {
    const managed = requireManaged(await getApp(s, i.app), s);
    if (i.skipSpire) {
      // The deploy that started this run evicts the old agents itself (one run-command for all apps).
      return { app: managed.name, alias: managed.alias, workloadId: managed.workloadId, previousAgents: [] };
    }
    const spire = await s.spire();
    const entries = await spire.listEntries({ bySpiffeId: managed.alias });
    const previousAgents = [...new Set(entries.map((e) => agentRef(e.parentId)))];
    log.info("found the agents holding the alias", { alias: managed.alias, count: previousAgents.length });
    return { app: managed.name, alias: managed.alias, workloadId: managed.workloadId, previousAgents };
  });
}

// ---------------------------------------------------------------------------------------------
// reattestApplyToken

// Stands in for the token in a dry run of the transform, so a spec we would refuse costs no token.
const PLACEHOLDER_TOKEN = "00000000-0000-4000-8000-000000000000";

/** The name of the secret the sidecar's JOIN_TOKEN refers to (after a PUT of ours, always a secretRef). */
function tokenSecretName(app: ContainerApp): string | undefined {
  return findSidecar(app)?.env?.find((e) => e.name === JOIN_TOKEN_ENV)?.secretRef;
}

/** The identity that reads the bundle from Key Vault: the one the app uses for it already, else
 * the app's first user-assigned identity, else its system-assigned one. */
function bundleIdentity(app: ContainerApp, listed: ContainerAppSecret[]): string {
  const ref = findSidecar(app)?.env?.find((e) => e.name === TRUST_BUNDLE_ENV)?.secretRef;
  const existing = listed.find((s) => s.name === ref && s.keyVaultUrl)?.identity;
  if (existing) return existing;
  const userAssigned = Object.keys(app.identity?.userAssignedIdentities ?? {});
  return userAssigned[0] ?? "system";
}

/** The current version of the trust bundle secret, or undefined when there is none (then no pin). */
async function trustBundlePin(
  s: Services,
  app: ContainerApp,
  listed: ContainerAppSecret[],
  log: Logger,
): Promise<TrustBundleReference | undefined> {
  const name = s.config.keyVault.trustBundleSecretName;
  try {
    const secret = await s.secrets.getSecret(name);
    const keyVaultUrl = secret.properties.id;
    if (!keyVaultUrl) return undefined;
    return { keyVaultUrl, identity: bundleIdentity(app, listed) };
  } catch (err) {
    if ((err as { statusCode?: unknown }).statusCode === 404) {
      log.info("no trust bundle secret in Key Vault; the bundle reference is left as it is", {
        secretName: name,
      });
      return undefined;
    }
    throw err;
  }
}

/** Rebuilds after a concurrent change at most this often before giving up, changing nothing. */
export const MAX_SPEC_BUILDS = 3;

/**
 * A fresh join token for the app's alias, put into the app by a full-spec PUT that starts a new
 * revision. A retry of the same run finds its revision and changes nothing. The app is read again
 * right before the PUT: if it changed since the spec was built from it (a CI deploy landing in
 * between), the spec is rebuilt from the new read, so the PUT never undoes a change the transform
 * did not see.
 */
export function reattestApplyToken(
  input: ApplyTokenInput,
  services?: Services,
  sink?: LogSink,
): Promise<ActivityResult<ApplyTokenOutput>> {
  return runActivity(Activities.reattestApplyToken, ApplySchema, input, services, sink, async (i, s, log) => {
    const rg = s.config.apps.resourceGroup;
    const arm = s.containerApps.containerApps;
    let app = await getApp(s, i.app);
    let managed = requireManaged(app, s);
    const revisionName = revisionNameFor(managed.name, i.runId);
    let listed = (await arm.listSecrets(rg, managed.name)).value ?? [];

    if (runAlreadyApplied(app, i.runId)) {
      if (i.token) {
        log.info("revision already applied by this run; nothing changed", { revisionName });
        return { tokenSha256: i.token.tokenSha256, revisionName, alreadyApplied: true };
      }
      const secretName = tokenSecretName(app);
      const value = listed.find((x) => x.name === secretName)?.value;
      if (!value) {
        throw new PermanentError(
          "TokenSecretMissing",
          `Revision ${revisionName} exists but the app has no ${JOIN_TOKEN_ENV} secret value to identify its agent.`,
        );
      }
      registerSecret(value);
      log.info("revision already applied by this run; nothing changed", { revisionName });
      return { tokenSha256: sha256Hex(value), revisionName, alreadyApplied: true };
    }

    let token: string | undefined;
    for (let build = 1; ; build++) {
      const trustBundle = await trustBundlePin(s, app, listed, log);
      const images = i.images;
      // A deploy's token waits in Key Vault: the app's secret references it with the identity that
      // reads the bundle, so the PUT carries no token value.
      const tokenRef = i.token
        ? { keyVaultUrl: i.token.secretUrl, identity: bundleIdentity(app, listed) }
        : undefined;
      buildReattestSpec({
        app,
        secrets: listed,
        joinToken: tokenRef ?? PLACEHOLDER_TOKEN,
        runId: i.runId,
        trustBundle,
        images,
      });

      if (token === undefined && !i.token) {
        const spire = await s.spire();
        const [created] = await spire.createJoinTokens([managed.alias], s.config.spire.joinTokenTtlSeconds);
        if (!created) throw new Error("the SPIRE server returned no join token");
        registerSecret(created.value);
        token = created.value;
      }
      const tokenSha256 = i.token ? i.token.tokenSha256 : sha256Hex(token ?? "");
      const spec = buildReattestSpec({
        app,
        secrets: listed,
        joinToken: tokenRef ?? token ?? PLACEHOLDER_TOKEN,
        runId: i.runId,
        trustBundle,
        images,
      });

      const current = await getApp(s, i.app);
      if (appFingerprint(current) === appFingerprint(app)) {
        const putStarted = performance.now();
        await arm.createOrUpdate(rg, managed.name, spec).pollUntilDone();
        log.info("applied a fresh join token with a full-spec PUT", {
          revisionName,
          tokenSha256,
          bundleUrl: trustBundle?.keyVaultUrl,
          specBuilds: build,
          putMs: Math.round(performance.now() - putStarted),
        });
        return { tokenSha256, revisionName, alreadyApplied: false };
      }
      if (build >= MAX_SPEC_BUILDS) {
        throw new PermanentError(
          "ConcurrentChange",
          `Container app ${managed.name} changed ${build} times while spire-autopilot was building its update ` +
            "(a deploy in progress?); nothing was changed, so no change of theirs was undone. " +
            "Re-attest again once the deploy has finished.",
        );
      }
      log.info("the app changed since it was read; rebuilding the update from the new spec", {
        build,
        latestRevisionName: current.latestRevisionName,
      });
      // The change may have made the app one we must not touch (a scale-out, a removed tag).
      app = current;
      managed = requireManaged(app, s);
      listed = (await arm.listSecrets(rg, managed.name)).value ?? [];
    }
  });
}

// ---------------------------------------------------------------------------------------------
// reattestRevisionState

/** Whether the new revision runs, will not, or is still coming up (see classifyRevision). */
export function reattestRevisionState(
  input: RevisionStateInput,
  services?: Services,
  sink?: LogSink,
): Promise<ActivityResult<RevisionStateOutput>> {
  return runActivity(
    Activities.reattestRevisionState,
    RevisionSchema,
    input,
    services,
    sink,
    async (i, s) => {
      const rg = s.config.apps.resourceGroup;
      let revision: Awaited<ReturnType<Services["containerApps"]["containerAppsRevisions"]["getRevision"]>>;
      try {
        revision = await s.containerApps.containerAppsRevisions.getRevision(rg, i.app, i.revisionName);
      } catch (err) {
        if ((err as { statusCode?: unknown }).statusCode === 404) {
          return { state: "Pending", detail: `revision ${i.revisionName} does not exist yet` };
        }
        throw err;
      }
      const verdict = classifyRevision(revision);
      return {
        ...verdict,
        ...(revision.runningState !== undefined && { runningState: revision.runningState }),
      };
    },
  );
}

// ---------------------------------------------------------------------------------------------
// reattestVerify

/** The latest "Signed X509 SVID" time for one SPIFFE ID, from the product's query. */
function lastSigned(table: LogsTable | undefined): Date | undefined {
  if (!table) return undefined;
  const col = table.columnDescriptors.findIndex((c) => c.name === "last_signed");
  let latest: Date | undefined;
  for (const row of table.rows) {
    const v = row[col];
    const t = v instanceof Date ? v : typeof v === "string" ? new Date(v) : undefined;
    if (t && !Number.isNaN(t.getTime()) && (!latest || t > latest)) latest = t;
  }
  return latest;
}

type SvidCheck = Pick<VerifyOutput, "svidSigned" | "svidNote">;

export async function workloadSvidSignedSince(
  s: Services,
  workloadId: string,
  since: Date,
): Promise<SvidCheck> {
  if (!s.logs) throw new Error("no Log Analytics workspace configured");
  const logs = s.logs;
  // parseWorkloadId admits only [a-z0-9./:-] here, so the ID is safe inside a KQL string literal.
  parseWorkloadId(workloadId);
  // The window reaches back past `since`, however long the run has taken.
  const seconds = Math.max(0, Math.ceil((Date.now() - since.getTime()) / 1000)) + 3600;
  const query = async (text: string) => {
    const result = await logs.client.queryWorkspace(logs.workspaceId, text, { duration: `PT${seconds}S` });
    return result.status === "Success" ? result.tables[0] : result.partialTables[0];
  };
  const signed = lastSigned(
    await query(`${loadKql("workload-svid-signed")}\n| where spiffe_id == "${workloadId}"`),
  );
  if (signed !== undefined && signed.getTime() > since.getTime()) return { svidSigned: true };
  // Not signed (yet), or the server cannot say: at INFO it never logs a signing.
  const level = readServerLogLevel(await query(loadKql("spire-server-log-level")));
  if (debugHidden(level, since)) {
    return {
      svidSigned: "unknown",
      svidNote: `the SPIRE server's log level hides workload signings: ${level?.infoLines} INFO and no DEBUG lines in the last ${seconds} s, and "Signed X509 SVID" is a DEBUG line. The run relies on the agent's attestation; set log_level = "DEBUG" in the server's server.conf to check signings.`,
    };
  }
  return { svidSigned: false };
}

/** Whether the agent with the new token attested and, where logs exist, the workload SVID was signed. */
export function reattestVerify(
  input: VerifyInput,
  services?: Services,
  sink?: LogSink,
): Promise<ActivityResult<VerifyOutput>> {
  return runActivity(Activities.reattestVerify, VerifySchema, input, services, sink, async (i, s, log) => {
    requireOwnAlias(s, i.app, i.alias);
    const spire = await s.spire();
    const agents = await spire.listAgents({ byAttestationType: "join_token", byBanned: false });
    const agentAttested = agents.some((a) => !a.banned && agentRef(a.id) === i.tokenSha256);
    const out: VerifyOutput = { agentAttested };
    if (s.logs) Object.assign(out, await workloadSvidSignedSince(s, i.workloadId, new Date(i.since)));
    log.info("verified", { ...out, tokenSha256: i.tokenSha256, agentsListed: agents.length });
    return out;
  });
}

// ---------------------------------------------------------------------------------------------
// reattestEvictOld

/**
 * Deletes every agent holding the app's alias except the new one; deleting a join-token agent
 * deletes its alias entry too. Alias entries of tokens that never attested (a spent attempt)
 * have no agent to delete and are deleted directly. Refuses when the new agent holds no alias,
 * so an app is never left without an agent.
 */
export function reattestEvictOld(
  input: EvictInput,
  services?: Services,
  sink?: LogSink,
): Promise<ActivityResult<EvictOutput>> {
  return runActivity(Activities.reattestEvictOld, EvictSchema, input, services, sink, async (i, s, log) => {
    requireOwnAlias(s, i.app, i.alias);
    const spire = await s.spire();
    const entries = await spire.listEntries({ bySpiffeId: i.alias });
    const isKept = (parentId: string) => agentRef(parentId) === i.keepTokenSha256;
    if (!entries.some((e) => isKept(e.parentId))) {
      throw new PermanentError(
        "NewAgentNotFound",
        `No alias entry ${i.alias} belongs to the new agent; refusing to evict the others.`,
      );
    }
    const oldParents = [...new Set(entries.filter((e) => !isKept(e.parentId)).map((e) => e.parentId))];
    let agentsDeleted = 0;
    let staleEntriesDeleted = 0;
    let after = entries;
    if (oldParents.length > 0) {
      for (const parent of oldParents) {
        if ((await spire.deleteAgent(parent)).deleted) agentsDeleted++;
      }
      after = await spire.listEntries({ bySpiffeId: i.alias });
      const leftovers = after.filter((e) => !isKept(e.parentId));
      if (leftovers.length > 0) {
        const results = await spire.deleteEntries(leftovers.map((e) => e.id));
        const failed = results.find((r) => r.status === "failed");
        if (failed?.status === "failed") {
          // Classified by its status code: UNAVAILABLE is retried, INVALID_ARGUMENT is not.
          throw new SpireApiError(
            "Entry.BatchDeleteEntry",
            failed.code,
            `stale alias entry: ${failed.message}`,
          );
        }
        staleEntriesDeleted = leftovers.length;
      }
    }
    const remaining = after.filter((e) => isKept(e.parentId)).length;
    log.info("evicted the previous agents", {
      evicted: oldParents.length,
      agentsDeleted,
      staleEntriesDeleted,
      remaining,
    });
    return { evicted: oldParents.length, remaining };
  });
}

// ---------------------------------------------------------------------------------------------
// Registration

export type ActivityHandler = (
  input: unknown,
  services?: Services,
  sink?: LogSink,
) => Promise<ActivityResult<unknown>>;

/** An activity's typed handler as the host calls it: input as received (each handler validates it). */
const asHandler =
  <I, O>(h: (input: I, services?: Services, sink?: LogSink) => Promise<ActivityResult<O>>): ActivityHandler =>
  (input, services, sink) =>
    h(input as I, services, sink);

/** Every activity of the re-attest orchestration by name: what the host registers, and what tests run. */
export const REATTEST_ACTIVITIES: Readonly<Record<string, ActivityHandler>> = {
  [Activities.reattestPrepare]: asHandler(reattestPrepare),
  [Activities.reattestApplyToken]: asHandler(reattestApplyToken),
  [Activities.reattestRevisionState]: asHandler(reattestRevisionState),
  [Activities.reattestVerify]: asHandler(reattestVerify),
  [Activities.reattestEvictOld]: asHandler(reattestEvictOld),
  [Activities.reattestRetireRevisions]: asHandler(reattestRetireRevisions),
  [Activities.ledgerRecord]: asHandler(ledgerRecord),
};

/** Registers every activity of the re-attest orchestration with the Functions host. */
export function registerReattestActivities(): void {
  for (const [name, handler] of Object.entries(REATTEST_ACTIVITIES)) {
    df.app.activity(name, {
      handler: (input: unknown, context: InvocationContext) => handler(input, undefined, context),
    });
  }
}
