import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { describe, expect, it } from "vitest";
import { describeBundle } from "../../shared/spire/bundle.js";
import { bundleExpiresOn, decideRotation, type RotationAction } from "../../shared/trust/decision.js";
import { BUNDLE_PARTITION, eventRowKey, rotationRows, SUMMARY_ROW } from "../../shared/trust/ledger.js";
import { summarizeRoots, summarizeServerBundle } from "../../shared/trust/summary.js";
import {
  bundleTags,
  FINGERPRINTS_PER_TAG,
  KEY_VAULT_MAX_TAG_NAME,
  KEY_VAULT_MAX_TAG_VALUE,
  KEY_VAULT_MAX_TAGS,
  MAX_ROOTS_IN_TAGS,
  parseBundleTags,
} from "../../shared/trust/tags.js";
import {
  BUNDLE_CONTENT_TYPE,
  readVaultBundle,
  summarizePem,
  writeVaultBundle,
} from "../../shared/trust/vault.js";

x509.cryptoProvider.set(webcrypto as never);

const fp = (n: number) => n.toString(16).padStart(64, "0");
const fps = (...ns: number[]) => ns.map(fp).sort();

async function selfSigned(cn: string, notAfter: Date): Promise<x509.X509Certificate> {
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  return x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: `CN=${cn}`,
    notBefore: new Date(notAfter.getTime() - 3_600_000),
    notAfter,
    signingAlgorithm: alg,
    keys,
  });
}

describe("bundle summaries", () => {
  it("sorts, de-duplicates and finds the earliest and latest expiry", () => {
    const s = summarizeRoots([
      { sha256: fp(3), notAfter: new Date("2026-12-03T00:00:00Z") },
      { sha256: fp(1), notAfter: new Date("2026-12-01T00:00:00Z") },
      { sha256: fp(3), notAfter: new Date("2026-12-03T00:00:00Z") },
    ]);
    expect(s).toEqual({
      fingerprints: fps(1, 3),
      earliestExpiry: "2026-12-01T00:00:00.000Z",
      latestExpiry: "2026-12-03T00:00:00.000Z",
    });
    expect(summarizeRoots([])).toEqual({ fingerprints: [] });
  });

  it("summarizes a server bundle and a PEM text to the same roots", async () => {
    const a = await selfSigned("a", new Date("2027-01-01T00:00:00Z"));
    const b = await selfSigned("b", new Date("2027-02-01T00:00:00Z"));
    const bundle = describeBundle({
      trustDomain: "td",
      roots: [a, b].map((c) => ({ der: new Uint8Array(c.rawData), tainted: false })),
      sequenceNumber: 7,
      refreshHintSeconds: 0,
    });
    const server = summarizeServerBundle(bundle);
    expect(server.sequence).toBe(7);
    expect(server.roots).toHaveLength(2);
    expect(server.latestExpiry).toBe("2027-02-01T00:00:00.000Z");
    expect(server.earliestExpiry).toBe("2027-01-01T00:00:00.000Z");
    const fromPem = summarizePem(
      `${bundle.pem}\n-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n`,
    );
    expect(fromPem.fingerprints).toEqual(server.fingerprints);
    expect(fromPem.latestExpiry).toBe(server.latestExpiry);
  });
});

