import { describe, expect, it } from "vitest";
import type { SecretEventType } from "../../shared/keyVaultEvents.js";
import { ownWriteEcho } from "../../shared/trust/own-write.js";

const CREATED: SecretEventType = "Microsoft.KeyVault.SecretNewVersionCreated";
const NEAR: SecretEventType = "Microsoft.KeyVault.SecretNearExpiry";
const EXPIRED: SecretEventType = "Microsoft.KeyVault.SecretExpired";
const AT = "2026-12-02T05:00:00.000Z";
const plus = (s: number) => new Date(Date.parse(AT) + s * 1000).toISOString();

describe("ownWriteEcho: which bundle events are only the echo of this app's write", () => {
  it.each([
    ["nothing written yet", CREATED, "v1", AT, undefined, false],
    ["another version", CREATED, "v2", AT, { version: "v1", at: AT }, false],
    ["our version created", CREATED, "v1", plus(2), { version: "v1", at: AT }, true],
    ["our version created, time unknown", CREATED, "v1", plus(2), { version: "v1" }, true],
    [
      "our version created, redelivered a day later",
      CREATED,
      "v1",
      plus(86_400),
      { version: "v1", at: AT },
      true,
    ],
    ["our version's at-once near-expiry", NEAR, "v1", plus(1), { version: "v1", at: AT }, true],
    [
      "near-expiry raised just before the run recorded the write",
      NEAR,
      "v1",
      plus(-40),
      { version: "v1", at: AT },
      true,
    ],
    ["our version's near-expiry 5 min + 1 s later", NEAR, "v1", plus(301), { version: "v1", at: AT }, false],
    ["near-expiry 29 days later", NEAR, "v1", plus(29 * 86_400), { version: "v1", at: AT }, false],
    ["near-expiry, write time unknown", NEAR, "v1", plus(1), { version: "v1" }, false],
    ["our version expired", EXPIRED, "v1", plus(1), { version: "v1", at: AT }, false],
  ] as const)("%s → echo %s", (_name, eventType, version, eventTime, own, echo) => {
    const r = ownWriteEcho({ eventType, version, eventTime }, own);
    expect(r !== undefined).toBe(echo);
    if (echo) expect(r).toMatch(/^written by this app/);
  });
});
