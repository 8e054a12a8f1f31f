import "./core-shim.js";
import { randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { format } from "node:util";
import type {
  HttpRequest as HttpRequestType,
  InvocationContext as InvocationContextType,
} from "@azure/functions";
import { HostClock, setVirtualTimeout } from "./clock.js";
import { type CoreBinding, type CoreHandler, getRegistrations, type Registration } from "./core-shim.js";
import { DurableEngine, EngineError, type OverridableStates } from "./durable/engine.js";
import { InstanceStore, type RuntimeStatus } from "./durable/store.js";
import { EVENT_GRID_WEBHOOK_PATH, type EventGridFunction, serveEventGridWebhook } from "./eventgrid.js";
import { type AuthLevel, authorize, authorizeSystem, type HostKeys, loadOrCreateKeys } from "./keys.js";
import { type CompiledRoute, compileRoute } from "./routes.js";
import { parseSchedule, type Schedule } from "./schedule.js";

/**
 * A local stand-in for the Azure Functions host (Core Tools cannot be installed here). It loads
 * the app's real registrations and serves them the way the host does: HTTP triggers with routes,
 * methods and key auth; timers on NCRONTAB schedules; Event Grid triggers behind the Event Grid
 * extension's webhook; durable orchestrations, activities and the durable client's RPC endpoints.
 * The app's code runs unchanged.
 */
export interface HostOptions {
  /** The app's entry module (what package.json "main" is for the real host). */
  appEntry: string;
  /** 0 picks a free port. */
  port?: number;
  /** Durable state and keys live here; reuse it to resume after a restart. */
  stateDir: string;
  keysFile?: string;
  hostJsonPath?: string;
  /** Virtual milliseconds per real millisecond, for timers and durable timers. */
  timeScale?: number;
  /** Real ms the scaled clock counts from, to share one clock with other sandbox processes. */
  clockOrigin?: number;
  log?: (line: string) => void;
}

interface HttpFunction {
  name: string;
  route: CompiledRoute;
  methods: string[];
  authLevel: AuthLevel;
  handler: CoreHandler;
  extraInputs: CoreBinding[];
}

interface TimerFunction {
  name: string;
  schedule: Schedule;
  runOnStartup: boolean;
  handler: CoreHandler;
  extraInputs: CoreBinding[];
  last?: number;
  running: boolean;
  cancel?: () => void;
}

interface HostJson {
  extensions?: {
    http?: { routePrefix?: string };
    durableTask?: {
      hubName?: string;
      maxConcurrentActivityFunctions?: number;
      overridableExistingInstanceStates?: string;
    };
  };
}

const MAX_BODY_BYTES = 100 * 1024 * 1024;

type FunctionsModule = typeof import("@azure/functions");

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** host.json's value, by the extension's enum names (JSON.NET parses them case-insensitively). */
function overridableStates(value: string | undefined): OverridableStates | undefined {
  if (value === undefined) return undefined;
  const known = (["NonRunningStates", "AnyState"] as const).find(
    (n) => n.toLowerCase() === value.toLowerCase(),
  );
  if (!known) {
    throw new Error(
      `host.json extensions.durableTask.overridableExistingInstanceStates is "${value}"; the extension knows AnyState and NonRunningStates`,
    );
  }
  return known;
}

const queryFlag = (url: URL, name: string): boolean | undefined => {
  // The extension's TryGetBooleanQueryParameterValue: bool.TryParse, so True/true/TRUE, else unset.
  const v = url.searchParams.get(name)?.toLowerCase();
  return v === "true" ? true : v === "false" ? false : undefined;
};

function triggerOf(reg: Registration): CoreBinding {
  const trigger = Object.values(reg.metadata.bindings).find((b) => /trigger$/i.test(b.type));
  if (!trigger) throw new Error(`Function ${reg.metadata.name} has no trigger binding`);
  return trigger;
}

function extraInputsOf(reg: Registration): CoreBinding[] {
  return Object.entries(reg.metadata.bindings)
    .filter(([, b]) => b.direction === "in" && !/trigger$/i.test(b.type))
    .map(([name, b]) => ({ ...b, name }));
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, "Request body too large");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export class FunctionsHost {
  readonly clock: HostClock;
  readonly keys: HostKeys;
  readonly engine: DurableEngine;
  readonly taskHub: string;
  private readonly routePrefix: string;
  private readonly http: HttpFunction[] = [];
  private readonly timerFns: TimerFunction[] = [];
  private readonly eventGridFns = new Map<string, EventGridFunction>();
  private readonly orchestrators = new Map<string, CoreHandler>();
  private readonly activities = new Map<string, CoreHandler>();
  private readonly handlersByName = new Map<string, Registration>();
  private server?: Server;
  private clockSaver?: NodeJS.Timeout;
  private port = 0;
  private readonly log: (line: string) => void;

  private constructor(
    private readonly opts: HostOptions,
    private readonly fx: FunctionsModule,
    registrations: readonly Registration[],
    hostJson: HostJson,
  ) {
    this.log = opts.log ?? ((line) => process.stdout.write(`${line}\n`));
    this.routePrefix = (hostJson.extensions?.http?.routePrefix ?? "api").replace(/^\/+|\/+$/g, "");
    this.taskHub = hostJson.extensions?.durableTask?.hubName ?? "TestHubName";
    this.keys = loadOrCreateKeys(opts.keysFile ?? join(opts.stateDir, "keys.json"));
    this.clock = new HostClock(
      opts.timeScale ?? 1,
      FunctionsHost.readClockFloor(opts.stateDir),
      opts.clockOrigin,
    );
    for (const reg of registrations) this.index(reg);
    this.engine = new DurableEngine({
      store: new InstanceStore(join(opts.stateDir, "instances")),
      clock: this.clock,
      hasOrchestrator: (n) => this.orchestrators.has(n),
      hasActivity: (n) => this.activities.has(n),
      invokeOrchestrator: (n, input) => this.invoke(n, this.orchestrators.get(n)!, input, []),
      invokeActivity: (n, input) => this.invoke(n, this.activities.get(n)!, input, []),
      log: (m) => this.log(`[durable] ${m}`),
      maxConcurrentActivities: hostJson.extensions?.durableTask?.maxConcurrentActivityFunctions ?? 8,
      overridableExistingInstanceStates: overridableStates(
        hostJson.extensions?.durableTask?.overridableExistingInstanceStates,
      ),
    });
  }

  /** Load the app (registering its functions), then serve it. */
  static async start(opts: HostOptions): Promise<FunctionsHost> {
    const fx = await import("@azure/functions");
    const before = getRegistrations().length;
    await import(pathToFileURL(resolve(opts.appEntry)).href);
    const registrations = getRegistrations().slice(before);
    if (registrations.length === 0) throw new Error(`${opts.appEntry} registered no functions`);
    const hostJsonPath = opts.hostJsonPath ?? resolve("host.json");
    const hostJson = JSON.parse(readFileSync(hostJsonPath, "utf8")) as HostJson;
    const host = new FunctionsHost(opts, fx, registrations, hostJson);
    await host.listen(opts.port ?? 7071);
    host.engine.recover();
    host.startTimers();
    host.clockSaver = setInterval(() => host.saveClock(), 1000);
    host.clockSaver.unref();
    return host;
  }

  /** Remember how far the virtual clock got, so a restart never goes back in time. */
  private saveClock(): void {
    mkdirSync(this.opts.stateDir, { recursive: true });
    writeFileSync(join(this.opts.stateDir, "clock"), String(Math.floor(this.clock.now())));
  }

  private static readClockFloor(stateDir: string): number {
    try {
      return Number(readFileSync(join(stateDir, "clock"), "utf8")) || 0;
    } catch {
      return 0;
    }
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get functionNames(): string[] {
    return [...this.handlersByName.keys()];
  }

  describe(): Array<{ name: string; kind: string; detail: string }> {
    return [
      ...this.http.map((f) => ({
        name: f.name,
        kind: "http",
        detail: `${f.methods.join(",")} /${[this.routePrefix, f.route.template].filter(Boolean).join("/")} (${f.authLevel})`,
      })),
      ...this.timerFns.map((f) => ({ name: f.name, kind: "timer", detail: f.schedule.expression })),
      ...[...this.eventGridFns.keys()].map((name) => ({
        name,
        kind: "eventGrid",
        detail: `POST ${EVENT_GRID_WEBHOOK_PATH}?functionName=${name} (eventgrid_extension key)`,
      })),
      ...[...this.orchestrators.keys()].map((name) => ({ name, kind: "orchestration", detail: "" })),
      ...[...this.activities.keys()].map((name) => ({ name, kind: "activity", detail: "" })),
    ];
  }

  async stop(): Promise<void> {
    clearInterval(this.clockSaver);
    this.saveClock();
    for (const t of this.timerFns) t.cancel?.();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server?.closeAllConnections();
    await this.engine.stop();
  }

  // ------------------------------------------------------------------ registration

  private index(reg: Registration): void {
    const name = reg.metadata.name;
    this.handlersByName.set(name, reg);
    const trigger = triggerOf(reg);
    const type = trigger.type.toLowerCase();
    if (type === "httptrigger") {
      const route = typeof trigger.route === "string" && trigger.route !== "" ? trigger.route : name;
      const methods = (Array.isArray(trigger.methods) ? (trigger.methods as string[]) : ["GET", "POST"]).map(
        (m) => m.toUpperCase(),
      );
      const authLevel = String(trigger.authLevel ?? "function").toLowerCase() as AuthLevel;
      if (!["anonymous", "function", "admin"].includes(authLevel)) {
        throw new Error(`Function ${name} has unknown authLevel "${authLevel}"`);
      }
      this.http.push({
        name,
        route: compileRoute(route),
        methods,
        authLevel,
        handler: reg.handler,
        extraInputs: extraInputsOf(reg),
      });
    } else if (type === "timertrigger") {
      if (typeof trigger.schedule !== "string") throw new Error(`Timer function ${name} has no schedule`);
      this.timerFns.push({
        name,
        schedule: parseSchedule(trigger.schedule),
        runOnStartup: trigger.runOnStartup === true,
        handler: reg.handler,
        extraInputs: extraInputsOf(reg),
        running: false,
      });
    } else if (type === "eventgridtrigger") {
      const extraInputs = extraInputsOf(reg);
      this.eventGridFns.set(name, {
        name,
        invoke: (event) => this.invoke(name, reg.handler, event, extraInputs),
      });
    } else if (type === "orchestrationtrigger") {
      this.orchestrators.set(name, reg.handler);
    } else if (type === "activitytrigger") {
      this.activities.set(name, reg.handler);
    } else {
      throw new Error(
        `Function ${name} uses trigger "${trigger.type}", which the local host does not support`,
      );
    }
  }

  // ------------------------------------------------------------------ invocation

  private clientData(): Record<string, unknown> {
    const base = this.url;
    const sys = this.keys.systemKeys.durabletask_extension ?? this.keys.masterKey;
    const qs = `taskHub=${encodeURIComponent(this.taskHub)}&connection=Storage&code=${encodeURIComponent(sys)}`;
    const hooks = `${base}/runtime/webhooks/durabletask`;
    const inst = `${hooks}/instances/INSTANCEID`;
    return {
      taskHubName: this.taskHub,
      creationUrls: {
        createNewInstancePostUri: `${hooks}/orchestrators/{functionName}[/{instanceId}]?code=${encodeURIComponent(sys)}`,
        createAndWaitOnNewInstancePostUri: `${hooks}/orchestrators/{functionName}[/{instanceId}]?timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}&code=${encodeURIComponent(sys)}`,
      },
      managementUrls: {
        id: "INSTANCEID",
        statusQueryGetUri: `${inst}?${qs}`,
        sendEventPostUri: `${inst}/raiseEvent/{eventName}?${qs}`,
        terminatePostUri: `${inst}/terminate?reason={text}&${qs}`,
        rewindPostUri: `${inst}/rewind?reason={text}&${qs}`,
        purgeHistoryDeleteUri: `${inst}?${qs}`,
        restartPostUri: `${inst}/restart?${qs}`,
        suspendPostUri: `${inst}/suspend?reason={text}&${qs}`,
        resumePostUri: `${inst}/resume?reason={text}&${qs}`,
      },
      baseUrl: hooks,
      requiredQueryStringParameters: qs,
      rpcBaseUrl: `${base}/durabletask/`,
    };
  }

  private context(
    functionName: string,
    extraInputs: CoreBinding[],
    trigger?: CoreBinding,
  ): InvocationContextType {
    const invocationId = randomUUID();
    const ctx = new this.fx.InvocationContext({
      functionName,
      invocationId,
      logHandler: (level, ...args) => this.log(`[${functionName}] ${level}: ${format(...args)}`),
      options: {
        trigger: (trigger ?? { type: "unknown", name: "trigger" }) as never,
        extraInputs: extraInputs as never,
        extraOutputs: [],
      },
    });
    for (const input of extraInputs) {
      if (input.type === "durableClient" || input.type === "orchestrationClient") {
        ctx.extraInputs.set(input.name as string, this.clientData());
      }
    }
    return ctx;
  }

  private async invoke(
    name: string,
    handler: CoreHandler,
    input: unknown,
    extraInputs: CoreBinding[],
  ): Promise<unknown> {
    const reg = this.handlersByName.get(name);
    const ctx = this.context(name, extraInputs, reg ? triggerOf(reg) : undefined);
    return await handler(input, ctx);
  }

  // ------------------------------------------------------------------ timers

  private startTimers(): void {
    for (const t of this.timerFns) {
      if (t.runOnStartup) void this.fireTimer(t, false);
      this.armTimer(t);
    }
  }

  /** The next occurrence counts from the previous one, so one slot never fires twice. */
  private armTimer(t: TimerFunction, after = this.clock.now()): void {
    const next = t.schedule.next(after);
    const handle = setVirtualTimeout(this.clock, next, () => {
      void this.fireTimer(t, false);
      this.armTimer(t, Math.max(next, this.clock.now()));
    });
    t.cancel = () => handle.cancel();
  }

  /** Timer functions run one invocation at a time, as the host's singleton lock ensures. */
  async fireTimer(t: TimerFunction, isPastDue: boolean): Promise<boolean> {
    if (t.running) {
      this.log(`[${t.name}] skipped: the previous invocation is still running`);
      return false;
    }
    t.running = true;
    const now = this.clock.now();
    const info = {
      schedule: { adjustForDST: true },
      scheduleStatus: {
        last: new Date(t.last ?? now).toISOString(),
        next: new Date(t.schedule.next(now)).toISOString(),
        lastUpdated: new Date(now).toISOString(),
      },
      isPastDue,
    };
    try {
      await this.invoke(t.name, t.handler, info, t.extraInputs);
    } catch (err) {
      this.log(`[${t.name}] error: ${(err as Error).stack ?? err}`);
    } finally {
      t.last = now;
      t.running = false;
    }
    return true;
  }

  // ------------------------------------------------------------------ HTTP

  private listen(port: number): Promise<void> {
    return new Promise((resolveListen, reject) => {
      const server = createServer((req, res) => {
        this.route(req, res).catch((err) => {
          const status = err instanceof HttpError || err instanceof EngineError ? err.status : 500;
          const body = err instanceof EngineError ? err.body : undefined;
          if (status === 500 && body === undefined) this.log(`[host] error: ${(err as Error).stack ?? err}`);
          if (!res.headersSent) {
            res.writeHead(status, { "content-type": "application/json" });
            res.end(
              JSON.stringify(
                body ?? { error: status === 500 ? "Internal Server Error" : (err as Error).message },
              ),
            );
          } else {
            res.destroy();
          }
        });
      });
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        this.server = server;
        this.port = (server.address() as AddressInfo).port;
        process.env.WEBSITE_HOSTNAME = `127.0.0.1:${this.port}`;
        resolveListen();
      });
    });
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    const path = url.pathname;
    const method = (req.method ?? "GET").toUpperCase();
    if (path === "/admin/host/ping") {
      res.writeHead(200).end();
      return;
    }
    if (path.startsWith("/admin/functions/")) {
      return this.adminInvoke(req, res, url, decodeURIComponent(path.slice("/admin/functions/".length)));
    }
    if (path.toLowerCase() === EVENT_GRID_WEBHOOK_PATH) {
      const presented =
        url.searchParams.get("code") ?? (req.headers["x-functions-key"] as string | undefined);
      // ExtensionWebHookHandler is [Authorize(Policy = SystemKeyAuthLevel)]: the extension's system
      // key or the master key, checked before the extension sees the request.
      if (!authorizeSystem(this.keys, "eventgrid_extension", presented ?? undefined)) {
        res.writeHead(401).end();
        return;
      }
      const body = await readBody(req);
      return serveEventGridWebhook(
        { method, url, headers: req.headers, body },
        res,
        this.eventGridFns,
        (line) => this.log(line),
      );
    }
    if (path.startsWith("/durabletask/")) {
      return this.durableApi(req, res, url, path.slice("/durabletask/".length), method);
    }
    if (path.startsWith("/runtime/webhooks/durabletask/")) {
      const presented =
        url.searchParams.get("code") ?? (req.headers["x-functions-key"] as string | undefined);
      if (!authorizeSystem(this.keys, "durabletask_extension", presented ?? undefined)) {
        throw new HttpError(
          401,
          "A valid durabletask_extension system key or the master key is required (?code=).",
        );
      }
      return this.durableApi(req, res, url, path.slice("/runtime/webhooks/durabletask/".length), method);
    }
    const prefix = this.routePrefix ? `/${this.routePrefix}` : "";
    if (prefix && !(path === prefix || path.startsWith(`${prefix}/`))) {
      throw new HttpError(404, `No function serves ${path}`);
    }
    return this.httpTrigger(req, res, url, path.slice(prefix.length), method);
  }

  private async adminInvoke(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    name: string,
  ): Promise<void> {
    const presented = url.searchParams.get("code") ?? (req.headers["x-functions-key"] as string | undefined);
    if (!authorize(this.keys, "admin", name, presented ?? undefined))
      throw new HttpError(401, "The master key is required.");
    const timer = this.timerFns.find((t) => t.name === name);
    if (!timer) throw new HttpError(404, `No timer function named ${name}`);
    await readBody(req);
    void this.fireTimer(timer, false);
    res.writeHead(202).end();
  }

  private async httpTrigger(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    path: string,
    method: string,
  ) {
    let allowed: string[] = [];
    let fn: HttpFunction | undefined;
    let params: Record<string, string> | undefined;
    for (const candidate of this.http) {
      const m = candidate.route.match(path);
      if (!m) continue;
      if (!candidate.methods.includes(method)) {
        allowed = allowed.concat(candidate.methods);
        continue;
      }
      fn = candidate;
      params = m;
      break;
    }
    if (!fn || !params) {
      if (allowed.length > 0) {
        res.writeHead(405, { allow: [...new Set(allowed)].join(", "), "content-type": "application/json" });
        res.end(
          JSON.stringify({
            error: `Method ${method} is not allowed here; use ${[...new Set(allowed)].join(" or ")}.`,
          }),
        );
        return;
      }
      throw new HttpError(404, `No function serves ${url.pathname}`);
    }
    const presented = url.searchParams.get("code") ?? (req.headers["x-functions-key"] as string | undefined);
    if (!authorize(this.keys, fn.authLevel, fn.name, presented ?? undefined)) {
      res.writeHead(401).end();
      return;
    }
    const body = await readBody(req);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(", ") : v;
    }
    const request: HttpRequestType = new this.fx.HttpRequest({
      method,
      url: url.href,
      headers,
      query: Object.fromEntries(url.searchParams),
      params,
      body: body.length > 0 ? { bytes: body } : undefined,
    } as never);
    let result: unknown;
    try {
      result = await this.invoke(fn.name, fn.handler, request, fn.extraInputs);
    } catch (err) {
      this.log(`[${fn.name}] error: ${(err as Error).stack ?? err}`);
      res.writeHead(500).end();
      return;
    }
    const response =
      result instanceof this.fx.HttpResponse
        ? result
        : result === undefined
          ? new this.fx.HttpResponse({ status: 204 })
          : new this.fx.HttpResponse(result as never);
    const out: Record<string, string> = {};
    response.headers.forEach((v, k) => {
      out[k] = v;
    });
    const buf = Buffer.from(await response.arrayBuffer());
    res.writeHead(response.status, out);
    res.end(buf);
  }

  // ------------------------------------------------------------------ durable client API

  private async durableApi(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    rest: string,
    method: string,
  ): Promise<void> {
    try {
      await this.durableApiRoute(req, res, url, rest, method);
    } catch (err) {
      // HttpApiHandler answers "no such instance / route" (404) and "already finished" (410) with
      // request.CreateResponse(status): an empty body.
      const status = err instanceof HttpError || err instanceof EngineError ? err.status : 0;
      if ((status === 404 || status === 410) && !res.headersSent) {
        res.writeHead(status).end();
        return;
      }
      throw err;
    }
  }

  private async durableApiRoute(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    rest: string,
    method: string,
  ) {
    const send = (status: number, body?: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "content-type": "application/json", ...headers });
      res.end(body === undefined ? "" : JSON.stringify(body));
    };
    const parts = rest.split("/").filter(Boolean).map(decodeURIComponent);
    const body = (await readBody(req)).toString("utf8");

    if (parts[0] === "orchestrators" && method === "POST" && parts[1]) {
      const record = this.engine.startNew(parts[1], parts[2], body);
      const links = this.managementPayload(record.instanceId);
      // CreateCheckStatusResponseMessage: Location and Retry-After 10.
      send(
        202,
        { id: record.instanceId, ...links },
        { location: links.statusQueryGetUri, "retry-after": "10" },
      );
      return;
    }
    if (parts[0] !== "instances") throw new HttpError(404, `Unknown durable task endpoint /${rest}`);
    const id = parts[1];
    if (!id) {
      if (method !== "GET" && method !== "DELETE") throw new HttpError(405, "Only GET lists instances");
      const statuses = url.searchParams.get("runtimeStatus");
      const from = url.searchParams.get("createdTimeFrom");
      const to = url.searchParams.get("createdTimeTo");
      const filter = {
        runtimeStatus: statuses ? (statuses.split(",") as RuntimeStatus[]) : undefined,
        createdFrom: from ? Date.parse(from) : undefined,
        createdTo: to ? Date.parse(to) : undefined,
      };
      if (method === "DELETE") {
        // PurgeInstanceHistoryBy: the extension purges finished instances only and answers 404
        // when none matched.
        const n = this.engine
          .list(filter)
          .filter((v) => ["Completed", "Failed", "Terminated"].includes(v.runtimeStatus))
          .reduce((sum, v) => sum + this.engine.purge(v.instanceId), 0);
        if (n === 0) throw new HttpError(404, "No instances matched the purge filter");
        send(200, { instancesDeleted: n });
        return;
      }
      send(200, this.engine.list(filter));
      return;
    }
    const op = parts[2];
    if (!op) {
      if (method === "GET") {
        // HttpApiHandler.HandleGetStatusRequestAsync (Azure/azure-functions-durable-extension):
        // the same answers on the public webhook and on the RPC endpoint durable-functions calls.
        const view = this.engine.getStatus(id, {
          showHistory: queryFlag(url, "showHistory"),
          showHistoryOutput: queryFlag(url, "showHistoryOutput"),
          showInput: queryFlag(url, "showInput"),
        });
        if (!view) {
          // request.CreateResponse(HttpStatusCode.NotFound): no body at all.
          res.writeHead(404).end();
          return;
        }
        const running = ["Running", "Pending", "Suspended"].includes(view.runtimeStatus);
        const status = running
          ? 202
          : view.runtimeStatus === "Failed" && queryFlag(url, "returnInternalServerErrorOnFailure")
            ? 500
            : 200;
        // Location is the request's own URL; Retry-After 5 s ("some clients will otherwise retry
        // in a tight loop").
        const headers: Record<string, string> = running ? { location: url.href, "retry-after": "5" } : {};
        send(status, view, headers);
        return;
      }
      if (method === "DELETE") {
        const n = this.engine.purge(id);
        if (n === 0) throw new HttpError(404, `No instance with ID "${id}"`);
        send(200, { instancesDeleted: n });
        return;
      }
      throw new HttpError(405, `${method} is not supported on an instance`);
    }
    if (method !== "POST") throw new HttpError(405, `${op} needs POST`);
    const reason = url.searchParams.get("reason") ?? "";
    if (op === "raiseEvent" && parts[3]) await this.engine.raiseEvent(id, parts[3], body);
    else if (op === "terminate") await this.engine.terminate(id, reason);
    else if (op === "suspend") await this.engine.suspend(id, reason);
    else if (op === "resume") await this.engine.resume(id, reason);
    else throw new HttpError(404, `Unknown instance operation ${op}`);
    send(202);
  }

  private managementPayload(instanceId: string): Record<string, string> & { statusQueryGetUri: string } {
    const urls = this.clientData().managementUrls as Record<string, string>;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(urls)) {
      if (k !== "id") out[k] = v.replace("INSTANCEID", encodeURIComponent(instanceId));
    }
    return out as Record<string, string> & { statusQueryGetUri: string };
  }
}