describe("the Key Vault tag layout", () => {
  const summary = (n: number) => ({
    fingerprints: Array.from({ length: n }, (_, i) => fp(i + 1)).sort(),
    sequence: 42,
    earliestExpiry: "2026-12-01T00:00:00.000Z",
    latestExpiry: "2026-12-02T00:00:00.000Z",
  });

  it.each([0, 1, 2, 3, 4, 7, MAX_ROOTS_IN_TAGS])("round-trips %i roots within Key Vault's limits", (n) => {
    const tags = bundleTags(summary(n));
    expect(Object.keys(tags).length).toBeLessThanOrEqual(KEY_VAULT_MAX_TAGS);
    for (const [k, v] of Object.entries(tags)) {
      expect(k.length).toBeLessThanOrEqual(KEY_VAULT_MAX_TAG_NAME);
      expect(v.length).toBeLessThanOrEqual(KEY_VAULT_MAX_TAG_VALUE);
    }
    expect(parseBundleTags(tags)).toEqual({ complete: true, summary: summary(n) });
  });

  it("packs 3 fingerprints per tag, so 33 roots fit in 15 tags", () => {
    expect(FINGERPRINTS_PER_TAG).toBe(3);
    expect(MAX_ROOTS_IN_TAGS).toBe(33);
    expect(bundleTags(summary(4))).toMatchObject({
      roots: "4",
      sequence: "42",
      "fingerprints-0": fps(1, 2, 3).join(","),
      "fingerprints-1": fp(4),
    });
  });

  it("keeps only the fixed tags past 33 roots, and says the set must come from the value", () => {
    const tags = bundleTags(summary(MAX_ROOTS_IN_TAGS + 1));
    expect(Object.keys(tags).sort()).toEqual(["earliest-expiry", "latest-expiry", "roots", "sequence"]);
    expect(parseBundleTags(tags)).toMatchObject({ complete: false, reason: /more than the tags hold/ });
  });

  it.each<[string, Record<string, string> | undefined, RegExp]>([
    ["no tags", undefined, /no roots tag/],
    ["someone else's tags", { owner: "team-a" }, /no roots tag/],
    ["a bad count", { roots: "two" }, /roots tag/],
    ["a count the fingerprints do not match", { roots: "2", "fingerprints-0": fp(1) }, /says 2/],
    ["a fingerprint that is not hex", { roots: "1", "fingerprints-0": "zz" }, /not SHA-256/],
    ["duplicates", { roots: "2", "fingerprints-0": `${fp(1)},${fp(1)}` }, /duplicate/],
  ])("refuses %s", (_what, tags, reason) => {
    expect(parseBundleTags(tags)).toMatchObject({ complete: false, reason });
  });
});

describe("the rotation decision", () => {
  const server = { fingerprints: fps(1, 2) };
  it.each<[string, Parameters<typeof decideRotation>[1], RotationAction | "refused", boolean]>([
    ["no version yet", undefined, "first-write", true],
    ["the same roots, tagged", { fingerprints: fps(1, 2), source: "tags" }, "unchanged", false],
    ["the same roots, untagged", { fingerprints: fps(1, 2), source: "value" }, "retag", true],
    ["a root added (next CA prepared)", { fingerprints: fps(1), source: "tags" }, "changed", true],
    ["a root pruned", { fingerprints: fps(0, 1, 2), source: "tags" }, "changed", true],
    [
      "none of Key Vault's roots on the server",
      { fingerprints: fps(8, 9), source: "tags" },
      "ca-reset",
      true,
    ],
    ["an empty version (foreign value)", { fingerprints: [], source: "value" }, "changed", true],
  ])("%s", (_what, vault, action, write) => {
    expect(decideRotation(server, vault)).toMatchObject({ action, write });
  });

  it("names what was added and removed", () => {
    expect(decideRotation(server, { fingerprints: fps(0, 1), source: "tags" })).toMatchObject({
      added: [fp(2)],
      removed: [fp(0)],
    });
  });

  it("never writes an empty bundle", () => {
    expect(decideRotation({ fingerprints: [] }, undefined)).toMatchObject({
      write: false,
      action: "refused",
    });
  });

  it("does not rewrite an untagged version whose roots cannot fit in tags anyway", () => {
    const many = Array.from({ length: MAX_ROOTS_IN_TAGS + 1 }, (_, i) => fp(i)).sort();
    expect(decideRotation({ fingerprints: many }, { fingerprints: many, source: "value" })).toMatchObject({
      action: "unchanged",
      write: false,
    });
  });

  it("sets expiresOn to the latest root expiry", () => {
    expect(bundleExpiresOn({ latestExpiry: "2027-01-01T00:00:00.000Z" })?.toISOString()).toBe(
      "2027-01-01T00:00:00.000Z",
    );
  });
});

