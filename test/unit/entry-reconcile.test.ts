import { describe, expect, it } from "vitest";
import {
  BATCH,
  batches,
  type DesiredApp,
  ownedEntryId,
  ownerOf,
  reconcileEntries,
} from "../../shared/spire/entry-reconcile.js";
import type { Entry } from "../../shared/spire/types.js";

const TD = "spiffe://td";
const app = (name: string, selectors = [{ type: "unix", value: "uid:0" }]): DesiredApp => ({
  name,
  alias: `${TD}/agent/${name}`,
  workloadId: `${TD}/ests/bp/${name}/aid/${name}`,
  selectors,
});
const entry = (over: Partial<Entry> & Pick<Entry, "id">): Entry => ({
  spiffeId: "",
  parentId: "",
  selectors: [{ type: "unix", value: "uid:0" }],
  x509SvidTtl: 3600,
  jwtSvidTtl: 0,
  admin: false,
  downstream: false,
  dnsNames: [],
  hint: "",
  federatesWith: [],
  revisionNumber: 0,
  createdAt: undefined,
  expiresAt: undefined,
  ...over,
});
const ownedOf = (a: DesiredApp, over: Partial<Entry> = {}) =>
  entry({ id: ownedEntryId(a.name), spiffeId: a.workloadId, parentId: a.alias, ...over });

const A = app("alpha");
const B = app("beta");
const tokenAgent = `${TD}/spire/agent/join_token/0b6b1a0e-0000-4000-8000-000000000000`;

describe("reconcileEntries", () => {
  it.each([
    {
      name: "nothing there: create every desired entry",
      desired: [A, B],
      actual: [],
      keep: [],
      expect: { create: ["alpha", "beta"], update: [], delete: [], providedByUnowned: [] },
    },
    {
      name: "all in place: nothing to do",
      desired: [A, B],
      actual: [ownedOf(A), ownedOf(B)],
      keep: [],
      expect: { create: [], update: [], delete: [], providedByUnowned: [] },
    },
    {
      name: "changed TTL: update",
      desired: [A],
      actual: [ownedOf(A, { x509SvidTtl: 60 })],
      keep: [],
      expect: { create: [], update: ["alpha"], delete: [], providedByUnowned: [] },
    },
    {
      name: "changed selectors: update",
      desired: [A],
      actual: [ownedOf(A, { selectors: [{ type: "unix", value: "uid:1000" }] })],
      keep: [],
      expect: { create: [], update: ["alpha"], delete: [], providedByUnowned: [] },
    },
    {
      name: "selector order does not matter",
      desired: [
        app("alpha", [
          { type: "unix", value: "uid:0" },
          { type: "unix", value: "gid:0" },
        ]),
      ],
      actual: [
        ownedOf(A, {
          selectors: [
            { type: "unix", value: "gid:0" },
            { type: "unix", value: "uid:0" },
          ],
        }),
      ],
      keep: [],
      expect: { create: [], update: [], delete: [], providedByUnowned: [] },
    },
    {
      name: "owned entry of a gone app: delete",
      desired: [A],
      actual: [ownedOf(A), ownedOf(B)],
      keep: [],
      expect: { create: [], update: [], delete: ["beta"], providedByUnowned: [] },
    },
    {
      name: "owned entry of a kept app (not selected, or unusable today): left",
      desired: [A],
      actual: [ownedOf(A), ownedOf(B)],
      keep: ["beta"],
      expect: { create: [], update: [], delete: [], providedByUnowned: [] },
    },
    {
      name: "unowned entry never deleted or updated",
      desired: [],
      actual: [entry({ id: "someone-else", spiffeId: B.workloadId, parentId: B.alias })],
      keep: [],
      expect: { create: [], update: [], delete: [], providedByUnowned: [] },
    },
    {
      name: "a similar unowned entry provides it: no duplicate",
      desired: [A],
      actual: [entry({ id: "legacy-uuid", spiffeId: A.workloadId, parentId: A.alias })],
      keep: [],
      expect: { create: [], update: [], delete: [], providedByUnowned: ["alpha"] },
    },
    {
      name: "join-token alias entries are never touched, even with an owned-looking id",
      desired: [],
      actual: [entry({ id: ownedEntryId("gamma"), spiffeId: `${TD}/agent/gamma`, parentId: tokenAgent })],
      keep: [],
      expect: { create: [], update: [], delete: [], providedByUnowned: [] },
    },
  ])("$name", (c) => {
    const diff = reconcileEntries({ desired: c.desired, actual: c.actual, keep: c.keep, x509SvidTtl: 3600 });
    expect({
      create: diff.create.map((e) => ownerOf(e.id)),
      update: diff.update.map((e) => ownerOf(e.id)),
      delete: diff.delete.map((id) => ownerOf(id)),
      providedByUnowned: diff.providedByUnowned,
    }).toEqual(c.expect);
  });

  it("creates entries with the app's alias as parent, its workload ID, and the TTL", () => {
    const [created] = reconcileEntries({ desired: [A], actual: [], keep: [], x509SvidTtl: 900 }).create;
    expect(created).toEqual({
      id: "spire-autopilot.alpha.workload",
      spiffeId: A.workloadId,
      parentId: A.alias,
      selectors: A.selectors,
      x509SvidTtl: 900,
    });
  });
});

describe("owned entry ids", () => {
  it.each([
    ["spire-autopilot.alpha.workload", "alpha"],
    ["spire-autopilot.a-1.workload", "a-1"],
    ["spire-autopilot.alpha", undefined],
    ["x.spire-autopilot.alpha.workload", undefined],
    ["0b6b1a0e-0000-4000-8000-000000000000", undefined],
  ])("%s is owned by %s", (id, owner) => {
    expect(ownerOf(id)).toBe(owner);
  });
  it("matches SPIRE's entry ID rule", () => {
    expect(ownedEntryId("a".repeat(32))).toMatch(/^[A-Za-z0-9_.][A-Za-z0-9._:-]{0,254}$/);
  });
});

describe("batches", () => {
  it.each([
    [0, BATCH.create, []],
    [50, BATCH.create, [50]],
    [51, BATCH.create, [50, 1]],
    [450, BATCH.delete, [200, 200, 50]],
  ])("%i items in batches of %i", (n, size, sizes) => {
    expect(
      batches(
        Array.from({ length: n }, (_, i) => i),
        size,
      ).map((b) => b.length),
    ).toEqual(sizes);
  });
});
