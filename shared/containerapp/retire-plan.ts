import type { ContainerApp, Revision } from "@azure/arm-appcontainers";

/*
 * Which of an app's revisions a re-attestation retires: a pure decision, table-tested.
 *
 * In Multiple revision mode Azure keeps every revision active until told otherwise. After a
 * re-attestation the replaced revisions keep running, and whichever join token a restarted replica
 * of theirs reads (its old one, or the app-wide secret's new one the new revision's agent used) is
 * spent: each replica restart crash-loops its sidecar, the attestation-failure alert fires again
 * and the app is re-attested again, forever. So the old ones are deactivated, except any that
 * still take traffic or a label (deactivating those would cut live traffic) and any newer than
 * the kept revision (a deploy that landed after ours).
 */

export interface RetirePlan {
  mode: "Single" | "Multiple";
  /** Set when nothing may be retired, saying why. */
  refused?: string;
  /** Active revisions to deactivate, oldest first. */
  retire: string[];
  /** Active old revisions left alone because traffic or a label still points at them. */
  keptWithTraffic: string[];
  /** Active revisions created after the kept one: someone else's, left alone. */
  keptNewer: string[];
}

export function revisionsMode(app: ContainerApp): "Single" | "Multiple" {
  return app.configuration?.activeRevisionsMode?.toLowerCase() === "multiple" ? "Multiple" : "Single";
}

const lower = (s: string | undefined) => s?.toLowerCase();

/** Revisions the app's ingress still routes to: by a weight above 0, by a label, or as the latest. */
function routedRevisions(app: ContainerApp): Set<string> {
  const routed = new Set<string>();
  for (const t of app.configuration?.ingress?.traffic ?? []) {
    if (!(t.weight && t.weight > 0) && !t.label) continue;
    const targets = t.revisionName
      ? [t.revisionName]
      : t.latestRevision
        ? // Which revision "latest" resolves to depends on readiness; keep both candidates.
          [app.latestReadyRevisionName, app.latestRevisionName]
        : [];
    for (const name of targets) if (name) routed.add(name.toLowerCase());
  }
  return routed;
}

/**
 * The plan for `keep` (the re-attestation's new revision) among the app's revisions. Single mode:
 * nothing (Azure deactivates the replaced revision itself once the new one runs). Refused when the
 * kept revision is not an active revision of the app, so the app is never left without one.
 */
export function planRetirement(app: ContainerApp, revisions: Revision[], keep: string): RetirePlan {
  const mode = revisionsMode(app);
  const plan: RetirePlan = { mode, retire: [], keptWithTraffic: [], keptNewer: [] };
  if (mode === "Single") return plan;
  const kept = revisions.find((r) => lower(r.name) === lower(keep));
  if (!kept?.active) {
    plan.refused = `revision ${keep} is not an active revision of container app ${app.name}; no other revision is deactivated`;
    return plan;
  }
  const routed = routedRevisions(app);
  const keptCreated = kept.createdTime?.getTime();
  const others = revisions
    .filter((r) => r.active && r.name && lower(r.name) !== lower(keep))
    .sort((a, b) => (a.createdTime?.getTime() ?? 0) - (b.createdTime?.getTime() ?? 0));
  for (const r of others) {
    const name = r.name as string;
    const created = r.createdTime?.getTime();
    // Unknown creation times are treated as newer: the revision is only retired when known older.
    if (keptCreated === undefined || created === undefined || created >= keptCreated) {
      plan.keptNewer.push(name);
    } else if ((r.trafficWeight ?? 0) > 0 || routed.has(name.toLowerCase())) {
      plan.keptWithTraffic.push(name);
    } else {
      plan.retire.push(name);
    }
  }
  return plan;
}
