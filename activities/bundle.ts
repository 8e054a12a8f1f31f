import type { InvocationContext } from "@azure/functions";
import * as df from "durable-functions";
import { z } from "zod";
import { PermanentError } from "../shared/errors.js";
import type { Logger, LogSink } from "../shared/logging.js";
import type { Services } from "../shared/services.js";
import type { TrustBundle } from "../shared/spire/types.js";
import { decideRotation } from "../shared/trust/decision.js";
import { noteBundleWrite, recordRotation } from "../shared/trust/ledger.js";
import { readServerBundle } from "../shared/trust/server-bundle.js";
import { sameRoots, summarizeServerBundle } from "../shared/trust/summary.js";
import { readVaultBundle, writeVaultBundle } from "../shared/trust/vault.js";
import {
  Activities,
  type ActivityResult,
  type BundleReadVaultOutput,
  type BundleRecordInput,
  type BundleSyncInput,
  type BundleSyncOutput,
} from "./contracts.js";
import { runActivity } from "./run.js";

/*
 * The side effects of a trust bundle rotation. Reading the server's bundle and writing it to Key
 * Vault happen in one activity (bundleSync), so the PEM never enters durable history: history,
 * customStatus and outputs carry fingerprints and expiries only. A bundle is public, but it is
 * 1-2 KB per root and SPIRE keeps expired roots for a day, so carrying it would bloat every
 * replay; and in run-command mode one activity means one run-command per rotation, not two.
 */

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, "not a lowercase hex SHA-256");
const isoTime = z.string().refine((s) => !Number.isNaN(Date.parse(s)), { message: "not an ISO time" });
const version = z.string().max(64);

const SyncSchema = z.object({
  vault: z
    .object({ version, fingerprints: z.array(sha256).max(1000), source: z.enum(["tags", "value"]) })
    .nullable(),
});

const RecordSchema = z.object({
  runId: z.string().min(1).max(400),
  trigger: z.string().min(1).max(40),
  // Clipped, not refused: a long reason (an event's text) must not cost the run its record.
  reason: z.string().transform((r) => r.slice(0, 500)),
  startedAt: isoTime,
  finishedAt: isoTime,
  action: z.enum(["first-write", "unchanged", "changed", "ca-reset", "retag", "refused", "failed"]),
  version: version.optional(),
  previousVersion: version.optional(),
  written: z.boolean(),
  serverFingerprints: z.array(sha256).max(1000),
  vaultFingerprints: z.array(sha256).max(1000),
  failure: z
    .string()
    .transform((f) => f.slice(0, 2000))
    .optional(),
});

/** The current version of the trust bundle secret as a summary; null when there is none. */
export function bundleReadVault(
  input: unknown,
  services?: Services,
  sink?: LogSink,
): Promise<ActivityResult<BundleReadVaultOutput>> {
  return runActivity(Activities.bundleReadVault, z.unknown(), input, services, sink, async (_i, s, log) => {
    const name = s.config.keyVault.trustBundleSecretName;
    const state = await readVaultBundle(s.secrets, name);
    log.info("read the trust bundle secret", {
      secret: name,
      version: state?.version ?? "(none)",
      roots: state?.fingerprints.length ?? 0,
      source: state?.source ?? "none",
    });
    return state ?? null;
  });
}

/**
 * Reads the server's bundle and, when its roots differ from the compared version's, writes it as a
 * new version. Idempotent: a retry that finds a newer version already holding exactly these roots
 * (its own earlier attempt) returns that version instead of writing another.
 */
export function bundleSync(
  input: BundleSyncInput,
  services?: Services,
  sink?: LogSink,
): Promise<ActivityResult<BundleSyncOutput>> {
  return runActivity(Activities.bundleSync, SyncSchema, input, services, sink, async (i, s, log) =>
    syncBundle(s, i.vault, await readServerBundle(s), log),
  );
}

/**
 * bundleSync's decision and write for a bundle already read: a deploy in run-command mode reads
 * the bundle in the same script as its other reads and syncs it here, in its own activity, so the
 * PEM still never enters durable history.
 */
export async function syncBundle(
  s: Services,
  vault: BundleSyncInput["vault"],
  bundle: TrustBundle,
  log: Logger,
): Promise<BundleSyncOutput> {
  const server = summarizeServerBundle(bundle);
  const decision = decideRotation(server, vault ?? undefined);
  if (decision.action === "refused") {
    throw new PermanentError("BundleRefused", `Nothing written: ${decision.reason}.`);
  }
  const base = { server, action: decision.action, added: decision.added, removed: decision.removed };
  if (!decision.write) {
    log.info("the trust bundle is unchanged; nothing written", { roots: server.fingerprints.length });
    return { ...base, written: false, ...(vault ? { version: vault.version } : {}) };
  }
  const name = s.config.keyVault.trustBundleSecretName;
  const current = await readVaultBundle(s.secrets, name);
  if (
    current &&
    current.version !== vault?.version &&
    current.source === "tags" &&
    sameRoots(current.fingerprints, server.fingerprints)
  ) {
    log.info("a version with these roots is already written", { version: current.version });
    return { ...base, written: true, alreadyWritten: true, version: current.version };
  }
  const written = await writeVaultBundle(s.secrets, name, bundle.pem, server);
  try {
    await noteBundleWrite(await s.fleetTable(), {
      version: written.version,
      at: written.createdOn ?? new Date().toISOString(),
    });
  } catch (err) {
    // The version stands; its Event Grid event will just start one redundant check.
    log.warn("could not note the written version in the fleet table", {
      version: written.version,
      error: (err as Error).message,
    });
  }
  log.info("wrote a new trust bundle version", {
    secret: name,
    version: written.version,
    action: decision.action,
    roots: server.fingerprints.length,
    added: decision.added.length,
    removed: decision.removed.length,
    sequence: server.sequence,
  });
  return { ...base, written: true, version: written.version };
}

/** The run in the fleet table: the summary row, and an event row when a version was written. */
export function bundleRecord(
  input: BundleRecordInput,
  services?: Services,
  sink?: LogSink,
): Promise<ActivityResult<{ recorded: true }>> {
  return runActivity(Activities.bundleRecord, RecordSchema, input, services, sink, async (i, s, log) => {
    await recordRotation(await s.fleetTable(), i);
    if (i.action === "ca-reset") {
      log.warn("recorded a CA reset: none of Key Vault's roots is in the server's bundle", {
        version: i.version,
        previousVersion: i.previousVersion,
      });
    }
    return { recorded: true as const };
  });
}

type Handler<I, O> = (input: I, services?: Services, sink?: LogSink) => Promise<ActivityResult<O>>;

function register<I, O>(name: string, handler: Handler<I, O>): void {
  df.app.activity(name, {
    handler: (input: unknown, context: InvocationContext) => handler(input as I, undefined, context),
  });
}

/** Registers every activity of the rotateBundle orchestration with the Functions host. */
export function registerBundleActivities(): void {
  register(Activities.bundleReadVault, bundleReadVault);
  register(Activities.bundleSync, bundleSync);
  register(Activities.bundleRecord, bundleRecord);
}
