import type { AccessToken, GetTokenOptions, TokenCredential } from "@azure/core-auth";

/**
 * Every sandbox token starts with this (this credential's, and the product's own SandboxCredential
 * in shared/azure/credential.ts); the simulator accepts only these.
 */
export const SANDBOX_TOKEN_PREFIX = "sandbox-token";

/**
 * The fake credential for AZURE_CREDENTIAL=sandbox: a fixed-shape bearer token with an expiry,
 * never a real secret. The simulator checks the prefix so a request that forgot its credential
 * (or carries a real Azure token by mistake) is refused like ARM refuses a bad token.
 */
export class SandboxTokenCredential implements TokenCredential {
  private issued = 0;

  constructor(private readonly options: { lifetimeMs?: number; subject?: string } = {}) {}

  async getToken(scopes: string | string[], _options?: GetTokenOptions): Promise<AccessToken> {
    const scope = Array.isArray(scopes) ? scopes.join(" ") : scopes;
    if (scope.trim() === "") throw new Error("SandboxTokenCredential: getToken needs a scope");
    this.issued += 1;
    const lifetimeMs = this.options.lifetimeMs ?? 3600_000;
    const now = Date.now();
    const subject = this.options.subject ?? "sandbox";
    return {
      token: `${SANDBOX_TOKEN_PREFIX}.${Buffer.from(`${subject}|${scope}|${this.issued}`).toString("base64url")}`,
      expiresOnTimestamp: now + lifetimeMs,
      refreshAfterTimestamp: now + Math.floor(lifetimeMs / 2),
      tokenType: "Bearer",
    };
  }

  /** How many tokens this credential handed out (clients cache them, so this stays small). */
  get tokensIssued(): number {
    return this.issued;
  }
}
