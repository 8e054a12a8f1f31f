import { describe, expect, it } from "vitest";
import {
  type AdminSecretState,
  type AdminSvidAction,
  decideAdminSvid,
} from "../../shared/trust/admin-svid-decision.js";

const ID = "spiffe://td.test/spire-autopilot/admin";
const NB = new Date("2026-12-01T12:00:00Z");
const NA = new Date("2026-12-01T13:00:00Z"); // one hour: half-life at 12:30
const at = (hhmmss: string) => new Date(`2026-12-01T${hhmmss}Z`);
const present = (over: Partial<Extract<AdminSecretState, { kind: "present" }>> = {}): AdminSecretState => ({
  kind: "present",
  version: "v1",
  spiffeId: ID,
  notBefore: NB,
  notAfter: NA,
  ...over,
});

describe("decideAdminSvid", () => {
  it.each<[string, boolean, AdminSecretState, Date, AdminSvidAction, RegExp]>([
    [
      "not TCP mode, secret missing",
      false,
      { kind: "missing" },
      at("12:10:00"),
      "none",
      /not use the Server API over TCP/,
    ],
    ["not TCP mode, even when expired", false, present(), at("14:00:00"), "none", /no admin SVID needed/],
    ["missing", true, { kind: "missing" }, at("12:10:00"), "bootstrap", /does not exist/],
    [
      "unreadable",
      true,
      { kind: "unreadable", version: "v9", problem: "no private key" },
      at("12:10:00"),
      "bootstrap",
      /v9 is unusable: no private key/,
    ],
    [
      "wrong SPIFFE ID",
      true,
      present({ spiffeId: "spiffe://td.test/other" }),
      at("12:10:00"),
      "bootstrap",
      /not the configured/,
    ],
    ["expired exactly at notAfter", true, present(), NA, "bootstrap", /expired at 2026-12-01T13:00:00/],
    ["expired long ago", true, present(), at("20:00:00"), "bootstrap", /expired/],
    ["not yet valid (clock skew)", true, present(), at("11:59:59"), "bootstrap", /not valid before/],
    ["fresh", true, present(), at("12:00:00"), "keep", /renews at 2026-12-01T12:30:00/],
    ["one second before half", true, present(), at("12:29:59"), "keep", /valid until/],
    ["exactly at half", true, present(), at("12:30:00"), "rotate", /past half its lifetime/],
    ["past half", true, present(), at("12:45:00"), "rotate", /past half its lifetime/],
    ["one second before expiry", true, present(), at("12:59:59"), "rotate", /past half/],
    [
      "Key Vault's expiresOn earlier than notAfter: half of that window",
      true,
      present({ expiresOn: at("12:20:00") }),
      at("12:10:00"),
      "rotate",
      /expiresOn 2026-12-01T12:20:00.000Z is near/,
    ],
    [
      "expiresOn earlier and passed",
      true,
      present({ expiresOn: at("12:20:00") }),
      at("12:20:00"),
      "bootstrap",
      /expired at 2026-12-01T12:20:00/,
    ],
    [
      "expiresOn later than notAfter is ignored",
      true,
      present({ expiresOn: at("18:00:00") }),
      at("12:29:00"),
      "keep",
      /valid until 2026-12-01T13:00:00/,
    ],
  ])("%s", (_name, tcpMode, state, now, action, reason) => {
    const d = decideAdminSvid({ tcpMode, state, now, spiffeId: ID, ttlSeconds: 3600 });
    expect(d.action).toBe(action);
    expect(d.reason).toMatch(reason);
  });

  it("says when a kept SVID renews: its half-life", () => {
    const d = decideAdminSvid({
      tcpMode: true,
      state: present(),
      now: at("12:01:00"),
      spiffeId: ID,
      ttlSeconds: 3600,
    });
    expect(d.renewAt?.toISOString()).toBe("2026-12-01T12:30:00.000Z");
  });
});
