/**
 * SpireServer over SPIRE's gRPC Server API: the server's unix admin socket (callers there are
 * "local" and may call everything), or TCP with mTLS using an admin X509-SVID (the production
 * path from Azure). Messages come from the project's own .proto subset in ./proto.
 */
import { existsSync } from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { z } from "zod";
import { registerSecret } from "../logging.js";
import { joinTokenAgentId } from "../spiffe/index.js";
import { summarizeDeployBatch } from "./deploy-batch.js";
import { SpireApiError, SpireInputError, statusCodeName } from "./errors.js";
import { chunk, collectPages, mapLimited } from "./paging.js";
import type {
  Agent,
  AgentFilter,
  CreateEntryResult,
  DeleteEntryResult,
  DeployBatchRequest,
  DeployBatchResult,
  Entry,
  EntryFilter,
  EntrySpec,
  EntryUpdate,
  JoinToken,
  MintX509SvidRequest,
  ServerHealth,
  SpireLogger,
  SpireServer,
  TrustBundle,
  UpdateEntryResult,
  X509Svid,
} from "./types.js";
import { silentLogger } from "./types.js";
import {
  sameSelectors,
  validateAgentFilter,
  validateEntryId,
  validateEntrySpec,
  validateEntryUpdate,
  validateInteger,
  validateSpiffeIdInput,
  validateTrustDomainInput,
  validateTtlSeconds,
} from "./validate.js";
import {
  agentFromWire,
  BatchDeleteEntryResponse,
  BatchEntryResponse,
  bundleFromWire,
  deleteResultFromWire,
  Empty,
  entryFromWire,
  entryToWire,
  failureFromStatus,
  HealthCheckResponse,
  ListAgentsResponse,
  ListEntriesResponse,
  MintX509SvidResponse,
  spiffeIdToWire,
  svidFromWire,
  updateResultFromWire,
  WireBundle,
  type WireEntry,
  WireJoinToken,
} from "./wire.js";

export type GrpcTarget =
  | { kind: "unix"; socketPath: string }
  | {
      kind: "tcp";
      host: string;
      port: number;
      /** PEM roots the server's SVID must chain to: the trust bundle. */
      trustBundlePem: string;
      /** Admin X509-SVID (leaf first) and its key, PEM. Omit to connect without a client certificate. */
      clientCertChainPem?: string;
      clientKeyPem?: string;
      /** The SPIFFE ID the server must present; default spiffe://<td>/spire/server. */
      serverId?: string;
    };

export interface GrpcSpireServerOptions {
  target: GrpcTarget;
  trustDomain: string;
  /** Per-call deadline (default 15 s). */
  callTimeoutMs?: number;
  /** Page sizes and batch sizes (defaults as spire-controller-manager: page 200, create/update 50, delete 200). */
  pageSize?: number;
  createBatchSize?: number;
  updateBatchSize?: number;
  deleteBatchSize?: number;
  /** Parallel CreateJoinToken calls (default 4). */
  tokenConcurrency?: number;
  /** Attempts for read-only calls that fail with UNAVAILABLE/DEADLINE_EXCEEDED (default 3). */
  readAttempts?: number;
  logger?: SpireLogger;
  /** Called with every join token value this adapter sees (default: shared/logging's registerSecret). */
  registerSecret?: (value: string) => void;
}

// ---------------------------------------------------------------------------------------------
// Protos

const PROTO_FILES = [
  "spire/api/server/agent/v1/agent.proto",
  "spire/api/server/entry/v1/entry.proto",
  "spire/api/server/bundle/v1/bundle.proto",
  "spire/api/server/svid/v1/svid.proto",
  "grpc/health/v1/health.proto",
];

/** The .proto directory: next to this module in the source tree, or the source tree from dist/. */
export function protoDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, "proto"), path.resolve(here, "../../../shared/spire/proto")];
  for (const c of candidates) if (existsSync(path.join(c, PROTO_FILES[0] as string))) return c;
  throw new Error(`SPIRE .proto files not found (looked in ${candidates.join(", ")})`);
}

