import type { DeployPlan } from "../../orchestrations/deploy.js";
import { BATCH, reconcileEntries } from "../spire/entry-reconcile.js";
import type { Entry } from "../spire/types.js";
import type { Selection } from "./selection.js";

/*
 * A dry run's plan: the selection, the entry diff against the server's entries now, and the calls
 * the deploy will make. Pure. The per-app call counts are the happy path's (each poll that finds a
 * revision or an agent not ready yet adds one), so they are a floor, not a promise.
 */

/** ARM calls per app on the happy path: GET + listSecrets + GET (change check) + PUT + revision GET + retire GET. */
const ARM_PER_APP = 6;
/** SPIRE calls per app: prepare's ListEntries, verify's ListAgents, evict's ListEntries. */
const SPIRE_PER_APP = 3;

export function deployPlan(input: {
  selection: Selection;
  actual: Entry[];
  x509SvidTtl: number;
  armPages: number;
  spireApi: "grpc" | "run-command";
}): DeployPlan {
  const { selection } = input;
  const diff = reconcileEntries({
    desired: selection.targets,
    actual: input.actual,
    keep: selection.keep,
    x509SvidTtl: input.x509SvidTtl,
  });
  const n = selection.targets.length;
  const batchCalls =
    Math.ceil(diff.create.length / BATCH.create) +
    Math.ceil(diff.update.length / BATCH.update) +
    Math.ceil(diff.delete.length / BATCH.delete);
  // gRPC: health, GetBundle (rotation), ListEntries, the batch calls, one CreateJoinToken per app,
  // and each app's own calls. Run-command: one script for health + bundle + entries, one for the
  // batch, one for every app's agent check and eviction (the children make none).
  const batched = n > 0 || batchCalls > 0 ? 1 : 0;
  const spireCalls =
    input.spireApi === "grpc" ? 3 + batchCalls + n + n * SPIRE_PER_APP : 1 + batched + (n > 0 ? 1 : 0);
  return {
    apps: selection.apps,
    entries: { create: diff.create.length, update: diff.update.length, delete: diff.delete.length },
    images: selection.images,
    tokens: n,
    calls: {
      arm: input.armPages + n * ARM_PER_APP,
      spireApi: input.spireApi === "grpc" ? spireCalls : 0,
      runCommands: input.spireApi === "run-command" ? spireCalls : 0,
    },
  };
}
