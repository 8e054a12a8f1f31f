import { createHash, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { pemToDerList, rootFingerprints } from "../../shared/spire/bundle.js";
import { SpireInputError } from "../../shared/spire/errors.js";
import { chunk, collectPages, mapLimited } from "../../shared/spire/paging.js";
import {
  parseSelectorString,
  sameSelectors,
  validateEntrySpec,
  validateSelector,
  validateSpiffeIdInput,
} from "../../shared/spire/validate.js";
import {
  agentFromWire,
  BatchDeleteEntryResponse,
  BatchEntryResponse,
  bundleFromWire,
  entryFromWire,
  entryToWire,
  ListAgentsResponse,
  ListEntriesResponse,
  WireBundle,
  WireJoinToken,
} from "../../shared/spire/wire.js";

/** Real `spire-server ... -output json` outputs from SPIRE 1.15.3 (captured by a throwaway run). */
const cli = JSON.parse(
  readFileSync(new URL("./spire-fixtures/cli-outputs.json", import.meta.url), "utf8"),
) as Record<string, { exitCode: number; stdout: string; stderr: string }>;
const json = (name: string): unknown => JSON.parse(cli[name]?.stdout ?? "");

describe("wire mapping of real CLI output", () => {
  it("join token", () => {
    const t = WireJoinToken.parse(json("token_generate"));
    expect(t.value).toMatch(/^[0-9a-f-]{36}$/);
    expect(t.expires_at).toBeGreaterThan(1_700_000_000);
  });

  it("agent list", () => {
    const res = ListAgentsResponse.parse(json("agent_list"));
    const [agent] = res.agents.map(agentFromWire);
    expect(agent?.id).toMatch(/^spiffe:\/\/example\.org\/spire\/agent\/join_token\//);
    expect(agent?.attestationType).toBe("join_token");
    expect(agent?.x509SvidExpiresAt).toBeInstanceOf(Date);
    expect(agent?.banned).toBe(false);
    expect(agent?.canReattest).toBe(false);
    expect(agent?.agentVersion).toMatch(/^1\.15\.3/);
    expect(res.next_page_token).toBe("");
  });

  it("alias entry under the join-token agent", () => {
    const [alias] = ListEntriesResponse.parse(json("entry_show_by_parent")).entries.map(entryFromWire);
    expect(alias?.spiffeId).toBe("spiffe://example.org/agent/app1");
    expect(alias?.parentId).toMatch(/\/spire\/agent\/join_token\//);
    expect(alias?.selectors).toEqual([{ type: "spiffe_id", value: alias?.parentId }]);
    expect(alias?.expiresAt).toBeUndefined();
    expect(alias?.createdAt).toBeInstanceOf(Date);
  });

  it("batch create with a per-item failure, and ALREADY_EXISTS as the CLI prints it", () => {
    const first = BatchEntryResponse.parse(json("entry_create")).results;
    expect(first.map((r) => r.status?.code)).toEqual([0, 3]);
    expect(first[0]?.entry && entryFromWire(first[0].entry).x509SvidTtl).toBe(3600);
    const again = BatchEntryResponse.parse(json("entry_create_again")).results;
    expect(again[0]?.status?.code).toBe(6);
    // The CLI replaces the existing entry with the request: no ID.
    expect(again[0]?.entry?.id).toBe("");
  });

  it("batch update and delete", () => {
    expect(BatchEntryResponse.parse(json("entry_update")).results.map((r) => r.status?.code)).toEqual([0, 5]);
    const del = BatchDeleteEntryResponse.parse(json("entry_delete")).results;
    expect(del.map((r) => [r.status?.code, r.status?.message])).toEqual([
      [0, "OK"],
      [5, "entry not found"],
    ]);
  });

  it("bundle: PEM, fingerprints via X509Certificate, NotAfter, sequence", () => {
    const bundle = bundleFromWire(WireBundle.parse(json("bundle_show")));
    expect(bundle.trustDomain).toBe("example.org");
    expect(bundle.sequenceNumber).toBeGreaterThanOrEqual(1);
    expect(bundle.roots).toHaveLength(1);
    const root = bundle.roots[0];
    const der = pemToDerList(bundle.pem)[0] as Buffer;
    expect(root?.sha256Fingerprint).toBe(createHash("sha256").update(der).digest("hex"));
    expect(root?.notAfter.getTime()).toBe(new Date(new X509Certificate(der).validTo).getTime());
    expect(root?.subject).toContain("O=SPIFFE");
    expect(rootFingerprints(bundle)).toEqual([root?.sha256Fingerprint]);
    expect(bundle.pem).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n$/);
  });

  it("accepts proto-loader shapes too (Buffers, nulls for unset messages)", () => {
    const bundle = WireBundle.parse({
      trust_domain: "example.org",
      x509_authorities: [
        { asn1: pemToDerList(bundleFromWire(WireBundle.parse(json("bundle_show"))).pem)[0], tainted: false },
      ],
      refresh_hint: "0",
      sequence_number: "3",
    });
    expect(bundle.sequence_number).toBe(3);
    const entry = entryFromWire(
      ListEntriesResponse.parse({ entries: [{ id: "x", spiffe_id: null, parent_id: null }] }).entries[0]!,
    );
    expect(entry.spiffeId).toBe("");
    expect(entry.selectors).toEqual([]);
  });

  it("entryToWire splits SPIFFE IDs into trust domain and path", () => {
    const w = entryToWire({
      spiffeId: "spiffe://example.org/w",
      parentId: "spiffe://example.org/agent/a",
      selectors: [{ type: "unix", value: "uid:0" }],
    });
    expect(w.spiffe_id).toEqual({ trust_domain: "example.org", path: "/w" });
    expect(w.parent_id).toEqual({ trust_domain: "example.org", path: "/agent/a" });
    expect(w.x509_svid_ttl).toBe(0);
  });
});

describe("validation", () => {
  it.each([
    [{ type: "unix", value: "uid:0" }],
    [
      {
        type: "spiffe_id",
        value: "spiffe://example.org/spire/agent/join_token/9a52a0e7-9293-4c86-a2f4-b631a6e0296f",
      },
    ],
    [{ type: "docker", value: "label:com.example.app:web" }],
    [{ type: "k8s", value: "ns:default" }],
  ])("accepts selector %j", (s) => {
    expect(validateSelector(s, "s")).toEqual(s);
  });

  it.each([
    [{ type: "unix", value: "uid:0; reboot" }],
    [{ type: "unix", value: "uid:$(id)" }],
    [{ type: "unix", value: "uid:`id`" }],
    [{ type: "unix", value: "-socketPath" }],
    [{ type: "unix", value: "a|b" }],
    [{ type: "unix", value: "a\nb" }],
    [{ type: "unix", value: "'x'" }],
    [{ type: "unix", value: '"x"' }],
    [{ type: "unix", value: "" }],
    [{ type: "Unix", value: "uid:0" }],
    [{ type: "un ix", value: "uid:0" }],
    [{ type: "unix" }],
  ])("refuses selector %j", (s) => {
    expect(() => validateSelector(s, "s")).toThrow(SpireInputError);
  });

  it("parses selector strings like the CLI", () => {
    expect(parseSelectorString("unix:uid:0")).toEqual({ type: "unix", value: "uid:0" });
    expect(() => parseSelectorString("uid")).toThrow(/type:value/);
  });

  it("checks trust domain membership and spec fields", () => {
    expect(() => validateSpiffeIdInput("spiffe://other.org/a", "id", "example.org")).toThrow(
      /trust domain "other.org"/,
    );
    const ok = validateEntrySpec(
      {
        spiffeId: "spiffe://example.org/w",
        parentId: "spiffe://example.org/p",
        selectors: [{ type: "unix", value: "uid:0" }],
      },
      "spec",
      "example.org",
    );
    expect(ok.x509SvidTtl).toBeUndefined();
    expect(() =>
      validateEntrySpec(
        { spiffeId: "spiffe://example.org/w", parentId: "spiffe://example.org/p", selectors: [] },
        "spec",
      ),
    ).toThrow(/at least one selector/);
    expect(() =>
      validateEntrySpec(
        {
          spiffeId: "spiffe://example.org/w",
          parentId: "spiffe://example.org/p",
          selectors: [{ type: "unix", value: "uid:0" }],
          x509SvidTtl: -1,
        },
        "spec",
      ),
    ).toThrow(/outside 0/);
    expect(() =>
      validateEntrySpec(
        {
          spiffeId: "spiffe://example.org/w",
          parentId: "spiffe://example.org/p",
          selectors: [{ type: "unix", value: "uid:0" }],
          dnsNames: ["ok.example", "bad name"],
        },
        "spec",
      ),
    ).toThrow(/dnsNames\[1\]/);
  });

  it("compares selectors as sets", () => {
    const a = [
      { type: "unix", value: "uid:0" },
      { type: "unix", value: "gid:0" },
    ];
    expect(sameSelectors(a, [...a].reverse())).toBe(true);
    expect(sameSelectors(a, a.slice(0, 1))).toBe(false);
  });
});

describe("batching and paging", () => {
  it("chunks", () => {
    expect(chunk([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(chunk([], 3)).toEqual([]);
    expect(() => chunk([1], 0)).toThrow(RangeError);
  });

  it("follows page tokens to the end", async () => {
    const pages: Record<string, { items: number[]; nextPageToken: string }> = {
      "": { items: [1, 2], nextPageToken: "p2" },
      p2: { items: [3], nextPageToken: "p3" },
      p3: { items: [], nextPageToken: "" },
    };
    const seen: string[] = [];
    const all = await collectPages(async (t) => {
      seen.push(t);
      return pages[t] ?? { items: [], nextPageToken: "" };
    });
    expect(all).toEqual([1, 2, 3]);
    expect(seen).toEqual(["", "p2", "p3"]);
  });

  it("stops on a repeated page token and on too many pages", async () => {
    await expect(collectPages(async () => ({ items: [1], nextPageToken: "same" }))).rejects.toThrow(
      /repeated page token/,
    );
    let n = 0;
    await expect(collectPages(async () => ({ items: [], nextPageToken: String(n++) }), 5)).rejects.toThrow(
      /within 5 pages/,
    );
  });

  it("mapLimited keeps order and bounds concurrency", async () => {
    let inFlight = 0;
    let peak = 0;
    const out = await mapLimited([1, 2, 3, 4, 5, 6], 2, async (x) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      return x * 10;
    });
    expect(out).toEqual([10, 20, 30, 40, 50, 60]);
    expect(peak).toBe(2);
  });
});
