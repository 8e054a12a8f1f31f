/** An ARM error response: `{error: {code, message}}` with an HTTP status. */
export class ArmError extends Error {
  override name = "ArmError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: {
      target?: string;
      details?: { code: string; message: string }[];
      headers?: Record<string, string>;
    } = {},
  ) {
    super(message);
  }

  toBody(): { error: { code: string; message: string; target?: string; details?: unknown[] } } {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.extra.target !== undefined && { target: this.extra.target }),
        ...(this.extra.details !== undefined && { details: this.extra.details }),
      },
    };
  }
}

export const armErrors = {
  missingApiVersion: () =>
    new ArmError(
      400,
      "MissingApiVersionParameter",
      "The api-version query parameter (?api-version=) is required for all requests.",
    ),
  unsupportedApiVersion: (version: string, type: string, supported: readonly string[]) =>
    new ArmError(
      400,
      "NoRegisteredProviderFound",
      `No registered resource provider found for location 'eastus' and API version '${version}' for type '${type}'. The supported api-versions are '${supported.join(", ")}'. The supported locations are 'eastus, westeurope'.`,
    ),
  invalidRequestContent: (detail: string) =>
    new ArmError(
      400,
      "InvalidRequestContent",
      `The request content was invalid and could not be deserialized: '${detail}'.`,
    ),
  unsupportedMediaType: (contentType: string) =>
    new ArmError(
      415,
      "UnsupportedMediaType",
      `The content media type '${contentType}' is not supported. Only 'application/json' is supported.`,
    ),
  missingAuthorization: () =>
    new ArmError(
      401,
      "AuthenticationFailed",
      "Authentication failed. The 'Authorization' header is missing.",
      {
        headers: {
          "www-authenticate":
            'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token"',
        },
      },
    ),
  invalidToken: () =>
    new ArmError(401, "InvalidAuthenticationToken", "The access token is invalid.", {
      headers: {
        "www-authenticate":
          'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token"',
      },
    }),
  invalidSubscriptionId: (sub: string) =>
    new ArmError(
      400,
      "InvalidSubscriptionId",
      `The provided subscription identifier '${sub}' is malformed or invalid.`,
    ),
  subscriptionNotFound: (sub: string) =>
    new ArmError(404, "SubscriptionNotFound", `The subscription '${sub}' could not be found.`),
  invalidResourceGroupName: (rg: string) =>
    new ArmError(
      400,
      "InvalidResourceGroupName",
      `Resource group name '${rg}' is invalid. It must be 1-90 characters of letters, digits, '_', '-', '.', '(' or ')', and must not end with '.'.`,
    ),
  resourceNotFound: (type: string, name: string, rg: string) =>
    new ArmError(
      404,
      "ResourceNotFound",
      `The Resource '${type}/${name}' under resource group '${rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`,
    ),
  invalidResourceType: (path: string) =>
    new ArmError(
      404,
      "InvalidResourceType",
      `The resource type could not be found for the request path '${path}'.`,
    ),
  methodNotAllowed: (method: string, path: string) =>
    new ArmError(405, "MethodNotAllowed", `The HTTP method '${method}' is not supported at '${path}'.`),
  requestTooLarge: (limit: number) =>
    new ArmError(413, "RequestEntityTooLarge", `The request content exceeds the maximum of ${limit} bytes.`),
  authorizationFailed: (action: string, scope: string) =>
    new ArmError(
      403,
      "AuthorizationFailed",
      `The client '00000000-0000-0000-0000-00000000a11e' with object id '00000000-0000-0000-0000-00000000a11e' does not have authorization to perform action '${action}' over scope '${scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
    ),
};
