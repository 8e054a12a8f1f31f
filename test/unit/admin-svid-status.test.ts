import { HttpRequest, InvocationContext } from "@azure/functions";
import { describe, expect, it } from "vitest";
import { bundleStatusHttpHandler } from "../../functions/bundle.js";
import { adminSvidStatus, checkAdminClient } from "../../shared/trust/admin-status.js";
import type { AdminSecretRead } from "../../shared/trust/admin-vault.js";

const ID = "spiffe://td.test/spire-autopilot/admin";
const spire = (tcp: boolean) =>
  ({
    spire: {
      api: "grpc",
      trustDomain: "td.test",
      admin: { spiffeId: ID, svidTtlSeconds: 3600 },
      grpc: tcp
        ? { transport: "tcp", host: "10.0.0.4", port: 8081, adminSvidSecretName: "spire-admin-svid" }
        : { transport: "unix", socketPath: "/tmp/api.sock" },
    },
  }) as never;
const read = (minted: string | undefined): AdminSecretRead => ({
  state: {
    kind: "present",
    version: "a1",
    spiffeId: ID,
    notBefore: new Date("2026-12-01T12:00:00Z"),
    notAfter: new Date("2026-12-01T13:00:00Z"),
  },
  facts: {
    version: "a1",
    spiffeId: ID,
    notBefore: "2026-12-01T12:00:00.000Z",
    expiresAt: "2026-12-01T13:00:00.000Z",
    serial: "01",
    sha256: "ab",
    ...(minted ? { minted, writtenBy: "rotate-bundle@x" } : {}),
  },
});
const at = (t: string) => new Date(`2026-12-01T${t}Z`);

describe("adminSvidStatus", () => {
  it.each<[string, boolean, AdminSecretRead | undefined, Date, unknown]>([
    [
      "not TCP mode: null with why",
      false,
      undefined,
      at("12:10:00"),
      { adminSvid: null, reason: expect.stringMatching(/TCP/) },
    ],
    [
      "TCP, secret missing: the next run bootstraps",
      true,
      { state: { kind: "missing" } },
      at("12:10:00"),
      { adminSvid: { next: "bootstrap", reason: expect.stringMatching(/does not exist/) } },
    ],
    [
      "minted over the API, fresh: keep, renews at half",
      true,
      read("api"),
      at("12:10:00"),
      {
        adminSvid: {
          version: "a1",
          spiffeId: ID,
          expiresAt: "2026-12-01T13:00:00.000Z",
          renewAt: "2026-12-01T12:30:00.000Z",
          lastAction: "rotate",
          writtenBy: "rotate-bundle@x",
          next: "keep",
        },
      },
    ],
    [
      "bootstrapped, past half: rotate next",
      true,
      read("run-command+api"),
      at("12:31:00"),
      { adminSvid: { lastAction: "bootstrap", next: "rotate" } },
    ],
    [
      "written by hand: unknown how",
      true,
      read(undefined),
      at("12:10:00"),
      { adminSvid: { lastAction: "unknown" } },
    ],
  ])("%s", (_n, tcp, r, now, expected) => {
    expect(adminSvidStatus(spire(tcp), r, now)).toMatchObject(expected as object);
  });
});

describe("checkAdminClient", () => {
  it("makes one admin-only call and says whether it worked, with the error's first line", async () => {
    const calls: unknown[] = [];
    const ok = await checkAdminClient(
      async () => ({
        listEntries: async (f) => {
          calls.push(f);
          return [];
        },
      }),
      ID,
    );
    expect(ok).toEqual({ ok: true });
    expect(calls).toEqual([{ bySpiffeId: ID }]);
    const refused = await checkAdminClient(async () => {
      throw new Error("Entry.ListEntries: PERMISSION_DENIED: caller is not an admin\nstack");
    }, ID);
    expect(refused).toEqual({
      ok: false,
      error: "Entry.ListEntries: PERMISSION_DENIED: caller is not an admin",
    });
  });
});

describe("GET /api/bundle: the admin SVID", () => {
  const get = (readAdminSvid?: () => Promise<ReturnType<typeof adminSvidStatus>>) =>
    bundleStatusHttpHandler({
      secretName: "spire-trust-bundle",
      readServer: async () => ({ fingerprints: [], roots: [], sequence: 1 }) as never,
      readVault: async () => undefined,
      readLastRotation: async () => undefined,
      ...(readAdminSvid ? { readAdminSvid } : {}),
    })(new HttpRequest({ method: "GET", url: "http://localhost/api/bundle" }), new InvocationContext());

  it("shows it, null with a note outside TCP mode, or the error when it cannot be read", async () => {
    expect(
      (await get(async () => adminSvidStatus(spire(true), read("api"), at("12:10:00")))).jsonBody,
    ).toMatchObject({
      adminSvid: { version: "a1", next: "keep", lastAction: "rotate" },
    });
    const none = (await get(async () => adminSvidStatus(spire(false), undefined, at("12:10:00")))).jsonBody;
    expect(none).toMatchObject({ adminSvid: null, adminSvidNote: expect.stringMatching(/TCP/) });
    expect((await get(async () => Promise.reject(new Error("403 from Key Vault")))).jsonBody).toMatchObject({
      adminSvid: { error: "403 from Key Vault" },
      secretName: "spire-trust-bundle",
    });
    expect((await get()).jsonBody).toMatchObject({ adminSvid: null });
  });
});