let packageDefinition: protoLoader.PackageDefinition | undefined;

function loadProtos(): protoLoader.PackageDefinition {
  packageDefinition ??= protoLoader.loadSync(PROTO_FILES, {
    keepCase: true,
    longs: String,
    enums: String,
    bytes: Buffer,
    defaults: true,
    oneofs: true,
    includeDirs: [protoDir()],
  });
  return packageDefinition;
}

type Method = protoLoader.MethodDefinition<object, object>;

function method(service: string, name: string): Method {
  const def = loadProtos()[service];
  if (!def || "format" in def) throw new Error(`service ${service} missing from the protos`);
  const m = (def as protoLoader.ServiceDefinition)[name];
  if (!m) throw new Error(`method ${service}/${name} missing from the protos`);
  return m;
}

const AGENT = "spire.api.server.agent.v1.Agent";
const ENTRY = "spire.api.server.entry.v1.Entry";
const BUNDLE = "spire.api.server.bundle.v1.Bundle";
const SVID = "spire.api.server.svid.v1.SVID";
const HEALTH = "grpc.health.v1.Health";

// ---------------------------------------------------------------------------------------------
// Channel

function isServiceError(err: unknown): err is grpc.ServiceError {
  return err instanceof Error && typeof (err as Partial<grpc.ServiceError>).code === "number";
}

/** The URI SAN values of a peer certificate (`subjectaltname` is "URI:a, DNS:b, ..."). */
function uriSans(cert: { subjectaltname?: string }): string[] {
  return (cert.subjectaltname ?? "")
    .split(/,\s*/)
    .filter((s) => s.startsWith("URI:"))
    .map((s) => s.slice(4));
}

function makeChannel(
  target: GrpcTarget,
  trustDomain: string,
): { address: string; creds: grpc.ChannelCredentials; options: grpc.ChannelOptions } {
  if (target.kind === "unix") {
    if (!path.isAbsolute(target.socketPath))
      throw new SpireInputError("target.socketPath", "must be an absolute path");
    return { address: `unix:${target.socketPath}`, creds: grpc.credentials.createInsecure(), options: {} };
  }
  validateInteger(target.port, "target.port", 1, 65535);
  const expectedId = validateSpiffeIdInput(
    target.serverId ?? `spiffe://${trustDomain}/spire/server`,
    "target.serverId",
  );
  if (!target.trustBundlePem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new SpireInputError("target.trustBundlePem", "no CERTIFICATE block");
  }
  if (Boolean(target.clientCertChainPem) !== Boolean(target.clientKeyPem)) {
    throw new SpireInputError(
      "target.clientKeyPem",
      "give both the admin SVID chain and its key, or neither",
    );
  }
  const creds = grpc.credentials.createSsl(
    Buffer.from(target.trustBundlePem),
    target.clientKeyPem ? Buffer.from(target.clientKeyPem) : null,
    target.clientCertChainPem ? Buffer.from(target.clientCertChainPem) : null,
    {
      // The chain is verified against the bundle by TLS; the name to check is the SPIFFE ID, not a host.
      checkServerIdentity: (_host, cert) => {
        const ids = uriSans(cert);
        return ids.length === 1 && ids[0] === expectedId
          ? undefined
          : new Error(`SPIRE server presented ${ids.join(", ") || "no SPIFFE ID"}, expected ${expectedId}`);
      },
    },
  );
  const host = target.host.includes(":") ? `[${target.host}]` : target.host;
  // SNI must not be an IP address; SPIRE ignores it, so a fixed name is fine.
  const options: grpc.ChannelOptions = { "grpc.ssl_target_name_override": "spire-server" };
  return { address: `${host}:${target.port}`, creds, options };
}

// ---------------------------------------------------------------------------------------------

