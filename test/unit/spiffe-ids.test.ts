import { describe, expect, it } from "vitest";
import {
  agentAliasId,
  classifySpiffeId,
  formatSpiffeId,
  isSpiffeId,
  joinTokenAgentId,
  normalizeSpiffeId,
  parseAgentAliasId,
  parseAppName,
  parseGuid,
  parseJoinTokenAgentId,
  parseSpiffeId,
  parseTrustDomain,
  parseWorkloadId,
  requireMemberOf,
  SpiffeIdError,
  serverId,
  workloadId,
} from "../../shared/spiffe/index.js";

const TD = "aim.microsoft.com";
const BP = "1a2b3c4d-2222-3333-4444-5555555555ef";
const AID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
const TOKEN = "9a52a0e7-9293-4c86-a2f4-b631a6e0296f";

describe("parseSpiffeId", () => {
  it.each([
    ["spiffe://example.org", { trustDomain: "example.org", path: "" }],
    ["spiffe://example.org/", undefined],
    ["spiffe://example.org/a", { trustDomain: "example.org", path: "/a" }],
    ["spiffe://a-b_c.d/x/Y.z/_-", { trustDomain: "a-b_c.d", path: "/x/Y.z/_-" }],
    [`spiffe://${TD}/agent/app1`, { trustDomain: TD, path: "/agent/app1" }],
  ])("accepts %s", (input, expected) => {
    if (expected === undefined) {
      expect(() => parseSpiffeId(input)).toThrow(SpiffeIdError);
      return;
    }
    expect(parseSpiffeId(input)).toEqual(expected);
    expect(formatSpiffeId(parseSpiffeId(input))).toBe(input);
  });

  it.each([
    ["", "it is empty"],
    ["example.org/a", 'must start with "spiffe://"'],
    ["SPIFFE://example.org/a", 'scheme must be lowercase "spiffe://"'],
    ["https://example.org/a", 'must start with "spiffe://"'],
    ["spiffe:///a", "trust domain is missing"],
    ["spiffe://Example.org/a", "trust domains are lowercase"],
    ["spiffe://example.org:8081/a", "port is not allowed"],
    ["spiffe://user@example.org/a", "userinfo is not allowed"],
    ["spiffe://example.org/a/", "empty segment or a trailing slash"],
    ["spiffe://example.org//a", "empty segment"],
    ["spiffe://example.org/a/../b", 'segment ".." is not allowed'],
    ["spiffe://example.org/./b", 'segment "." is not allowed'],
    ["spiffe://example.org/a b", 'character " " is not allowed'],
    ["spiffe://example.org/a?x=1", "query and fragment are not allowed"],
    ["spiffe://example.org/a#f", "query and fragment are not allowed"],
    ["spiffe://example.org/a$(reboot)", 'character "$" is not allowed'],
    ["spiffe://example.org/a;b", 'character ";" is not allowed'],
    ["spiffe://example.org/%41", 'character "%" is not allowed'],
    [`spiffe://example.org/${"a".repeat(2100)}`, "longer than 2048"],
  ])("rejects %j with a clear reason", (input, reason) => {
    expect(() => parseSpiffeId(input)).toThrow(reason);
    expect(isSpiffeId(input)).toBe(false);
  });

  it("error carries the input and names what was wrong", () => {
    try {
      parseSpiffeId("spiffe://example.org/a b");
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(SpiffeIdError);
      expect((err as SpiffeIdError).input).toBe("spiffe://example.org/a b");
      expect((err as Error).message).toMatch(/^invalid SPIFFE ID "spiffe:\/\/example.org\/a b": /);
    }
  });

  it("normalizes and checks membership", () => {
    expect(normalizeSpiffeId("spiffe://example.org/a")).toBe("spiffe://example.org/a");
    expect(requireMemberOf("spiffe://example.org/a", "example.org").path).toBe("/a");
    expect(() => requireMemberOf("spiffe://other.org/a", "example.org")).toThrow(/expected "example.org"/);
  });
});

