import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { describe, expect, it } from "vitest";
import { bundleReadVault, bundleRecord, bundleSync } from "../../activities/bundle.js";
import type { Services } from "../../shared/services.js";
import { describeBundle } from "../../shared/spire/bundle.js";
import type { TrustBundle } from "../../shared/spire/types.js";
import { summarizeServerBundle } from "../../shared/trust/summary.js";
import { bundleTags } from "../../shared/trust/tags.js";

/*
 * The activities against a Key Vault held in memory (versions, tags) and a SpireServer stub that
 * returns a real bundle: the decision, idempotent retries and what leaves the activity.
 */

x509.cryptoProvider.set(webcrypto as never);

async function root(cn: string): Promise<Uint8Array> {
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: `CN=${cn}`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    signingAlgorithm: alg,
    keys,
  });
  return new Uint8Array(cert.rawData);
}

const bundleOf = (roots: Uint8Array[], seq = 1): TrustBundle =>
  describeBundle({
    trustDomain: "td",
    roots: roots.map((der) => ({ der, tainted: false })),
    sequenceNumber: seq,
    refreshHintSeconds: 0,
  });

interface Version {
  version: string;
  value: string;
  tags?: Record<string, string>;
  contentType?: string;
  expiresOn?: Date;
}

function fakeServices(bundle: () => TrustBundle) {
  const versions: Version[] = [];
  let setCalls = 0;
  let failNextSetAfterWrite = false;
  const secrets = {
    async getSecret() {
      const v = versions.at(-1);
      if (!v) throw Object.assign(new Error("SecretNotFound"), { statusCode: 404 });
      return { value: v.value, properties: { version: v.version, tags: v.tags, expiresOn: v.expiresOn } };
    },
    async setSecret(_name: string, value: string, o: Omit<Version, "version" | "value">) {
      setCalls++;
      versions.push({ version: `v${versions.length + 1}`, value, ...o });
      if (failNextSetAfterWrite) {
        failNextSetAfterWrite = false;
        // Written, but the answer is lost: the activity is retried.
        throw Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
      }
      return { properties: { version: versions.at(-1)!.version } };
    },
  };
  const services = {
    config: { keyVault: { trustBundleSecretName: "spire-trust-bundle" } },
    secrets,
    spire: async () => ({ getBundle: async () => bundle() }),
  } as unknown as Services;
  return {
    services,
    versions,
    setCalls: () => setCalls,
    loseNextAnswer: () => {
      failNextSetAfterWrite = true;
    },
  };
}

const sink = { log() {}, warn() {}, error() {}, info() {}, debug() {} } as never;

describe("bundle activities", () => {
  it("writes the first version, then nothing while the roots stay the same", async () => {
    const a = await root("a");
    const f = fakeServices(() => bundleOf([a]));
    const first = await bundleSync({ vault: null }, f.services, sink);
    expect(first).toMatchObject({ ok: true, value: { action: "first-write", written: true, version: "v1" } });
    expect(f.versions[0]).toMatchObject({ contentType: "application/x-pem-file", value: bundleOf([a]).pem });
    expect(f.versions[0]!.tags).toEqual(bundleTags(summarizeServerBundle(bundleOf([a]))));

    const read = await bundleReadVault(undefined, f.services, sink);
    expect(read).toMatchObject({ ok: true, value: { version: "v1", source: "tags" } });
    const vault = (read as { value: { version: string; fingerprints: string[]; source: "tags" } }).value;
    for (let i = 0; i < 3; i++) {
      const again = await bundleSync({ vault }, f.services, sink);
      expect(again).toMatchObject({
        ok: true,
        value: { action: "unchanged", written: false, version: "v1" },
      });
    }
    expect(f.setCalls()).toBe(1);
    // Outputs carry fingerprints, never the PEM.
    expect(JSON.stringify(first)).not.toContain("BEGIN CERTIFICATE");
  });

  it("a retried write whose first answer was lost returns that version instead of writing another", async () => {
    const a = await root("a");
    const b = await root("b");
    let roots = [a];
    const f = fakeServices(() => bundleOf(roots));
    await bundleSync({ vault: null }, f.services, sink);
    const v1 = (await bundleReadVault(undefined, f.services, sink)) as {
      ok: true;
      value: { version: string; fingerprints: string[]; source: "tags" };
    };
    roots = [a, b];
    f.loseNextAnswer();
    await expect(bundleSync({ vault: v1.value }, f.services, sink)).rejects.toThrow(/socket hang up/);
    const retried = await bundleSync({ vault: v1.value }, f.services, sink);
    expect(retried).toMatchObject({
      ok: true,
      value: { action: "changed", version: "v2", alreadyWritten: true },
    });
    expect(f.versions).toHaveLength(2);
  });

  it("reports a CA reset when none of Key Vault's roots is on the server", async () => {
    const old = await root("old");
    const fresh = await root("new");
    let roots = [old];
    const f = fakeServices(() => bundleOf(roots));
    await bundleSync({ vault: null }, f.services, sink);
    const v1 = (await bundleReadVault(undefined, f.services, sink)) as {
      ok: true;
      value: { version: string; fingerprints: string[]; source: "tags" };
    };
    roots = [fresh];
    const reset = await bundleSync({ vault: v1.value }, f.services, sink);
    expect(reset).toMatchObject({ ok: true, value: { action: "ca-reset", written: true, version: "v2" } });
  });

  it("refuses to write a bundle without roots (a permanent failure, not retried)", async () => {
    const f = fakeServices(() => bundleOf([]));
    const out = await bundleSync({ vault: null }, f.services, sink);
    expect(out).toMatchObject({ ok: false, error: { code: "BundleRefused" } });
    expect(f.setCalls()).toBe(0);
  });

  it("refuses bad input before touching anything", async () => {
    const f = fakeServices(() => bundleOf([]));
    const out = await bundleSync(
      { vault: { version: "v1", fingerprints: ["nope"], source: "tags" } },
      f.services,
      sink,
    );
    expect(out).toMatchObject({ ok: false, error: { code: "BadInput" } });
  });
});

describe("bundleRecord", () => {
  it("clips a long reason instead of losing the record", async () => {
    const batches: unknown[] = [];
    const services = {
      fleetTable: async () => ({
        submitTransaction: async (actions: unknown) => {
          batches.push(actions);
        },
      }),
    } as unknown as Services;
    const out = await bundleRecord(
      {
        runId: "rotate-bundle@2026-12-01T20:00:00.000Z",
        trigger: "event",
        reason: "x".repeat(5000),
        startedAt: "2026-12-01T20:00:00.000Z",
        finishedAt: "2026-12-01T20:00:01.000Z",
        action: "unchanged",
        written: false,
        serverFingerprints: [],
        vaultFingerprints: [],
      },
      services,
      sink,
    );
    expect(out).toEqual({ ok: true, value: { recorded: true } });
    const [[, summary]] = batches[0] as [[string, { lastRunReason: string }]];
    expect(summary.lastRunReason).toHaveLength(500);
  });
});
