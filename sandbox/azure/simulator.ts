/**
 * The Azure control-plane simulator: one HTTPS server on 127.0.0.1 (a CA made at start) serving
 * Container Apps and VM run-commands to the real Azure SDK clients, plus the `/_sim/` control
 * API. Start it with `startAzureSimulator()`; see sandbox/azure/README.md for the API.
 */
import { writeFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { join } from "node:path";
import { ContainerAppsAPIClient } from "@azure/arm-appcontainers";
import { ComputeManagementClient } from "@azure/arm-compute";
import type { TokenCredential } from "@azure/core-auth";
import { makeShortTempDir, removeOwnedDir } from "../spire/process.js";
import { ArmError, armErrors } from "./arm/errors.js";
import { AsyncOperations } from "./arm/operations.js";
import {
  type ArmRequest,
  ArmRouter,
  type HttpMethod,
  newRequestId,
  parseJsonBody,
  queryParam,
  readBody,
  sendArmError,
  sendJson,
} from "./arm/router.js";
import { COMPUTE_API_VERSIONS, CONTAINER_APPS_API_VERSIONS } from "./arm/versions.js";
import { computeRoutes } from "./compute/routes.js";
import { ComputeService, type VmOptions } from "./compute/service.js";
import { containerAppsRoutes } from "./containerapps/routes.js";
import { ContainerAppsService, type KeyVaultSecretResolver } from "./containerapps/service.js";
import { handleControl } from "./control.js";
import { ArmTranscript, Counters } from "./counters.js";
import { SANDBOX_TOKEN_PREFIX, SandboxTokenCredential } from "./credential.js";
import { EventLog } from "./events.js";
import { Faults, type FaultUpdate } from "./faults.js";
import { type LatencyProfile, type ProfileName, resolveProfile } from "./profiles.js";
import { SimulatedContainerRuntime } from "./runtime/simulated.js";
import type { ContainerRuntime } from "./runtime/types.js";
import { Timers } from "./timers.js";
import { makeLoopbackTls } from "./tls.js";

export const SANDBOX_SUBSCRIPTION_ID = "00000000-0000-4000-8000-000000000000";
const ARM_SCOPE = "https://management.azure.com/.default";
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const RESOURCE_GROUP = /^[-\w._()]{1,90}$/u;

export interface AzureSimulatorOptions {
  /** `fast` (default) for tests, `azure` for Azure-shaped latencies divided by `timeScale`. */
  profile?: ProfileName | LatencyProfile;
  timeScale?: number;
  subscriptionId?: string;
  /** Folder for replicas' and VMs' files; default a fresh short temp dir, removed on stop. */
  workDir?: string;
  /** How replica containers run; default: all simulated. Pass a SpireSidecarRuntime for real agents. */
  runtime?: ContainerRuntime;
  /** Initial fault settings; a 403 window given here counts from the simulator's start. */
  faults?: FaultUpdate;
  /** Resolves Key Vault-referenced secrets; default: the in-memory `keyVaultSecrets` map (by URL). */
  keyVault?: KeyVaultSecretResolver;
  /** VMs that exist from the start (each may run a SPIRE server "container" for run-commands). */
  vms?: VmOptions[];
  /** Port on 127.0.0.1; default a free one. */
  port?: number;
  log?: (line: string) => void;
}

export interface SimulatorClients {
  containerApps: ContainerAppsAPIClient;
  compute: ComputeManagementClient;
}

export class AzureSimulator {
  readonly counters = new Counters();
  /** Every ARM request and response body, for scans of what ARM exposed. */
  readonly transcript = new ArmTranscript();
  readonly faults: Faults;
  readonly events = new EventLog();
  readonly credential = new SandboxTokenCredential();
  /** Key Vault secret values by secret URL, for the default resolver of Key Vault-referenced app secrets. */
  readonly keyVaultSecrets = new Map<string, string>();
  readonly containerApps: ContainerAppsService;
  readonly compute: ComputeService;
  readonly profile: LatencyProfile;
  readonly subscriptionId: string;
  private readonly router = new ArmRouter();
  private readonly ops: AsyncOperations;
  private readonly timers: Timers;
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  private baseUrl = "";
  private stopped = false;

  private constructor(
    private readonly tls: { caPem: string; certPem: string; keyPem: string },
    readonly workDir: string,
    private readonly ownsWorkDir: boolean,
    private readonly runtime: ContainerRuntime,
    readonly caFile: string,
    private readonly options: AzureSimulatorOptions,
  ) {
    this.profile = resolveProfile(options.profile, options.timeScale);
    this.subscriptionId = options.subscriptionId ?? SANDBOX_SUBSCRIPTION_ID;
    this.faults = new Faults(options.faults ?? {});
    this.timers = new Timers((err) => this.log(`simulator background error: ${(err as Error).stack ?? err}`));
    this.ops = new AsyncOperations(
      () => this.baseUrl,
      () => this.profile.retryAfterSeconds,
      { "Microsoft.App": CONTAINER_APPS_API_VERSIONS, "Microsoft.Compute": COMPUTE_API_VERSIONS },
      () => this.profile.pollHoldMs,
    );
    const keyVault: KeyVaultSecretResolver =
      options.keyVault ?? (async ({ keyVaultUrl }) => this.keyVaultSecrets.get(keyVaultUrl));
    this.containerApps = new ContainerAppsService({
      subscriptionId: this.subscriptionId,
      profile: () => this.profile,
      timers: this.timers,
      ops: this.ops,
      counters: this.counters,
      faults: this.faults,
      events: this.events,
      runtime,
      workDir: join(workDir, "apps"),
      keyVault,
      log: (m) => this.log(m),
    });
    this.compute = new ComputeService({
      subscriptionId: this.subscriptionId,
      profile: () => this.profile,
      timers: this.timers,
      ops: this.ops,
      counters: this.counters,
      faults: this.faults,
      workDir: join(workDir, "vms"),
      log: (m) => this.log(m),
    });
    for (const route of this.ops.routes()) this.router.add(route);
    for (const route of containerAppsRoutes(this.containerApps)) this.router.add(route);
    for (const route of computeRoutes(this.compute)) this.router.add(route);
  }

  /** Starts a simulator; `stop()` it (tests: in afterAll/finally). */
  static async start(options: AzureSimulatorOptions = {}): Promise<AzureSimulator> {
    const tls = await makeLoopbackTls();
    const ownsWorkDir = options.workDir === undefined;
    const workDir = options.workDir ?? makeShortTempDir("sa-az-");
    const caFile = join(workDir, "arm-ca.pem");
    writeFileSync(caFile, tls.caPem);
    const runtime = options.runtime ?? new SimulatedContainerRuntime();
    const sim = new AzureSimulator(tls, workDir, ownsWorkDir, runtime, caFile, options);
    try {
      await sim.listen(options.port ?? 0);
      for (const vm of options.vms ?? []) await sim.compute.addVm(vm);
    } catch (err) {
      await sim.stop();
      throw err;
    }
    return sim;
  }

  private listen(port: number): Promise<void> {
    const server = createServer({ key: this.tls.keyPem, cert: this.tls.certPem }, (req, res) => {
      void this.handle(req, res);
    });
    server.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
    });
    server.on("tlsClientError", () => {
      // A client that does not trust the CA: its problem, reported on its side.
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        const { port: bound } = server.address() as AddressInfo;
        this.baseUrl = `https://127.0.0.1:${bound}`;
        resolve();
      });
    });
  }

  /** https://127.0.0.1:PORT: the ARM endpoint to give clients. */
  get url(): string {
    return this.baseUrl;
  }

  get caPem(): string {
    return this.tls.caPem;
  }

  /** App settings that point the product at this simulator (merge into the sandbox settings). */
  settings(): Record<string, string> {
    return {
      ARM_ENDPOINT: this.baseUrl,
      ARM_CA_CERT_FILE: this.caFile,
      AZURE_CREDENTIAL: "sandbox",
      AZURE_SUBSCRIPTION_ID: this.subscriptionId,
    };
  }

  /** Real SDK clients wired to the simulator (endpoint, scope, CA), with the sandbox credential. */
  clients(credential: TokenCredential = this.credential): SimulatorClients {
    const common = {
      endpoint: this.baseUrl,
      credentials: { scopes: [ARM_SCOPE] },
      tlsOptions: { ca: this.tls.caPem },
    };
    return {
      containerApps: new ContainerAppsAPIClient(credential, this.subscriptionId, common),
      compute: new ComputeManagementClient(credential, this.subscriptionId, common),
    };
  }

  /** Forgets every app, VM run-command, counter and fault (VMs themselves stay, un-wedged). */
  async reset(): Promise<void> {
    this.timers.clearAll();
    this.ops.clear();
    await this.containerApps.reset();
    await this.compute.reset();
    this.counters.reset();
    this.transcript.reset();
    this.faults.reset();
    this.events.clear();
    this.keyVaultSecrets.clear();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.timers.close();
    this.ops.clear();
    const server = this.server;
    if (server) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of this.sockets) s.destroy();
      });
    }
    await this.containerApps.reset();
    await this.compute.close();
    await this.runtime.close();
    if (this.ownsWorkDir) await removeOwnedDir(this.workDir);
  }

  private log(line: string): void {
    this.options.log?.(line);
  }

  // -------------------------------------------------------------------------------------------
  // The request pipeline

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = newRequestId();
    try {
      const url = new URL(req.url ?? "/", this.baseUrl);
      let path: string;
      try {
        path = decodeURIComponent(url.pathname);
      } catch {
        throw new ArmError(400, "InvalidUri", "The request URI is not valid: bad percent-encoding.");
      }
      if (path.startsWith("/_sim/") || path === "/_sim") {
        const raw = await readBody(req);
        await handleControl(this, req.method ?? "GET", path, url, raw, res);
        return;
      }
      if (this.profile.requestMs > 0) await new Promise((r) => setTimeout(r, this.profile.requestMs));
      this.authenticate(req);
      const raw = await readBody(req);
      const apiVersion = queryParam(url, "api-version");
      if (apiVersion === undefined || apiVersion === "") throw armErrors.missingApiVersion();
      const method = (req.method ?? "GET").toUpperCase();
      const matched = this.router.match(method, path);
      if ("error" in matched) throw matched.error;
      const { route, params } = matched;
      if (!route.apiVersions.includes(apiVersion)) {
        throw armErrors.unsupportedApiVersion(apiVersion, route.resourceType, route.apiVersions);
      }
      this.checkScope(params);
      this.counters.armCall(route.action);
      if (this.faults.denies(route.action)) {
        this.counters.authorizationFailure();
        throw armErrors.authorizationFailed(route.action, path);
      }
      const body = parseJsonBody(raw, req.headers["content-type"], route.body);
      const armReq: ArmRequest = {
        method: method as HttpMethod,
        url,
        path,
        headers: req.headers,
        body,
        params,
        requestId,
        query: (name) => queryParam(url, name),
      };
      const out = await route.handler(armReq);
      this.transcript.record({
        method,
        path,
        resourceType: route.resourceType,
        action: route.action,
        requestBody: raw.toString("utf8"),
        status: out.status,
        responseBody: out.body === undefined ? "" : JSON.stringify(out.body),
      });
      sendJson(res, out.status, out.body, {
        "x-ms-request-id": requestId,
        "x-ms-correlation-request-id": requestId,
        ...out.headers,
      });
    } catch (err) {
      if (err instanceof ArmError) {
        sendArmError(res, err, requestId);
        return;
      }
      this.log(`internal error on ${req.method} ${req.url}: ${(err as Error).stack ?? err}`);
      sendArmError(
        res,
        new ArmError(
          500,
          "InternalServerError",
          `The simulator failed to process the request: ${(err as Error).message}`,
        ),
        requestId,
      );
    }
  }

  private authenticate(req: IncomingMessage): void {
    const header = req.headers.authorization;
    if (header === undefined || header === "") throw armErrors.missingAuthorization();
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m || !(m[1] ?? "").startsWith(SANDBOX_TOKEN_PREFIX)) throw armErrors.invalidToken();
  }

  private checkScope(params: Record<string, string>): void {
    const sub = params.sub;
    if (sub !== undefined) {
      if (!GUID.test(sub)) throw armErrors.invalidSubscriptionId(sub);
      if (sub.toLowerCase() !== this.subscriptionId.toLowerCase()) throw armErrors.subscriptionNotFound(sub);
    }
    const rg = params.rg;
    if (rg !== undefined && (!RESOURCE_GROUP.test(rg) || rg.endsWith(".")))
      throw armErrors.invalidResourceGroupName(rg);
  }
}

/** Starts an Azure simulator (see AzureSimulator.start). */
export function startAzureSimulator(options: AzureSimulatorOptions = {}): Promise<AzureSimulator> {
  return AzureSimulator.start(options);
}
