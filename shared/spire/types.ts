/**
 * The SpireServer port: everything the product asks of a SPIRE server, in domain terms.
 * Adapters (gRPC Server API, managed run-commands) do the batching, paging and wire mapping;
 * callers see SPIFFE IDs as strings, times as Dates and per-item outcomes for batch calls.
 */
import type { Logger } from "../logging.js";

export interface Selector {
  /** e.g. "unix" */
  type: string;
  /** Everything after the first ':', e.g. "uid:0" for "unix:uid:0". */
  value: string;
}

export interface JoinToken {
  /** The secret. Never log it; put it in a Container App secret. */
  value: string;
  expiresAt: Date;
  /** The node alias the server created with the token (spiffe://<td>/agent/<app>). */
  alias: string;
  /** The ID the agent gets when it attests with this token (spiffe://<td>/spire/agent/join_token/<token>). */
  agentId: string;
}

export interface Agent {
  id: string;
  attestationType: string;
  x509SvidSerialNumber: string;
  /** Expiry of the agent's own SVID: the liveness signal (there is no "last seen"). Undefined when 0/unset. */
  x509SvidExpiresAt: Date | undefined;
  selectors: Selector[];
  banned: boolean;
  canReattest: boolean;
  agentVersion: string;
}

export interface AgentFilter {
  byAttestationType?: string;
  byBanned?: boolean;
  byCanReattest?: boolean;
}

/** What the caller wants an entry to be. */
export interface EntrySpec {
  spiffeId: string;
  parentId: string;
  selectors: Selector[];
  /** Seconds; 0 or undefined = the server's default. */
  x509SvidTtl?: number;
  jwtSvidTtl?: number;
  admin?: boolean;
  downstream?: boolean;
  dnsNames?: string[];
  hint?: string;
  /** Custom entry ID (lets an owner recognise its entries, like spire-controller-manager's prefix). */
  id?: string;
}

export interface Entry {
  id: string;
  spiffeId: string;
  parentId: string;
  selectors: Selector[];
  x509SvidTtl: number;
  jwtSvidTtl: number;
  admin: boolean;
  downstream: boolean;
  dnsNames: string[];
  hint: string;
  federatesWith: string[];
  revisionNumber: number;
  createdAt: Date | undefined;
  /** Entry expiry (pruned after); undefined when the entry does not expire. */
  expiresAt: Date | undefined;
}

export interface EntryFilter {
  byParentId?: string;
  bySpiffeId?: string;
}

/** A failed item of a batch call; other items of the same batch may have succeeded. */
export interface ItemFailure {
  code: SpireStatusCode;
  message: string;
}

export type CreateEntryResult =
  | { status: "created"; entry: Entry }
  /** ALREADY_EXISTS: a similar entry (same SPIFFE ID, parent, selectors) exists; this is it. */
  | { status: "exists"; entry: Entry }
  | ({ status: "failed"; spec: EntrySpec } & ItemFailure);

/** A full replacement of an existing entry's fields. */
export type EntryUpdate = EntrySpec & { id: string };

export type UpdateEntryResult =
  | { status: "updated"; entry: Entry }
  | ({ status: "failed"; id: string } & ItemFailure);

export type DeleteEntryResult =
  | { status: "deleted"; id: string }
  /** NOT_FOUND: already gone, which is what the caller wanted. */
  | { status: "not_found"; id: string }
  | ({ status: "failed"; id: string } & ItemFailure);

export interface BundleRoot {
  pem: string;
  /** SHA-256 of the DER, lowercase hex without separators. */
  sha256Fingerprint: string;
  notBefore: Date;
  notAfter: Date;
  subject: string;
  tainted: boolean;
}

export interface TrustBundle {
  trustDomain: string;
  /** Every X.509 root as concatenated PEM blocks: what `bundle show -format pem` prints. */
  pem: string;
  roots: BundleRoot[];
  /** Increments on every bundle change. */
  sequenceNumber: number;
  refreshHintSeconds: number;
}

export interface X509Svid {
  spiffeId: string;
  /** Leaf first, DER. */
  certChainDer: Buffer[];
  /** Leaf first, PEM blocks. */
  certChainPem: string;
  expiresAt: Date;
}

export interface MintX509SvidRequest {
  /** DER-encoded PKCS#10 CSR with exactly one URI SAN: the SPIFFE ID. */
  csrDer: Uint8Array;
  /** Seconds; 0 or undefined = the server's default. */
  ttlSeconds?: number;
}

export interface ServerHealth {
  healthy: boolean;
  /** Why not, or what was checked. */
  detail: string;
}

