/**
 * Long-running operations the way ARM reports them: an `Azure-AsyncOperation` URL (absolute,
 * https) answering `{status: InProgress|Succeeded|Failed|Canceled, error?}` with Retry-After, and
 * optionally a `Location` monitor URL that answers 202 until done and then the result.
 */
import { randomUUID } from "node:crypto";
import { ArmError } from "./errors.js";
import type { ArmResponse, RouteDef } from "./router.js";

export type OperationStatus = "InProgress" | "Succeeded" | "Failed" | "Canceled";
export type OperationProvider = "Microsoft.App" | "Microsoft.Compute";

export interface AsyncOperation {
  id: string;
  provider: OperationProvider;
  subscriptionId: string;
  location: string;
  /** What started it, for debugging: "PUT containerApps/app1". */
  what: string;
  status: OperationStatus;
  startTime: Date;
  endTime?: Date;
  error?: { code: string; message: string };
  /** What the Location monitor URL answers once the operation succeeded. */
  result?: { status: number; body?: unknown };
}

const STATUS_SEGMENT: Record<OperationProvider, { status: string; result: string }> = {
  "Microsoft.App": { status: "containerappOperationStatuses", result: "containerappOperationResults" },
  "Microsoft.Compute": { status: "operations", result: "operations" },
};

export function normalizeLocation(location: string): string {
  return location.replace(/\s+/g, "").toLowerCase();
}

export class AsyncOperations {
  private readonly ops = new Map<string, AsyncOperation>();
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(
    private readonly baseUrl: () => string,
    private readonly retryAfterSeconds: () => number,
    private readonly apiVersions: Record<OperationProvider, readonly string[]>,
    private readonly pollHoldMs: () => number = () => 0,
  ) {}

  start(provider: OperationProvider, subscriptionId: string, location: string, what: string): AsyncOperation {
    const op: AsyncOperation = {
      id: randomUUID(),
      provider,
      subscriptionId,
      location: normalizeLocation(location),
      what,
      status: "InProgress",
      startTime: new Date(),
    };
    this.ops.set(op.id.toLowerCase(), op);
    return op;
  }

  succeed(op: AsyncOperation, result?: { status: number; body?: unknown }): void {
    this.finish(op, "Succeeded", undefined, result);
  }

  fail(op: AsyncOperation, code: string, message: string): void {
    this.finish(op, "Failed", { code, message });
  }

  cancel(op: AsyncOperation, message = "The operation was canceled."): void {
    this.finish(op, "Canceled", { code: "OperationCanceled", message });
  }

  private finish(
    op: AsyncOperation,
    status: OperationStatus,
    error?: { code: string; message: string },
    result?: { status: number; body?: unknown },
  ): void {
    if (op.status !== "InProgress") return;
    op.status = status;
    op.endTime = new Date();
    if (error) op.error = error;
    if (result) op.result = result;
    for (const wake of this.waiters.get(op.id) ?? []) wake();
    this.waiters.delete(op.id);
  }

  /** Resolves when the operation leaves InProgress (in-process callers; HTTP clients poll). */
  done(op: AsyncOperation): Promise<AsyncOperation> {
    if (op.status !== "InProgress") return Promise.resolve(op);
    return new Promise((resolve) => {
      const set = this.waiters.get(op.id) ?? new Set();
      set.add(() => resolve(op));
      this.waiters.set(op.id, set);
    });
  }

  private path(op: AsyncOperation, kind: "status" | "result"): string {
    const seg = STATUS_SEGMENT[op.provider][kind];
    return `/subscriptions/${op.subscriptionId}/providers/${op.provider}/locations/${op.location}/${seg}/${op.id}`;
  }

  statusUrl(op: AsyncOperation): string {
    return `${this.baseUrl()}${this.path(op, "status")}?api-version=${this.apiVersions[op.provider][0]}`;
  }

  monitorUrl(op: AsyncOperation): string {
    const extra = op.provider === "Microsoft.Compute" ? "monitor=true&" : "";
    return `${this.baseUrl()}${this.path(op, "result")}?${extra}api-version=${this.apiVersions[op.provider][0]}`;
  }

