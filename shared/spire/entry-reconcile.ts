import type { Entry, EntrySpec, EntryUpdate, Selector } from "./types.js";

/*
 * Workload entry reconciliation, in the spirit of spire-controller-manager's spireentry: the
 * desired entries come from the managed apps, the actual ones from a full (paged) ListEntries, and
 * this pure diff says what to create, update and delete. Ownership is by entry ID: every entry we
 * create carries OWNED_ENTRY_PREFIX, so an entry without it (someone else's, or a join-token alias
 * entry the server made) is never updated or deleted.
 */

/** The prefix of every entry ID spire-autopilot creates; it recognises its own entries by it. */
export const OWNED_ENTRY_PREFIX = "spire-autopilot.";
const ENTRY_ID = /^[A-Za-z0-9_.][A-Za-z0-9._:-]{0,254}$/;
/** Join-token agent IDs: entries parented to one are alias entries the server owns. */
const JOIN_TOKEN_PARENT = /\/spire\/agent\/join_token\//;

export const BATCH = { create: 50, update: 50, delete: 200 } as const;

export interface DesiredApp {
  name: string;
  /** The app's node alias (spiffe://<td>/agent/<app>): the workload entry's parent. */
  alias: string;
  workloadId: string;
  selectors: Selector[];
}

/** The deterministic ID of an app's workload entry (app names are [a-z0-9-], so it always matches). */
export function ownedEntryId(app: string): string {
  const id = `${OWNED_ENTRY_PREFIX}${app}.workload`;
  if (!ENTRY_ID.test(id)) throw new Error(`app name ${app} does not make a valid SPIRE entry ID`);
  return id;
}

/** The app an owned entry ID belongs to, or undefined for an entry we do not own. */
export function ownerOf(entryId: string): string | undefined {
  const m = /^spire-autopilot\.([a-z0-9-]+)\.workload$/.exec(entryId);
  return m?.[1];
}

export function desiredEntry(app: DesiredApp, x509SvidTtl: number): EntrySpec & { id: string } {
  return {
    id: ownedEntryId(app.name),
    spiffeId: app.workloadId,
    parentId: app.alias,
    selectors: [...app.selectors].sort(bySelector),
    x509SvidTtl,
  };
}

export interface EntryDiff {
  create: Array<EntrySpec & { id: string }>;
  update: EntryUpdate[];
  /** IDs of owned entries of apps no longer managed. */
  delete: string[];
  /** Desired entries someone else's similar entry already provides (left alone, not duplicated). */
  providedByUnowned: string[];
}

const bySelector = (a: Selector, b: Selector) =>
  a.type === b.type ? a.value.localeCompare(b.value) : a.type.localeCompare(b.type);
const selectorKey = (s: Selector[]) =>
  [...s]
    .sort(bySelector)
    .map((x) => `${x.type}:${x.value}`)
    .join(",");

/** SPIRE's "similar": same SPIFFE ID, parent and selectors; creating one fails ALREADY_EXISTS. */
const similar = (a: Pick<Entry, "spiffeId" | "parentId" | "selectors">, b: EntrySpec) =>
  a.spiffeId === b.spiffeId &&
  a.parentId === b.parentId &&
  selectorKey(a.selectors) === selectorKey(b.selectors);

/**
 * The diff. `keep` names the apps whose owned entries must stay even if not desired now: managed
 * apps outside this deploy's selection, and apps tagged managed but unusable today (a tag typo must
 * not cost a working workload its identity). Everything else owned and undesired is deleted.
 */
export function reconcileEntries(input: {
  desired: DesiredApp[];
  actual: Entry[];
  keep: Iterable<string>;
  x509SvidTtl: number;
}): EntryDiff {
  const keep = new Set(input.keep);
  const owned = new Map<string, Entry>();
  const unowned: Entry[] = [];
  for (const e of input.actual) {
    if (ownerOf(e.id) !== undefined && !JOIN_TOKEN_PARENT.test(e.parentId)) owned.set(e.id, e);
    else unowned.push(e);
  }
  const diff: EntryDiff = { create: [], update: [], delete: [], providedByUnowned: [] };
  const wanted = new Set<string>();
  for (const app of [...input.desired].sort((a, b) => a.name.localeCompare(b.name))) {
    const want = desiredEntry(app, input.x509SvidTtl);
    wanted.add(want.id);
    const have = owned.get(want.id);
    if (!have) {
      if (unowned.some((u) => similar(u, want))) diff.providedByUnowned.push(app.name);
      else diff.create.push(want);
    } else if (!similar(have, want) || have.x509SvidTtl !== want.x509SvidTtl) {
      diff.update.push(want);
    }
  }
  for (const [id] of [...owned].sort(([a], [b]) => a.localeCompare(b))) {
    const app = ownerOf(id)!;
    if (!wanted.has(id) && !keep.has(app)) diff.delete.push(id);
  }
  return diff;
}

/** Splits `items` into batches of at most `size` (the Server API's batch calls). */
export function batches<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
