/**
 * SpireServer through managed run-commands on the SPIRE VM: the bootstrap and fallback path.
 *
 * This file maps the SpireServer port to spire-server CLI calls and their JSON back to domain
 * types; running the calls on the VM (one run-command at a time per VM across workers, both
 * state machines, cooldown, backoff, sealed output) is ./executor.ts.
 */
import { createHash, X509Certificate } from "node:crypto";
import { z } from "zod";
import { registerSecret } from "../../logging.js";
import { joinTokenAgentId } from "../../spiffe/index.js";
import { summarizeDeployBatch } from "../deploy-batch.js";
import { SpireApiError, SpireUnsupportedError, STATUS_CODES, statusCodeName } from "../errors.js";
import { chunk } from "../paging.js";
import type {
  Agent,
  AgentFilter,
  CreateEntryResult,
  DeleteEntryResult,
  DeployBatchRequest,
  DeployBatchResult,
  DeployState,
  Entry,
  EntryFilter,
  EntrySpec,
  EntryUpdate,
  JoinToken,
  RolloverRequest,
  RolloverResult,
  ServerHealth,
  SpireServer,
  SpireStatusCode,
  TrustBundle,
  UpdateEntryResult,
  X509Svid,
} from "../types.js";
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
} from "../validate.js";
import {
  agentFromWire,
  BatchDeleteEntryResponse,
  BatchEntryResponse,
  bundleFromWire,
  deleteResultFromWire,
  derToPem,
  entryFromWire,
  failureFromStatus,
  ListAgentsResponse,
  ListEntriesResponse,
  updateResultFromWire,
  WireBundle,
  WireJoinToken,
} from "../wire.js";
import { type RunCommandClock, RunCommandExecutor, type RunCommandExecutorOptions } from "./executor.js";
import type { CallOutput, CliCall } from "./script.js";

export { type RunCommandClock, RunCommandError } from "./executor.js";

export interface RunCommandSpireServerOptions extends RunCommandExecutorOptions {
  trustDomain: string;
  createBatchSize?: number;
  updateBatchSize?: number;
  deleteBatchSize?: number;
  registerSecret?: (value: string) => void;
  clock?: RunCommandClock;
}

/** Go's codes.Code names (NotFound) → gRPC status names (NOT_FOUND). */
function goCodeToStatus(name: string): SpireStatusCode {
  const snake = name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
  if (snake === "CANCELED") return "CANCELLED";
  return (STATUS_CODES as readonly string[]).includes(snake) ? (snake as SpireStatusCode) : "UNKNOWN";
}

/** What a failed CLI call means, from its exit code and stderr. */
export function cliFailure(out: CallOutput): { code: SpireStatusCode; message: string } {
  const text = `${out.stderr}\n${out.stdout}`.trim();
  const firstLine = (text.split("\n").find((l) => l.trim() !== "") ?? "").slice(0, 300);
  if (out.exitCode === 124) return { code: "DEADLINE_EXCEEDED", message: "the CLI call timed out on the VM" };
  const rpc = /code = (\w+) desc = (.*)/.exec(text);
  if (rpc) return { code: goCodeToStatus(rpc[1] as string), message: (rpc[2] as string).slice(0, 300) };
  if (
    /Error response from daemon|No such container|is not running|Cannot connect to the Docker daemon/i.test(
      text,
    )
  ) {
    return { code: "UNAVAILABLE", message: firstLine };
  }
  if (/connection refused|no such file or directory|connection error|transport: /i.test(text)) {
    return { code: "UNAVAILABLE", message: firstLine };
  }
  return { code: "UNKNOWN", message: firstLine || `exit code ${out.exitCode}` };
}

function parseJson(out: CallOutput, operation: string): unknown {
  try {
    return JSON.parse(out.stdout);
  } catch {
    throw new SpireApiError(operation, "INTERNAL", "the CLI did not print JSON");
  }
}

export class RunCommandSpireServer implements SpireServer {
  private readonly executor: RunCommandExecutor;
  private readonly trustDomain: string;
  private readonly createBatchSize: number;
  private readonly updateBatchSize: number;
  private readonly deleteBatchSize: number;
  private readonly registerSecret: (value: string) => void;

