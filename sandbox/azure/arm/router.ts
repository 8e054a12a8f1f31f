/**
 * The ARM front door: route matching on resource-ID paths (case-insensitive like ARM), api-version
 * and body validation, and JSON responses with ARM's headers and error shape.
 */
import { randomUUID } from "node:crypto";
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { type ArmError, armErrors } from "./errors.js";

export type HttpMethod = "GET" | "PUT" | "PATCH" | "DELETE" | "POST";

export interface ArmRequest {
  method: HttpMethod;
  url: URL;
  /** Decoded path without query. */
  path: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON body, or undefined when there was none. */
  body: unknown;
  /** Named segments of the matched route template, decoded. */
  params: Record<string, string>;
  requestId: string;
  /** ARM query parameters are case-insensitive. */
  query(name: string): string | undefined;
}

export interface ArmResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface RouteDef {
  method: HttpMethod;
  /** Resource-ID template, `{name}` for segments: /subscriptions/{sub}/resourceGroups/{rg}/... */
  template: string;
  /** The ARM authorization action, e.g. Microsoft.App/containerApps/write: counters and 403 faults key on it. */
  action: string;
  /** For api-version errors, e.g. "containerApps". */
  resourceType: string;
  apiVersions: readonly string[];
  /** PUT and PATCH need a JSON object body; POST actions may carry one. */
  body: "required" | "optional" | "none";
  handler(req: ArmRequest): Promise<ArmResponse> | ArmResponse;
}

interface CompiledRoute extends RouteDef {
  pattern: RegExp;
  names: string[];
}

export const MAX_BODY_BYTES = 4 * 1024 * 1024;

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export function compileTemplate(template: string): { pattern: RegExp; names: string[] } {
  const names: string[] = [];
  const parts = template
    .split("/")
    .filter((s) => s !== "")
    .map((seg) => {
      const m = /^\{(\w+)\}$/.exec(seg);
      if (m) {
        names.push(m[1] as string);
        return "([^/]+)";
      }
      return escapeRegex(seg);
    });
  return { pattern: new RegExp(`^/${parts.join("/")}/?$`, "i"), names };
}

export class ArmRouter {
  private readonly routes: CompiledRoute[] = [];

  add(route: RouteDef): void {
    this.routes.push({ ...route, ...compileTemplate(route.template) });
  }

  /** The route for a method and path, or why there is none. */
  match(
    method: string,
    path: string,
  ): { route: CompiledRoute; params: Record<string, string> } | { error: ArmError } {
    let pathMatched = false;
    for (const route of this.routes) {
      const m = route.pattern.exec(path);
      if (!m) continue;
      pathMatched = true;
      if (route.method !== method) continue;
      const params: Record<string, string> = {};
      route.names.forEach((name, i) => {
        params[name] = m[i + 1] as string;
      });
      return { route, params };
    }
    return {
      error: pathMatched ? armErrors.methodNotAllowed(method, path) : armErrors.invalidResourceType(path),
    };
  }
}

export function queryParam(url: URL, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [k, v] of url.searchParams) if (k.toLowerCase() === wanted) return v;
  return undefined;
}

export async function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) throw armErrors.requestTooLarge(limit);
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

/** Parses a request body as ARM does: JSON only, a top-level object where one is required. */
export function parseJsonBody(raw: Buffer, contentType: string | undefined, need: RouteDef["body"]): unknown {
  if (raw.length === 0) {
    if (need === "required")
      throw armErrors.invalidRequestContent("The request body is empty; a JSON object is required");
    return undefined;
  }
  if (need === "none") return undefined;
  const type = (contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  if (type !== "" && type !== "application/json" && !type.endsWith("+json"))
    throw armErrors.unsupportedMediaType(type);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString("utf8"));
  } catch (err) {
    throw armErrors.invalidRequestContent((err as Error).message);
  }
  if (need === "required" && (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))) {
    throw armErrors.invalidRequestContent("The request body must be a JSON object");
  }
  return parsed;
}

export function newRequestId(): string {
  return randomUUID();
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = body === undefined ? "" : JSON.stringify(body);
  res.statusCode = status;
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  if (body !== undefined) res.setHeader("content-type", "application/json; charset=utf-8");
  res.setHeader("content-length", Buffer.byteLength(text));
  res.end(text);
}

export function sendArmError(res: ServerResponse, err: ArmError, requestId: string): void {
  sendJson(res, err.status, err.toBody(), {
    "x-ms-request-id": requestId,
    "x-ms-correlation-request-id": requestId,
    "x-ms-failure-cause": err.status >= 500 ? "service" : "gateway",
    ...err.extra.headers,
  });
}
