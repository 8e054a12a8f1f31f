import type { ContainerApp } from "@azure/arm-appcontainers";
import type { AppVerdict } from "../containerapp/apps.js";
import type { Selector } from "../spire/types.js";

/*
 * Which apps one deploy acts on, and with which image changes: pure, from the discovered verdicts
 * and the request. A request that names an unknown or unusable app, an image for a container the
 * app lacks, or a string that is not an image reference is refused whole (nothing starts).
 */

export interface DeployTarget {
  name: string;
  alias: string;
  workloadId: string;
  selectors: Selector[];
  /** Container → new image (only the ones that change). */
  images: Record<string, string>;
}

export interface Selection {
  targets: DeployTarget[];
  /** Every discovered app with why it is in or out. */
  apps: Array<{ app: string; included: boolean; reason: string }>;
  images: Array<{ app: string; container: string; from: string; to: string }>;
  /** Apps whose owned entries stay even though this deploy does not act on them. */
  keep: string[];
}

export type SelectionResult =
  | { ok: true; value: Selection }
  | { ok: false; status: 404 | 422; error: string };

/**
 * An OCI image reference: [registry[:port]/]path[:tag][@sha256:digest], lowercase path
 * components (the distribution spec's grammar, simplified to what registries accept).
 */
const IMAGE_REF =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]{1,5})?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$/;

export function isImageRef(s: string): boolean {
  return s.length <= 512 && IMAGE_REF.test(s);
}

export interface SelectionInput {
  verdicts: AppVerdict[];
  apps: Map<string, ContainerApp>;
  requested?: string[];
  images?: Record<string, Record<string, string>>;
  resourceGroup: string;
  managedTag: string;
}

export function selectDeploy(input: SelectionInput): SelectionResult {
  const byName = new Map(input.verdicts.map((v) => [v.kind === "managed" ? v.app.name : v.name, v]));
  const requested = input.requested ? new Set(input.requested) : undefined;
  for (const name of requested ?? []) {
    const v = byName.get(name);
    if (!v)
      return {
        ok: false,
        status: 404,
        error: `Container app "${name}" does not exist in resource group ${input.resourceGroup}.`,
      };
    if (v.kind === "unmanaged")
      return {
        ok: false,
        status: 404,
        error: `Container app "${name}" is not managed by spire-autopilot: it lacks the tag ${input.managedTag}.`,
      };
    if (v.kind === "skipped")
      return {
        ok: false,
        status: 422,
        error: `Container app "${name}" is tagged as managed but cannot be: ${v.reason}.`,
      };
  }
  const targets: DeployTarget[] = [];
  const apps: Selection["apps"] = [];
  const images: Selection["images"] = [];
  const keep: string[] = [];
  for (const [app, changes] of Object.entries(input.images ?? {})) {
    const v = byName.get(app);
    if (v?.kind !== "managed")
      return {
        ok: false,
        status: v ? 422 : 404,
        error: `images names app "${app}", which this deploy cannot act on (${v ? v.kind : "not found"}).`,
      };
    if (requested && !requested.has(app))
      return { ok: false, status: 422, error: `images names app "${app}", which is not in apps.` };
    const containers = input.apps.get(app)?.template?.containers ?? [];
    for (const [container, ref] of Object.entries(changes)) {
      if (!containers.some((c) => c.name === container))
        return {
          ok: false,
          status: 422,
          error: `App "${app}" has no container "${container}" (it has ${containers.map((c) => c.name).join(", ")}).`,
        };
      if (!isImageRef(ref))
        return {
          ok: false,
          status: 422,
          error: `"${ref}" (app ${app}, container ${container}) is not an image reference.`,
        };
    }
  }
  for (const v of input.verdicts) {
    if (v.kind === "unmanaged") {
      apps.push({ app: v.name, included: false, reason: `unmanaged: no ${input.managedTag} tag` });
      continue;
    }
    if (v.kind === "skipped") {
      apps.push({ app: v.name, included: false, reason: `tagged but unusable: ${v.reason}` });
      keep.push(v.name);
      continue;
    }
    const m = v.app;
    if (requested && !requested.has(m.name)) {
      apps.push({ app: m.name, included: false, reason: "not requested" });
      keep.push(m.name);
      continue;
    }
    const containers = input.apps.get(m.name)?.template?.containers ?? [];
    const changes: Record<string, string> = {};
    for (const [container, to] of Object.entries(input.images?.[m.name] ?? {})) {
      const from = containers.find((c) => c.name === container)?.image ?? "";
      if (from === to) continue;
      changes[container] = to;
      images.push({ app: m.name, container, from, to });
    }
    apps.push({ app: m.name, included: true, reason: "managed" });
    targets.push({
      name: m.name,
      alias: m.alias,
      workloadId: m.workloadId,
      selectors: m.selectors,
      images: changes,
    });
  }
  return { ok: true, value: { targets, apps, images, keep } };
}