export class GrpcSpireServer implements SpireServer {
  private readonly client: grpc.Client;
  private readonly trustDomain: string;
  private readonly callTimeoutMs: number;
  private readonly pageSize: number;
  private readonly createBatchSize: number;
  private readonly updateBatchSize: number;
  private readonly deleteBatchSize: number;
  private readonly tokenConcurrency: number;
  private readonly readAttempts: number;
  private readonly logger: SpireLogger;
  private readonly registerSecret: (value: string) => void;
  private readonly viaUnixSocket: boolean;

  constructor(options: GrpcSpireServerOptions) {
    this.trustDomain = validateTrustDomainInput(options.trustDomain);
    const { address, creds, options: channelOptions } = makeChannel(options.target, this.trustDomain);
    this.client = new grpc.Client(address, creds, channelOptions);
    this.viaUnixSocket = options.target.kind === "unix";
    this.callTimeoutMs = options.callTimeoutMs ?? 15_000;
    this.pageSize = options.pageSize ?? 200;
    this.createBatchSize = options.createBatchSize ?? 50;
    this.updateBatchSize = options.updateBatchSize ?? 50;
    this.deleteBatchSize = options.deleteBatchSize ?? 200;
    this.tokenConcurrency = options.tokenConcurrency ?? 4;
    this.readAttempts = options.readAttempts ?? 3;
    this.logger = options.logger ?? silentLogger;
    this.registerSecret = options.registerSecret ?? registerSecret;
  }

