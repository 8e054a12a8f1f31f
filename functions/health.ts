import type { HttpRequest, HttpResponseInit } from "@azure/functions";
import type { AppConfig } from "../shared/config.js";

/** Liveness plus the non-secret facts an operator checks first: which trust domain, which SPIRE path. */
export function healthHandler(config: AppConfig) {
  const startedAt = new Date().toISOString();
  return async (_request: HttpRequest): Promise<HttpResponseInit> => ({
    status: 200,
    jsonBody: {
      status: "ok",
      app: "spire-autopilot",
      trustDomain: config.spire.trustDomain,
      spireApi: config.spire.api,
      startedAt,
    },
  });
}