  constructor(o: RunCommandSpireServerOptions) {
    this.trustDomain = validateTrustDomainInput(o.trustDomain);
    this.executor = new RunCommandExecutor(o);
    this.createBatchSize = validateInteger(o.createBatchSize ?? 50, "createBatchSize", 1, 500);
    this.updateBatchSize = validateInteger(o.updateBatchSize ?? 50, "updateBatchSize", 1, 500);
    this.deleteBatchSize = validateInteger(o.deleteBatchSize ?? 200, "deleteBatchSize", 1, 1000);
    this.registerSecret = o.registerSecret ?? registerSecret;
  }

  /** Runs the calls on the VM (see RunCommandExecutor.runCalls). */
  runCalls(calls: readonly CliCall[]): Promise<CallOutput[]> {
    return this.executor.runCalls(calls);
  }

  /** One call in its own script, as a single result (throws its failure as SpireApiError). */
  private async single(call: CliCall, operation: string): Promise<CallOutput> {
    const [out] = await this.runCalls([call]);
    if (!out) throw new SpireApiError(operation, "INTERNAL", "no output");
    if (out.exitCode !== 0) {
      const f = cliFailure(out);
      throw new SpireApiError(operation, f.code, f.message);
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // SpireServer

  async createJoinTokens(aliases: readonly string[], ttlSeconds: number): Promise<JoinToken[]> {
    const ttl = validateTtlSeconds(ttlSeconds, "ttlSeconds", 1);
    const ids = aliases.map((a, i) => validateSpiffeIdInput(a, `aliases[${i}]`, this.trustDomain));
    if (ids.length === 0) return [];
    const outputs = await this.runCalls(ids.map((alias) => ({ op: "token_generate" as const, alias, ttl })));
    return this.parseTokens(ids, outputs);
  }

  async listAgents(filter?: AgentFilter): Promise<Agent[]> {
    const f = validateAgentFilter(filter);
    const out = await this.single(
      {
        op: "agent_list",
        attestationType: f.byAttestationType,
        banned: f.byBanned,
        canReattest: f.byCanReattest,
      },
      "agent list",
    );
    const parsed = ListAgentsResponse.safeParse(parseJson(out, "agent list"));
    if (!parsed.success) throw new SpireApiError("agent list", "INTERNAL", "unexpected output");
    return parsed.data.agents.map(agentFromWire);
  }

  /** A join-token agent's ID embeds the token: such an ID goes to the VM only as its hash. */
  private agentCall(verb: "evict" | "ban", agentId: string): CliCall {
    if (new URL(agentId).pathname.startsWith("/spire/agent/join_token/")) {
      const idSha256 = createHash("sha256").update(agentId).digest("hex");
      return verb === "evict"
        ? { op: "agent_evict_by_hash", idSha256, trustDomain: this.trustDomain }
        : { op: "agent_ban_by_hash", idSha256, trustDomain: this.trustDomain };
    }
    return verb === "evict" ? { op: "agent_evict", id: agentId } : { op: "agent_ban", id: agentId };
  }

  async deleteAgent(id: string): Promise<{ deleted: boolean }> {
    const agentId = validateSpiffeIdInput(id, "id", this.trustDomain);
    try {
      await this.single(this.agentCall("evict", agentId), "agent evict");
      return { deleted: true };
    } catch (err) {
      if (err instanceof SpireApiError && err.code === "NOT_FOUND") return { deleted: false };
      throw err;
    }
  }

  async banAgent(id: string): Promise<void> {
    const agentId = validateSpiffeIdInput(id, "id", this.trustDomain);
    await this.single(this.agentCall("ban", agentId), "agent ban");
  }

  async listEntries(filter: EntryFilter): Promise<Entry[]> {
    const parentId =
      filter.byParentId === undefined
        ? undefined
        : validateSpiffeIdInput(filter.byParentId, "filter.byParentId", this.trustDomain);
    const spiffeId =
      filter.bySpiffeId === undefined
        ? undefined
        : validateSpiffeIdInput(filter.bySpiffeId, "filter.bySpiffeId", this.trustDomain);
    const out = await this.single({ op: "entry_show", parentId, spiffeId }, "entry show");
    return this.parseEntries(out);
  }

  private parseEntries(out: CallOutput): Entry[] {
    const parsed = ListEntriesResponse.safeParse(parseJson(out, "entry show"));
    if (!parsed.success) throw new SpireApiError("entry show", "INTERNAL", "unexpected output");
    return parsed.data.entries.map(entryFromWire);
  }

  async createEntries(specs: readonly EntrySpec[]): Promise<CreateEntryResult[]> {
    const valid = specs.map((s, i) => validateEntrySpec(s, `specs[${i}]`, this.trustDomain));
    const batches = chunk(valid, this.createBatchSize);
    const outputs = await this.runCalls(
      batches.map((b) => ({ op: "entry_create" as const, entriesJson: entriesJson(b) })),
    );
    const { results, existing } = parseCreateOutputs(batches, outputs);
    if (existing.length > 0) await this.resolveExisting(results, existing);
    return results;
  }

  /**
   * Entries then tokens in ONE script (one run-command, however many apps). ALREADY_EXISTS counts
   * as existing without the extra lookup createEntries makes: the deploy needs only the count.
   */
  async applyDeployBatch(request: DeployBatchRequest): Promise<DeployBatchResult> {
    const creates = chunk(
      request.create.map((s, i) => validateEntrySpec(s, `create[${i}]`, this.trustDomain)),
      this.createBatchSize,
    );
    const updates = chunk(
      request.update.map((u, i) => validateEntryUpdate(u, `update[${i}]`, this.trustDomain)),
      this.updateBatchSize,
    );
    const deletes = chunk(
      request.delete.map((id, i) => validateEntryId(id, `delete[${i}]`)),
      this.deleteBatchSize,
    );
    const ttl = validateTtlSeconds(request.tokens.ttlSeconds, "ttlSeconds", 1);
    const aliases = request.tokens.aliases.map((a, i) =>
      validateSpiffeIdInput(a, `aliases[${i}]`, this.trustDomain),
    );
    const calls: CliCall[] = [
      ...creates.map((b) => ({ op: "entry_create" as const, entriesJson: entriesJson(b) })),
      ...updates.map((b) => ({ op: "entry_update" as const, entriesJson: entriesJson(b) })),
      ...deletes.map((b) => ({ op: "entry_delete" as const, idsJson: JSON.stringify({ ids: b }) })),
      ...aliases.map((alias) => ({ op: "token_generate" as const, alias, ttl })),
    ];
    if (calls.length === 0) return summarizeDeployBatch([], [], [], []);
    const outputs = await this.runCalls(calls);
    let at = 0;
    const take = (n: number) => {
      const part = outputs.slice(at, at + n);
      at += n;
      return part;
    };
    const created = parseCreateOutputs(creates, take(creates.length)).results;
    const updated = parseUpdateOutputs(updates, take(updates.length));
    const deleted = parseDeleteOutputs(deletes, take(deletes.length));
    const tokens = this.parseTokens(aliases, take(aliases.length));
    return summarizeDeployBatch(created, updated, deleted, tokens);
  }

  private parseTokens(ids: string[], outputs: CallOutput[]): JoinToken[] {
    const tokens: JoinToken[] = [];
    const failures: string[] = [];
    outputs.forEach((out, i) => {
      if (out.exitCode !== 0) {
        const f = cliFailure(out);
        failures.push(`${ids[i]}: ${f.code} ${f.message}`);
        return;
      }
      const parsed = WireJoinToken.safeParse(parseJson(out, "token generate"));
      if (!parsed.success) {
        failures.push(`${ids[i]}: unexpected output`);
        return;
      }
      this.registerSecret(parsed.data.value);
      tokens.push({
        value: parsed.data.value,
        expiresAt: new Date(parsed.data.expires_at * 1000),
        alias: ids[i] as string,
        agentId: joinTokenAgentId(this.trustDomain, parsed.data.value),
      });
    });
    if (failures.length > 0) {
      // Tokens created alongside are not returned: unused, they expire after the TTL.
      throw new SpireApiError(
        "token generate",
        "UNKNOWN",
        `${failures.length} of ${ids.length} failed: ${failures.join("; ")}`,
      );
    }
    return tokens;
  }

  /** Replaces ALREADY_EXISTS placeholders with the existing entries (one more script). */
  private async resolveExisting(results: CreateEntryResult[], positions: number[]): Promise<void> {
    const specs = positions.map((p) => (results[p] as { spec: EntrySpec }).spec);
    const outputs = await this.runCalls(
      specs.map((s) => ({ op: "entry_show" as const, spiffeId: s.spiffeId, parentId: s.parentId })),
    );
    positions.forEach((p, i) => {
      const out = outputs[i] as CallOutput;
      const spec = specs[i] as EntrySpec;
      if (out.exitCode !== 0) return;
      const found = this.parseEntries(out).find((e) => sameSelectors(e.selectors, spec.selectors));
      if (found) results[p] = { status: "exists", entry: found };
    });
  }

  async updateEntries(updates: readonly EntryUpdate[]): Promise<UpdateEntryResult[]> {
    const valid = updates.map((u, i) => validateEntryUpdate(u, `updates[${i}]`, this.trustDomain));
    const batches = chunk(valid, this.updateBatchSize);
    const outputs = await this.runCalls(
      batches.map((b) => ({ op: "entry_update" as const, entriesJson: entriesJson(b) })),
    );
    return parseUpdateOutputs(batches, outputs);
  }

  async deleteEntries(ids: readonly string[]): Promise<DeleteEntryResult[]> {
    const valid = ids.map((id, i) => validateEntryId(id, `ids[${i}]`));
    const batches = chunk(valid, this.deleteBatchSize);
    const outputs = await this.runCalls(
      batches.map((b) => ({ op: "entry_delete" as const, idsJson: JSON.stringify({ ids: b }) })),
    );
    return parseDeleteOutputs(batches, outputs);
  }

  async getBundle(): Promise<TrustBundle> {
    const out = await this.single({ op: "bundle_show" }, "bundle show");
    const parsed = WireBundle.safeParse(parseJson(out, "bundle show"));
    if (!parsed.success) throw new SpireApiError("bundle show", "INTERNAL", "unexpected output");
    return bundleFromWire(parsed.data);
  }

  async mintX509Svid(): Promise<X509Svid> {
    // The CLI cannot sign a caller's CSR (`x509 mint` has no CSR flag and makes its own key): a
    // caller that holds its own key mints over the Server API; mintX509SvidWithKey is the CLI's way.
    throw new SpireUnsupportedError(
      "mintX509Svid (from a CSR) is not available through run-commands: use mintX509SvidWithKey, or the gRPC adapter",
    );
  }

  /**
   * `x509 mint` on the VM: an X509-SVID and the key the server made for it. The key crosses ARM
   * only inside the run-command's sealed output (encrypted on the VM to this call's one-off key),
   * so nothing readable from ARM holds it; here it is registered as a secret at once.
   */
  async mintX509SvidWithKey(spiffeId: string, ttlSeconds: number): Promise<X509Svid & { keyPem: string }> {
    const id = validateSpiffeIdInput(spiffeId, "spiffeId", this.trustDomain);
    const ttl = validateTtlSeconds(ttlSeconds, "ttlSeconds", 1);
    const out = await this.single({ op: "x509_mint", spiffeId: id, ttlSeconds: ttl }, "x509 mint");
    const parsed = WireMintedSvid.safeParse(parseJson(out, "x509 mint"));
    if (!parsed.success) throw new SpireApiError("x509 mint", "INTERNAL", "unexpected output");
    const keyPem = derToPem(Buffer.from(parsed.data.private_key, "base64"), "PRIVATE KEY");
    this.registerSecret(keyPem);
    this.registerSecret(parsed.data.private_key);
    const certChainDer = parsed.data.x509_svid.map((c) => Buffer.from(c, "base64"));
    const leaf = new X509Certificate(certChainDer[0] as Buffer);
    return {
      spiffeId: id,
      certChainDer,
      certChainPem: certChainDer.map((c) => derToPem(c)).join(""),
      expiresAt: new Date(leaf.validTo),
      keyPem,
    };
  }

  async health(): Promise<ServerHealth> {
    try {
      const [out] = await this.runCalls([{ op: "healthcheck" }]);
      if (!out) return { healthy: false, detail: "no output" };
      return out.exitCode === 0
        ? { healthy: true, detail: out.stdout.trim() || "healthcheck passed" }
        : { healthy: false, detail: cliFailure(out).message };
    } catch (err) {
      return { healthy: false, detail: err instanceof Error ? err.message : String(err) };
    }
  }

  /**
   * healthcheck, bundle show and entry show in ONE script. A failed script (the VM agent, the
   * lease) throws as any call does; a server that does not answer comes back unhealthy, with
   * whether its container is stopped or missing (what `docker exec` printed).
   */
  async readDeployState(): Promise<DeployState> {
    const [health, bundle, entries] = await this.runCalls([
      { op: "healthcheck" },
      { op: "bundle_show" },
      { op: "entry_show" },
    ]);
    if (!health || !bundle || !entries) throw new SpireApiError("deploy state", "INTERNAL", "no output");
    if (health.exitCode !== 0 || bundle.exitCode !== 0 || entries.exitCode !== 0) {
      const failed = [health, bundle, entries].find((o) => o.exitCode !== 0) as CallOutput;
      const text = `${failed.stderr}\n${failed.stdout}`;
      const container = /is not running/i.test(text)
        ? ("stopped" as const)
        : /No such container/i.test(text)
          ? ("missing" as const)
          : undefined;
      return {
        health: { healthy: false, detail: cliFailure(failed).message },
        ...(container && { container }),
      };
    }
    const parsed = WireBundle.safeParse(parseJson(bundle, "bundle show"));
    if (!parsed.success) throw new SpireApiError("bundle show", "INTERNAL", "unexpected output");
    return {
      health: { healthy: true, detail: health.stdout.trim() || "healthcheck passed" },
      bundle: bundleFromWire(parsed.data),
      entries: this.parseEntries(entries),
    };
  }

  /** `docker start` of the server's container (never rm): the deploy's way back for a stopped one. */
  async startServerContainer(): Promise<{ started: boolean; detail: string }> {
    const [out] = await this.runCalls([{ op: "server_container_start" }]);
    if (!out) return { started: false, detail: "no output" };
    if (out.exitCode !== 0) return { started: false, detail: cliFailure(out).message };
    return out.stdout.trim() === "running"
      ? { started: false, detail: "the server's container is running; nothing started" }
      : { started: true, detail: "docker start exited 0" };
  }

  /** Every app's wait-for-the-new-agent and eviction of the old ones in ONE script (agents_rollover). */
  async rolloverAgents(request: RolloverRequest): Promise<RolloverResult[]> {
    const wait = validateInteger(request.waitSeconds, "waitSeconds", 0, 3600);
    const calls = request.apps.map((a, i) => {
      const alias = validateSpiffeIdInput(a.alias, `apps[${i}].alias`, this.trustDomain);
      if (!/^[0-9a-f]{64}$/.test(a.keepTokenSha256))
        throw new SpireApiError(
          "agents rollover",
          "INVALID_ARGUMENT",
          `apps[${i}].keepTokenSha256 is not a SHA-256`,
        );
      return {
        op: "agents_rollover" as const,
        alias,
        keepTokenSha256: a.keepTokenSha256,
        trustDomain: this.trustDomain,
        // The first app's wait covers the others' attestations, which run in parallel.
        waitSeconds: wait,
      };
    });
    if (calls.length === 0) return [];
    const outputs = await this.runCalls(calls);
    return outputs.map((out) => {
      if (out.exitCode !== 0)
        return { attested: false, evicted: 0, stale: 0, detail: cliFailure(out).message };
      const parsed = RolloverOutput.safeParse(safeJson(out.stdout));
      if (!parsed.success) return { attested: false, evicted: 0, stale: 0, detail: "unexpected output" };
      return parsed.data;
    });
  }

  async close(): Promise<void> {
    await this.executor.close();
  }
}

/** `x509 mint -output json` (1.15.3): base64 DER of the chain (leaf first), the PKCS#8 key and the roots. */
const WireMintedSvid = z.object({
  x509_svid: z.array(z.string().min(1)).min(1),
  private_key: z.string().min(1),
  root_cas: z.array(z.string()).optional(),
});

const RolloverOutput = z.object({
  attested: z.boolean(),
  evicted: z.number().int().min(0),
  stale: z.number().int().min(0),
});

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The `{"entries":[...]}` document `entry create|update -data` reads (spire common.RegistrationEntry JSON). */
export function entriesJson(specs: readonly (EntrySpec & { id?: string })[]): string {
  return JSON.stringify({
    entries: specs.map((s) => ({
      ...(s.id ? { entry_id: s.id } : {}),
      spiffe_id: s.spiffeId,
      parent_id: s.parentId,
      selectors: s.selectors.map(({ type, value }) => ({ type, value })),
      x509_svid_ttl: s.x509SvidTtl ?? 0,
      jwt_svid_ttl: s.jwtSvidTtl ?? 0,
      admin: s.admin ?? false,
      downstream: s.downstream ?? false,
      dns_names: s.dnsNames ?? [],
      hint: s.hint ?? "",
    })),
  });
}

/** Per-item results of entry_create scripts; `existing` marks ALREADY_EXISTS placeholders. */
function parseCreateOutputs(
  batches: EntrySpec[][],
  outputs: CallOutput[],
): { results: CreateEntryResult[]; existing: number[] } {
  const results: CreateEntryResult[] = [];
  const existing: number[] = [];
  batches.forEach((batch, b) => {
    const out = outputs[b] as CallOutput;
    const results0 = out.exitCode === 0 ? BatchEntryResponse.safeParse(safeJson(out.stdout)) : undefined;
    if (!results0?.success || results0.data.results.length !== batch.length) {
      const f =
        out.exitCode === 0 ? { code: "INTERNAL" as const, message: "unexpected output" } : cliFailure(out);
      for (const spec of batch) results.push({ status: "failed", spec, ...f });
      return;
    }
    results0.data.results.forEach((r, i) => {
      const spec = batch[i] as EntrySpec;
      const code = r.status?.code ?? 0;
      if (code === 0 && r.entry?.id) results.push({ status: "created", entry: entryFromWire(r.entry) });
      else {
        // The CLI replaces an ALREADY_EXISTS result's entry with the request: look the entry up below.
        if (statusCodeName(code) === "ALREADY_EXISTS") existing.push(results.length);
        results.push({ status: "failed", spec, ...failureFromStatus(r.status) });
      }
    });
  });
  return { results, existing };
}

function parseUpdateOutputs(batches: EntryUpdate[][], outputs: CallOutput[]): UpdateEntryResult[] {
  const results: UpdateEntryResult[] = [];
  batches.forEach((batch, b) => {
    const out = outputs[b] as CallOutput;
    const parsed = out.exitCode === 0 ? BatchEntryResponse.safeParse(safeJson(out.stdout)) : undefined;
    if (!parsed?.success || parsed.data.results.length !== batch.length) {
      const f =
        out.exitCode === 0 ? { code: "INTERNAL" as const, message: "unexpected output" } : cliFailure(out);
      for (const u of batch) results.push({ status: "failed", id: u.id, ...f });
      return;
    }
    parsed.data.results.forEach((r, i) => {
      results.push(updateResultFromWire(r, (batch[i] as EntryUpdate).id));
    });
  });
  return results;
}

function parseDeleteOutputs(batches: string[][], outputs: CallOutput[]): DeleteEntryResult[] {
  const results: DeleteEntryResult[] = [];
  batches.forEach((batch, b) => {
    const out = outputs[b] as CallOutput;
    const parsed = out.exitCode === 0 ? BatchDeleteEntryResponse.safeParse(safeJson(out.stdout)) : undefined;
    if (!parsed?.success || parsed.data.results.length !== batch.length) {
      const f =
        out.exitCode === 0 ? { code: "INTERNAL" as const, message: "unexpected output" } : cliFailure(out);
      for (const id of batch) results.push({ status: "failed", id, ...f });
      return;
    }
    parsed.data.results.forEach((r, i) => {
      results.push(deleteResultFromWire(r, batch[i] as string));
    });
  });
  return results;
}

export function createRunCommandSpireServer(options: RunCommandSpireServerOptions): SpireServer {
  return new RunCommandSpireServer(options);
}