describe("Key Vault reads and writes", () => {
  it("reads none for a 404, tags when they describe the version, else the value", async () => {
    const missing = {
      getSecret: async () => Promise.reject(Object.assign(new Error("nf"), { statusCode: 404 })),
    };
    await expect(readVaultBundle(missing as never, "b")).resolves.toBeUndefined();

    const a = await selfSigned("a", new Date("2027-01-01T00:00:00Z"));
    const pem = a.toString("pem");
    const untagged = { getSecret: async () => ({ value: pem, properties: { version: "v1" } }) };
    const fromValue = await readVaultBundle(untagged as never, "b");
    expect(fromValue).toMatchObject({
      version: "v1",
      source: "value",
      fingerprints: [summarizePem(pem).fingerprints[0]],
    });

    const tagged = {
      getSecret: async () => ({
        value: "",
        properties: { version: "v2", tags: bundleTags({ fingerprints: fps(5) }) },
      }),
    };
    await expect(readVaultBundle(tagged as never, "b")).resolves.toMatchObject({
      source: "tags",
      fingerprints: fps(5),
    });

    const down = {
      getSecret: async () => Promise.reject(Object.assign(new Error("busy"), { statusCode: 503 })),
    };
    await expect(readVaultBundle(down as never, "b")).rejects.toThrow("busy");
  });

  it("writes PEM with the content type, the tags and expiresOn = the latest root expiry", async () => {
    const calls: unknown[] = [];
    const secrets = {
      setSecret: async (...args: unknown[]) => {
        calls.push(args);
        return { properties: { version: "v9" } };
      },
    };
    const s = { fingerprints: fps(1, 2), sequence: 3, latestExpiry: "2027-01-01T00:00:00.000Z" };
    await expect(writeVaultBundle(secrets as never, "b", "PEM", s)).resolves.toEqual({ version: "v9" });
    expect(calls).toEqual([
      [
        "b",
        "PEM",
        { contentType: BUNDLE_CONTENT_TYPE, tags: bundleTags(s), expiresOn: new Date(s.latestExpiry) },
      ],
    ]);
  });
});

describe("the fleet table rows", () => {
  const base = {
    runId: "rotate-bundle@2026-12-01T20:00:00.000Z",
    trigger: "timer",
    reason: "schedule",
    startedAt: "2026-12-01T20:00:00.000Z",
    finishedAt: "2026-12-01T20:00:02.000Z",
    version: "v2",
    previousVersion: "v1",
    serverFingerprints: fps(3),
    vaultFingerprints: fps(1),
  };

  it("updates only the summary row for a run that wrote nothing", () => {
    const rows = rotationRows({ ...base, action: "unchanged", written: false });
    expect(rows).toHaveLength(1);
    expect(rows[0]![1]).toMatchObject({
      partitionKey: BUNDLE_PARTITION,
      rowKey: SUMMARY_ROW,
      lastRunAction: "unchanged",
    });
    expect(rows[0]![1]).not.toHaveProperty("lastWriteAt");
  });

  it("records a CA reset with both sets of roots, in one transaction with the summary", () => {
    const rows = rotationRows({ ...base, action: "ca-reset", written: true });
    expect(rows.map((r) => r[0])).toEqual(["upsert", "upsert"]);
    expect(rows[0]![1]).toMatchObject({ lastWriteVersion: "v2", lastCaResetAt: base.finishedAt });
    expect(rows[1]![1]).toMatchObject({
      rowKey: eventRowKey("ca-reset", base.finishedAt, base.runId),
      kind: "ca-reset",
      serverFingerprints: JSON.stringify(fps(3)),
      vaultFingerprints: JSON.stringify(fps(1)),
    });
    // A retried record is the same rows.
    expect(rotationRows({ ...base, action: "ca-reset", written: true })).toEqual(rows);
  });
});