  private unary<S extends z.ZodType>(
    service: string,
    name: string,
    request: object,
    schema: S,
  ): Promise<z.output<S>> {
    const m = method(service, name);
    const operation = `${service.split(".").at(-1)}.${name}`;
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        m.path,
        m.requestSerialize,
        m.responseDeserialize,
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + this.callTimeoutMs },
        (err, value) => {
          if (err) {
            const code = isServiceError(err) ? statusCodeName(err.code) : "UNKNOWN";
            reject(new SpireApiError(operation, code, err.details || err.message, { cause: err }));
            return;
          }
          const parsed = schema.safeParse(value ?? {});
          if (!parsed.success) {
            reject(
              new SpireApiError(operation, "INTERNAL", `unexpected response shape: ${parsed.error.message}`),
            );
            return;
          }
          resolve(parsed.data);
        },
      );
    });
  }

  /** Read-only calls are safe to repeat when the server was briefly unreachable. */
  private async read<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof SpireApiError) || !err.retryable || attempt >= this.readAttempts) throw err;
        this.logger.debug("spire read failed, retrying", {
          operation: err.operation,
          code: err.code,
          attempt,
        });
        await new Promise((r) => setTimeout(r, 200 * 2 ** (attempt - 1)));
      }
    }
  }

  async createJoinTokens(aliases: readonly string[], ttlSeconds: number): Promise<JoinToken[]> {
    const ttl = validateTtlSeconds(ttlSeconds, "ttlSeconds", 1);
    const ids = aliases.map((a, i) => validateSpiffeIdInput(a, `aliases[${i}]`, this.trustDomain));
    return mapLimited(ids, this.tokenConcurrency, async (alias) => {
      const res = await this.unary(
        AGENT,
        "CreateJoinToken",
        { ttl, agent_id: spiffeIdToWire(alias) },
        WireJoinToken,
      );
      this.registerSecret(res.value);
      return {
        value: res.value,
        expiresAt: new Date(res.expires_at * 1000),
        alias,
        agentId: joinTokenAgentId(this.trustDomain, res.value),
      };
    });
  }

  async listAgents(filter?: AgentFilter): Promise<Agent[]> {
    const f = validateAgentFilter(filter);
    const wireFilter: Record<string, unknown> = {};
    if (f.byAttestationType) wireFilter.by_attestation_type = f.byAttestationType;
    if (f.byBanned !== undefined) wireFilter.by_banned = { value: f.byBanned };
    if (f.byCanReattest !== undefined) wireFilter.by_can_reattest = { value: f.byCanReattest };
    const agents = await collectPages(async (pageToken) => {
      const res = await this.read(() =>
        this.unary(
          AGENT,
          "ListAgents",
          { filter: wireFilter, page_size: this.pageSize, page_token: pageToken },
          ListAgentsResponse,
        ),
      );
      return { items: res.agents, nextPageToken: res.next_page_token };
    });
    return agents.map(agentFromWire);
  }

  async deleteAgent(id: string): Promise<{ deleted: boolean }> {
    const agentId = validateSpiffeIdInput(id, "id", this.trustDomain);
    try {
      await this.unary(AGENT, "DeleteAgent", { id: spiffeIdToWire(agentId) }, Empty);
      return { deleted: true };
    } catch (err) {
      if (err instanceof SpireApiError && err.code === "NOT_FOUND") return { deleted: false };
      throw err;
    }
  }

  async banAgent(id: string): Promise<void> {
    const agentId = validateSpiffeIdInput(id, "id", this.trustDomain);
    await this.unary(AGENT, "BanAgent", { id: spiffeIdToWire(agentId) }, Empty);
  }

  async listEntries(filter: EntryFilter): Promise<Entry[]> {
    const wireFilter: Record<string, unknown> = { by_downstream: { value: false } };
    if (filter.byParentId !== undefined) {
      wireFilter.by_parent_id = spiffeIdToWire(
        validateSpiffeIdInput(filter.byParentId, "filter.byParentId", this.trustDomain),
      );
    }
    if (filter.bySpiffeId !== undefined) {
      wireFilter.by_spiffe_id = spiffeIdToWire(
        validateSpiffeIdInput(filter.bySpiffeId, "filter.bySpiffeId", this.trustDomain),
      );
    }
    const entries = await collectPages(async (pageToken) => {
      const res = await this.read(() =>
        this.unary(
          ENTRY,
          "ListEntries",
          { filter: wireFilter, page_size: this.pageSize, page_token: pageToken },
          ListEntriesResponse,
        ),
      );
      return { items: res.entries, nextPageToken: res.next_page_token };
    });
    return entries.map(entryFromWire);
  }

  async createEntries(specs: readonly EntrySpec[]): Promise<CreateEntryResult[]> {
    const valid = specs.map((s, i) => validateEntrySpec(s, `specs[${i}]`, this.trustDomain));
    const results: CreateEntryResult[] = [];
    for (const batch of chunk(valid, this.createBatchSize)) {
      const res = await this.unary(
        ENTRY,
        "BatchCreateEntry",
        { entries: batch.map(entryToWire) },
        BatchEntryResponse,
      );
      if (res.results.length !== batch.length) {
        throw new SpireApiError(
          "Entry.BatchCreateEntry",
          "INTERNAL",
          `${res.results.length} results for ${batch.length} entries`,
        );
      }
      for (const [i, r] of res.results.entries()) {
        const spec = batch[i] as EntrySpec;
        results.push(await this.createResult(spec, r.status?.code ?? 0, r));
      }
    }
    return results;
  }

  private async createResult(
    spec: EntrySpec,
    code: number,
    r: { status?: { code: number; message: string } | null; entry?: WireEntry | null },
  ): Promise<CreateEntryResult> {
    if (code === 0 && r.entry) return { status: "created", entry: entryFromWire(r.entry) };
    if (statusCodeName(code) === "ALREADY_EXISTS") {
      // The server returns the existing entry; look it up if a future server does not.
      if (r.entry?.id) return { status: "exists", entry: entryFromWire(r.entry) };
      const candidates = await this.listEntries({ bySpiffeId: spec.spiffeId, byParentId: spec.parentId });
      const existing = candidates.find((e) => sameSelectors(e.selectors, spec.selectors));
      if (existing) return { status: "exists", entry: existing };
    }
    return { status: "failed", spec, ...failureFromStatus(r.status) };
  }

  async updateEntries(updates: readonly EntryUpdate[]): Promise<UpdateEntryResult[]> {
    const valid = updates.map((u, i) => validateEntryUpdate(u, `updates[${i}]`, this.trustDomain));
    const results: UpdateEntryResult[] = [];
    for (const batch of chunk(valid, this.updateBatchSize)) {
      const res = await this.unary(
        ENTRY,
        "BatchUpdateEntry",
        { entries: batch.map(entryToWire) },
        BatchEntryResponse,
      );
      if (res.results.length !== batch.length) {
        throw new SpireApiError(
          "Entry.BatchUpdateEntry",
          "INTERNAL",
          `${res.results.length} results for ${batch.length} entries`,
        );
      }
      for (const [i, r] of res.results.entries())
        results.push(updateResultFromWire(r, (batch[i] as EntryUpdate).id));
    }
    return results;
  }

  async deleteEntries(ids: readonly string[]): Promise<DeleteEntryResult[]> {
    const valid = ids.map((id, i) => validateEntryId(id, `ids[${i}]`));
    const results: DeleteEntryResult[] = [];
    for (const batch of chunk(valid, this.deleteBatchSize)) {
      const res = await this.unary(ENTRY, "BatchDeleteEntry", { ids: batch }, BatchDeleteEntryResponse);
      if (res.results.length !== batch.length) {
        throw new SpireApiError(
          "Entry.BatchDeleteEntry",
          "INTERNAL",
          `${res.results.length} results for ${batch.length} ids`,
        );
      }
      for (const [i, r] of res.results.entries()) results.push(deleteResultFromWire(r, batch[i] as string));
    }
    return results;
  }

  async getBundle(): Promise<TrustBundle> {
    const res = await this.read(() => this.unary(BUNDLE, "GetBundle", {}, WireBundle));
    return bundleFromWire(res);
  }

  async mintX509Svid(request: MintX509SvidRequest): Promise<X509Svid> {
    if (!(request.csrDer instanceof Uint8Array) || request.csrDer.length === 0) {
      throw new SpireInputError("csrDer", "expected a DER-encoded CSR");
    }
    const ttl = validateTtlSeconds(request.ttlSeconds ?? 0, "ttlSeconds");
    const res = await this.unary(
      SVID,
      "MintX509SVID",
      { csr: Buffer.from(request.csrDer), ttl },
      MintX509SvidResponse,
    );
    if (!res.svid) throw new SpireApiError("SVID.MintX509SVID", "INTERNAL", "no SVID in the response");
    return svidFromWire(res.svid);
  }

  /** The batch calls in order (each batched and paged as usual); no round trip is saved over gRPC. */
  async applyDeployBatch(request: DeployBatchRequest): Promise<DeployBatchResult> {
    const created = request.create.length > 0 ? await this.createEntries(request.create) : [];
    const updated = request.update.length > 0 ? await this.updateEntries(request.update) : [];
    const deleted = request.delete.length > 0 ? await this.deleteEntries(request.delete) : [];
    const tokens =
      request.tokens.aliases.length > 0
        ? await this.createJoinTokens(request.tokens.aliases, request.tokens.ttlSeconds)
        : [];
    return summarizeDeployBatch(created, updated, deleted, tokens);
  }

  async health(): Promise<ServerHealth> {
    try {
      if (this.viaUnixSocket) {
        const res = await this.unary(HEALTH, "Check", { service: "" }, HealthCheckResponse);
        const serving = res.status === "SERVING" || res.status === 1;
        return { healthy: serving, detail: `grpc health: ${String(res.status)}` };
      }
      // The health service is only on the unix socket; over TCP, GetBundle (open to anyone) proves liveness.
      const bundle = await this.unary(BUNDLE, "GetBundle", {}, WireBundle);
      return { healthy: true, detail: `GetBundle answered (sequence ${bundle.sequence_number})` };
    } catch (err) {
      return { healthy: false, detail: err instanceof Error ? err.message : String(err) };
    }
  }

  async close(): Promise<void> {
    this.client.close();
  }
}

export function createGrpcSpireServer(options: GrpcSpireServerOptions): SpireServer {
  return new GrpcSpireServer(options);
}