describe("parseTrustDomain", () => {
  it.each([["example.org"], ["aim.microsoft.com"], ["a_b-c.1"]])("accepts %s", (td) => {
    expect(parseTrustDomain(td)).toBe(td);
  });
  it.each([
    ["", "empty"],
    ["spiffe://example.org", "bare name"],
    ["Example.org", "lowercase"],
    ["exa mple.org", 'character " "'],
    ["a".repeat(256), "longer than 255"],
  ])("rejects %j", (td, reason) => {
    expect(() => parseTrustDomain(td)).toThrow(reason);
  });
});

describe("deployment IDs", () => {
  it("formats and parses the agent alias", () => {
    const id = agentAliasId(TD, "my-app1");
    expect(id).toBe(`spiffe://${TD}/agent/my-app1`);
    expect(parseAgentAliasId(id)).toEqual({ trustDomain: TD, app: "my-app1" });
  });

  it.each([["a"], ["1app"], ["App"], ["app-"], ["my--app"], ["a".repeat(33)], ["app_1"], ["app.1"]])(
    "rejects the app name %j",
    (app) => {
      expect(() => agentAliasId(TD, app)).toThrow(/invalid Container App name/);
      expect(() => parseAppName(app)).toThrow(SpiffeIdError);
    },
  );

  it("formats and parses the workload ID, lowercasing object IDs", () => {
    const id = workloadId(TD, BP.toUpperCase(), AID);
    expect(id).toBe(`spiffe://${TD}/ests/bp/${BP}/aid/${AID}`);
    expect(parseWorkloadId(id)).toEqual({ trustDomain: TD, blueprintOid: BP, agentOid: AID });
  });

  it.each([
    [`spiffe://${TD}/ests/bp/${BP}/aid/not-a-guid`, "agent object ID"],
    [`spiffe://${TD}/ests/bp/${BP}`, "expected spiffe://<trust-domain>/ests/bp/"],
    [`spiffe://${TD}/ests/bp/${BP.toUpperCase()}/aid/${AID}`, "lowercase"],
  ])("rejects the workload ID %s", (id, reason) => {
    expect(() => parseWorkloadId(id)).toThrow(reason);
  });

  it("rejects bad GUIDs for workload IDs", () => {
    expect(() => workloadId(TD, "1234", AID)).toThrow(/invalid blueprint object ID "1234"/);
    expect(parseGuid(BP.toUpperCase())).toBe(BP);
  });

  it("formats and parses the join-token agent ID without echoing a bad token", () => {
    const id = joinTokenAgentId(TD, TOKEN);
    expect(id).toBe(`spiffe://${TD}/spire/agent/join_token/${TOKEN}`);
    expect(parseJoinTokenAgentId(id)).toEqual({ trustDomain: TD, token: TOKEN });
    expect(() => joinTokenAgentId(TD, "not a token")).toThrow(/invalid join token "<redacted>"/);
    try {
      joinTokenAgentId(TD, "secret-ish value");
    } catch (err) {
      expect((err as Error).message).not.toContain("secret-ish");
    }
    expect(() => parseJoinTokenAgentId(`spiffe://${TD}/spire/agent/x509pop/abc`)).toThrow(
      /join-token agent ID/,
    );
  });

  it("serverId", () => {
    expect(serverId(TD)).toBe(`spiffe://${TD}/spire/server`);
  });

  it.each([
    [`spiffe://${TD}/spire/server`, { kind: "server", trustDomain: TD }],
    [
      `spiffe://${TD}/spire/agent/join_token/${TOKEN}`,
      { kind: "joinTokenAgent", trustDomain: TD, token: TOKEN },
    ],
    [`spiffe://${TD}/agent/app1`, { kind: "agentAlias", trustDomain: TD, app: "app1" }],
    [
      `spiffe://${TD}/ests/bp/${BP}/aid/${AID}`,
      { kind: "workload", trustDomain: TD, blueprintOid: BP, agentOid: AID },
    ],
    [`spiffe://${TD}/agent/Bad_Name`, { kind: "other", trustDomain: TD, path: "/agent/Bad_Name" }],
    [`spiffe://${TD}`, { kind: "other", trustDomain: TD, path: "" }],
  ])("classifies %s", (id, expected) => {
    expect(classifySpiffeId(id)).toEqual(expected);
  });

  it("classify throws on invalid IDs", () => {
    expect(() => classifySpiffeId("spiffe://x/a//b")).toThrow(SpiffeIdError);
  });
});
