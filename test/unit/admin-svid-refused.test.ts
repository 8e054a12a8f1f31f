import { describe, expect, it } from "vitest";
import { refusedCredential } from "../../activities/admin-svid.js";
import { SpireApiError } from "../../shared/spire/errors.js";

describe("refusedCredential: when a failed API rotation falls back to the VM", () => {
  it.each<[string, unknown, boolean]>([
    [
      "permission denied (not in admin_ids)",
      new SpireApiError("SVID.MintX509SVID", "PERMISSION_DENIED", "denied"),
      true,
    ],
    ["unauthenticated", new SpireApiError("SVID.MintX509SVID", "UNAUTHENTICATED", "no SVID"), true],
    [
      "a TLS handshake the server rejected (CA reset)",
      new SpireApiError(
        "SVID.MintX509SVID",
        "UNAVAILABLE",
        "No connection established: tls: bad certificate",
      ),
      true,
    ],
    [
      "the server is down: retry the activity",
      new SpireApiError("SVID.MintX509SVID", "UNAVAILABLE", "connect ECONNREFUSED 10.0.0.4:8081"),
      false,
    ],
    [
      "a deadline: retry the activity",
      new SpireApiError("SVID.MintX509SVID", "DEADLINE_EXCEEDED", "deadline exceeded"),
      false,
    ],
    [
      "anything else (a TLS error before any call)",
      new Error("unable to verify the first certificate"),
      true,
    ],
  ])("%s → %s", (_n, err, fallback) => {
    expect(refusedCredential(err)).toBe(fallback);
  });
});