/** gRPC status names; the run-command adapter maps CLI errors onto the same codes. */
export type SpireStatusCode =
  | "OK"
  | "CANCELLED"
  | "UNKNOWN"
  | "INVALID_ARGUMENT"
  | "DEADLINE_EXCEEDED"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "PERMISSION_DENIED"
  | "RESOURCE_EXHAUSTED"
  | "FAILED_PRECONDITION"
  | "ABORTED"
  | "OUT_OF_RANGE"
  | "UNIMPLEMENTED"
  | "INTERNAL"
  | "UNAVAILABLE"
  | "DATA_LOSS"
  | "UNAUTHENTICATED";

/** A deploy's SPIRE writes in one go: join tokens and the entry diff (see applyDeployBatch). */
export interface DeployBatchRequest {
  tokens: { aliases: readonly string[]; ttlSeconds: number };
  create: readonly EntrySpec[];
  update: readonly EntryUpdate[];
  delete: readonly string[];
}

export interface DeployBatchResult {
  /** In the order of `tokens.aliases`. */
  tokens: JoinToken[];
  /** Created, or found existing (ALREADY_EXISTS: a retried batch), by entry ID or SPIFFE ID. */
  created: number;
  existed: number;
  updated: number;
  /** Deleted, or already gone. */
  deleted: number;
  failures: Array<{ op: "create" | "update" | "delete"; id: string } & ItemFailure>;
}

export interface SpireServer {
  /**
   * One join token per alias (each `spiffe://<td>/agent/<app>`), with the alias entry the server
   * creates alongside. Results are in the order of `aliases`.
   */
  createJoinTokens(aliases: readonly string[], ttlSeconds: number): Promise<JoinToken[]>;
  /** Every agent (all pages). */
  listAgents(filter?: AgentFilter): Promise<Agent[]>;
  /** Evicts an agent; `deleted: false` when it did not exist. Also removes a join-token agent's alias entry. */
  deleteAgent(id: string): Promise<{ deleted: boolean }>;
  banAgent(id: string): Promise<void>;
  /** Every matching entry (all pages). Downstream entries are not included. */
  listEntries(filter: EntryFilter): Promise<Entry[]>;
  /** Idempotent: an existing similar entry is returned as `exists`. Results follow the input order. */
  createEntries(specs: readonly EntrySpec[]): Promise<CreateEntryResult[]>;
  updateEntries(updates: readonly EntryUpdate[]): Promise<UpdateEntryResult[]>;
  deleteEntries(ids: readonly string[]): Promise<DeleteEntryResult[]>;
  getBundle(): Promise<TrustBundle>;
  mintX509Svid(request: MintX509SvidRequest): Promise<X509Svid>;
  health(): Promise<ServerHealth>;
  /**
   * Entries (create, update, delete) and then join tokens, as few round trips as the adapter
   * can: the gRPC adapter makes the batch calls; the run-command adapter runs ONE script, whose
   * output comes back sealed, so the tokens are never readable from ARM. Entry failures are
   * returned per item; a token failure throws (tokens made alongside expire unused).
   */
  applyDeployBatch(request: DeployBatchRequest): Promise<DeployBatchResult>;
  /**
   * Run-command mode only (the deploy's first and last run-commands): what a deploy reads before
   * it writes, in ONE script (healthcheck, bundle, every entry), and its last step for every app
   * in ONE script (see RolloverRequest). The gRPC adapter has neither: its calls cost no
   * run-command, so a deploy over the API keeps its per-step calls.
   */
  readDeployState?(): Promise<DeployState>;
  rolloverAgents?(request: RolloverRequest): Promise<RolloverResult[]>;
  /** Run-command mode, docker only: `docker start` of a stopped server container (never rm). */
  startServerContainer?(): Promise<{ started: boolean; detail: string }>;
  /** Releases connections; the instance is unusable afterwards. */
  close(): Promise<void>;
}

/** A deploy's reads in one go; bundle and entries are absent when the server did not answer. */
export interface DeployState {
  health: ServerHealth;
  /** Why the server did not answer, for the deploy's server step: its container stopped or gone. */
  container?: "stopped" | "missing";
  bundle?: TrustBundle;
  entries?: Entry[];
}

export interface RolloverRequest {
  /** Per app: its alias and the SHA-256 of the join token its new agent attests with. */
  apps: ReadonlyArray<{ alias: string; keepTokenSha256: string }>;
  /** How long (on the VM, bounded) to wait for each new agent to attest. */
  waitSeconds: number;
}

/** Per app, in request order: attested, and old agents evicted (stale: alias entries with no agent). */
export interface RolloverResult {
  attested: boolean;
  evicted: number;
  stale: number;
  detail?: string;
}

/** What the adapters log through: the app's Logger (shared/logging.ts) fits. Never given secrets. */
export type SpireLogger = Pick<Logger, "debug" | "info" | "warn" | "error">;

export const silentLogger: SpireLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