  /** Headers of the 201/202 that starts the operation. */
  headers(op: AsyncOperation, opts: { location?: "monitor" | string } = {}): Record<string, string> {
    const headers: Record<string, string> = {
      "azure-asyncoperation": this.statusUrl(op),
      "retry-after": String(this.retryAfterSeconds()),
    };
    if (opts.location === "monitor") headers.location = this.monitorUrl(op);
    else if (opts.location !== undefined) headers.location = opts.location;
    return headers;
  }

  clear(): void {
    for (const op of this.ops.values())
      if (op.status === "InProgress") this.cancel(op, "The simulator was reset.");
    this.ops.clear();
  }

  get inProgress(): number {
    let n = 0;
    for (const op of this.ops.values()) if (op.status === "InProgress") n++;
    return n;
  }

  private find(provider: OperationProvider, subscriptionId: string, id: string): AsyncOperation {
    const op = this.ops.get(id.toLowerCase());
    if (!op || op.provider !== provider || op.subscriptionId.toLowerCase() !== subscriptionId.toLowerCase()) {
      throw new ArmError(404, "OperationNotFound", `The operation '${id}' could not be found.`);
    }
    return op;
  }

  private statusBody(op: AsyncOperation): Record<string, unknown> {
    return {
      id: this.path(op, "status"),
      name: op.id,
      status: op.status,
      startTime: op.startTime.toISOString(),
      ...(op.endTime && { endTime: op.endTime.toISOString() }),
      ...(op.error && { error: op.error }),
    };
  }

  /** Waits up to the poll hold for an operation in progress to finish. */
  private async hold(op: AsyncOperation): Promise<AsyncOperation> {
    const ms = this.pollHoldMs();
    if (op.status !== "InProgress" || ms <= 0) return op;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<AsyncOperation>((resolve) => {
      timer = setTimeout(() => resolve(op), ms);
    });
    try {
      return await Promise.race([this.done(op), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private statusResponse(op: AsyncOperation): ArmResponse {
    const headers: Record<string, string> =
      op.status === "InProgress" ? { "retry-after": String(this.retryAfterSeconds()) } : {};
    return { status: 200, body: this.statusBody(op), headers };
  }

  private monitorResponse(op: AsyncOperation): ArmResponse {
    if (op.status === "InProgress") {
      return {
        status: 202,
        headers: { location: this.monitorUrl(op), "retry-after": String(this.retryAfterSeconds()) },
      };
    }
    if (op.status === "Succeeded") return op.result ?? { status: 200 };
    const error = op.error ?? { code: "OperationFailed", message: "The operation failed." };
    return { status: 400, body: { error } };
  }

  routes(): RouteDef[] {
    const app = this.apiVersions["Microsoft.App"];
    const compute = this.apiVersions["Microsoft.Compute"];
    return [
      {
        method: "GET",
        template:
          "/subscriptions/{sub}/providers/Microsoft.App/locations/{location}/containerappOperationStatuses/{id}",
        action: "Microsoft.App/locations/containerappOperationStatuses/read",
        resourceType: "locations/containerappOperationStatuses",
        apiVersions: app,
        body: "none",
        handler: async (req) =>
          this.statusResponse(
            await this.hold(this.find("Microsoft.App", req.params.sub ?? "", req.params.id ?? "")),
          ),
      },
      {
        method: "GET",
        template:
          "/subscriptions/{sub}/providers/Microsoft.App/locations/{location}/containerappOperationResults/{id}",
        action: "Microsoft.App/locations/containerappOperationResults/read",
        resourceType: "locations/containerappOperationResults",
        apiVersions: app,
        body: "none",
        handler: async (req) =>
          this.monitorResponse(
            await this.hold(this.find("Microsoft.App", req.params.sub ?? "", req.params.id ?? "")),
          ),
      },
      {
        method: "GET",
        template: "/subscriptions/{sub}/providers/Microsoft.Compute/locations/{location}/operations/{id}",
        action: "Microsoft.Compute/locations/operations/read",
        resourceType: "locations/operations",
        apiVersions: compute,
        body: "none",
        handler: async (req) => {
          const op = await this.hold(
            this.find("Microsoft.Compute", req.params.sub ?? "", req.params.id ?? ""),
          );
          return req.query("monitor") === "true" ? this.monitorResponse(op) : this.statusResponse(op);
        },
      },
    ];
  }
}
