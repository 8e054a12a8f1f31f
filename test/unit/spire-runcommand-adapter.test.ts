import { constants, createCipheriv, createHmac, publicEncrypt, randomBytes } from "node:crypto";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { SpireApiError, SpireInputError, SpireUnsupportedError } from "../../shared/spire/errors.js";
import {
  RunCommandError,
  RunCommandSpireServer,
  type RunCommandSpireServerOptions,
} from "../../shared/spire/runcommand/adapter.js";
import type { RunCommandsClient, VirtualMachineRunCommand } from "../../shared/spire/runcommand/azure.js";
import { type VmLock, VmLockTimeoutError } from "../../shared/spire/runcommand/lock.js";
import type { SpireLogger } from "../../shared/spire/types.js";

const TD = "example.org";
const TOKEN = "1cac57fa-5657-497a-8d7e-7074f4f70774";
const JT_AGENT = `spiffe://${TD}/spire/agent/join_token/${TOKEN}`;

interface CallResult {
  exit?: number;
  stdout?: string;
  stderr?: string;
}

interface Step {
  exec?: string;
  prov?: string;
}

/** What the fake "VM" does with one run-command. */
interface Behaviour {
  /** States returned by successive GETs; the last one repeats. */
  states?: Step[];
  /** Produces the per-call results from the ops in the script. Omit for no output. */
  respond?: (ops: string[], params: Record<string, string>) => CallResult[];
  /** Raw output instead of `respond` (`key` is the key line, `seal` seals a stream). */
  rawOutput?: (nonce: string, s: { key: string; seal(text: string): string }) => string;
  /** The PUT throws this. */
  createError?: Error;
  /** ...and the resource exists anyway. */
  existsAfterCreateError?: boolean;
}

const notFound = () => Object.assign(new Error("not found"), { statusCode: 404 });

class ScriptedClient implements RunCommandsClient {
  readonly events: string[] = [];
  readonly bodies: VirtualMachineRunCommand[] = [];
  private readonly runs = new Map<
    string,
    { behaviour: Behaviour; gets: number; body: VirtualMachineRunCommand }
  >();

  constructor(
    private readonly behaviours: Behaviour[],
    private readonly clock: FakeClock,
  ) {}

  async createOrUpdate(
    _rg: string,
    _vm: string,
    name: string,
    body: VirtualMachineRunCommand,
  ): Promise<unknown> {
    const behaviour = this.behaviours.shift();
    if (!behaviour) throw new Error("unexpected run-command");
    this.events.push(`create ${name} @${this.clock.t}`);
    this.bodies.push(body);
    if (behaviour.createError) {
      if (behaviour.existsAfterCreateError) this.runs.set(name, { behaviour, gets: 0, body });
      throw behaviour.createError;
    }
    this.runs.set(name, { behaviour, gets: 0, body });
    return {};
  }

  async getByVirtualMachine(_rg: string, _vm: string, name: string): Promise<VirtualMachineRunCommand> {
    const run = this.runs.get(name);
    if (!run) throw notFound();
    const states = run.behaviour.states ?? [{ exec: "Succeeded", prov: "Succeeded" }];
    const step = states[Math.min(run.gets, states.length - 1)] as Step;
    run.gets++;
    this.events.push(`get ${name} ${step.exec}/${step.prov}`);
    return {
      ...run.body,
      provisioningState: step.prov,
      instanceView: { executionState: step.exec, output: this.output(run) },
    };
  }

  async delete(_rg: string, _vm: string, name: string): Promise<unknown> {
    this.events.push(`delete ${name} @${this.clock.t}`);
    this.runs.delete(name);
    return {};
  }

  private output(run: { behaviour: Behaviour; body: VirtualMachineRunCommand }): string {
    const params = Object.fromEntries(
      [...(run.body.parameters ?? []), ...(run.body.protectedParameters ?? [])].map((p) => [p.name, p.value]),
    );
    const nonce = params.SPA_NONCE ?? "";
    const sealer = vmSealer(params.SPA_SEAL_KEY ?? "");
    if (run.behaviour.rawOutput)
      return run.behaviour.rawOutput(nonce, {
        key: `@@spa:${nonce} key ${sealer.wrapped}`,
        seal: sealer.seal,
      });
    if (!run.behaviour.respond) return "";
    const ops = [...(run.body.source?.script ?? "").matchAll(/^# \d+: (\w+)$/gm)].map((m) => m[1] as string);
    const results = run.behaviour.respond(ops, params);
    const enc = (s: string | undefined) => (s ? sealer.seal(s) : "-");
    const m = `@@spa:${nonce}`;
    return [
      `${m} key ${sealer.wrapped}`,
      `${m} begin ${ops.length}`,
      ...results.map((r, i) => `${m} ${i} ${r.exit ?? 0} ${enc(r.stdout)} ${enc(r.stderr)}`),
      `${m} end`,
    ].join("\n");
  }
}

/** What the script does on the VM with openssl (./script.ts), done with node:crypto. */
function vmSealer(publicKeyPem: string): { wrapped: string; seal(text: string): string } {
  const hex = randomBytes(64).toString("hex");
  const wrapped = publicEncrypt(
    { key: publicKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
    Buffer.from(hex, "latin1"),
  ).toString("base64");
  const ek = Buffer.from(hex.slice(0, 64), "hex");
  const mk = Buffer.from(hex.slice(64), "hex");
  return {
    wrapped,
    seal(text) {
      const iv = randomBytes(16);
      const c = createCipheriv("aes-256-cbc", ek, iv);
      const ct = Buffer.concat([c.update(gzipSync(Buffer.from(text))), c.final()]);
      const ivHex = iv.toString("hex");
      const mac = createHmac("sha256", mk).update(ivHex, "latin1").update(ct).digest("hex");
      return `e:${ivHex}:${mac}:${ct.toString("base64")}`;
    },
  };
}

class FakeClock {
  t = 1_800_000_000_000;
  readonly sleeps: number[] = [];
  now = () => this.t;
  sleep = async (ms: number) => {
    this.sleeps.push(ms);
    this.t += ms;
  };
}

function setup(behaviours: Behaviour[], extra: Partial<RunCommandSpireServerOptions> = {}) {
  const clock = new FakeClock();
  const client = new ScriptedClient(behaviours, clock);
  const logged: string[] = [];
  const logger: SpireLogger = {
    debug: (m, f) => logged.push(`${m} ${JSON.stringify(f)}`),
    info: (m, f) => logged.push(`${m} ${JSON.stringify(f)}`),
    warn: (m, f) => logged.push(`${m} ${JSON.stringify(f)}`),
    error: (m, f) => logged.push(`${m} ${JSON.stringify(f)}`),
  };
  const secrets: string[] = [];
  let n = 0;
  const server = new RunCommandSpireServer({
    client,
    resourceGroup: "rg-spire",
    vmName: "vm-spire",
    location: "westeurope",
    trustDomain: TD,
    pollIntervalMs: 5_000,
    cooldownMs: 10_000,
    backoffBaseMs: 10_000,
    clock,
    logger,
    registerSecret: (v) => secrets.push(v),
    randomHex: (bytes) =>
      (n++)
        .toString(16)
        .padStart(2 * bytes, "0")
        .slice(-2 * bytes),
    ...extra,
  });
  return { server, client, clock, logged, secrets };
}

const tokenJson = (value = TOKEN) => JSON.stringify({ expires_at: "1795432253", value });

describe("run-command lifecycle", () => {
  it("polls executionState AND provisioningState to terminal before it deletes", async () => {
    const { server, client, clock } = setup([
      {
        states: [
          { exec: "Pending", prov: "Creating" },
          { exec: "Running", prov: "Creating" },
          { exec: "Succeeded", prov: "Updating" }, // guest done, ARM not: deleting now would wedge the VM
          { exec: "Succeeded", prov: "Updating" },
          { exec: "Succeeded", prov: "Succeeded" },
        ],
        respond: () => [{ stdout: "Server is healthy." }],
      },
    ]);
    expect(await server.health()).toEqual({ healthy: true, detail: "Server is healthy." });
    const gets = client.events.filter((e) => e.startsWith("get"));
    expect(gets).toHaveLength(5);
    expect(client.events.at(-1)).toMatch(/^delete /);
    expect(client.events.findIndex((e) => e.startsWith("delete"))).toBeGreaterThan(
      client.events.findIndex((e) => e.includes("Succeeded/Succeeded")),
    );
    // ...and the cooldown after the delete, still holding the VM's lock.
    // Polls 1 s, 2 s, 4 s, then every pollIntervalMs (5 s); then the 10 s cooldown.
    expect(clock.sleeps).toEqual([1_000, 2_000, 4_000, 5_000, 10_000]);
  });

  it("sends the server-side timeout, parameters and never a failing deployment", async () => {
    const { server, client } = setup([{ respond: () => [{ stdout: tokenJson() }] }], { timeoutSeconds: 120 });
    await server.createJoinTokens([`spiffe://${TD}/agent/app1`], 600);
    const body = client.bodies[0] as VirtualMachineRunCommand;
    expect(body.timeoutInSeconds).toBe(120);
    expect(body.treatFailureAsDeploymentFailure).toBe(false);
    expect(body.location).toBe("westeurope");
    // Every value is protected (ARM never returns protectedParameters); nothing in plain parameters.
    expect(body.parameters ?? []).toEqual([]);
    expect(body.protectedParameters?.find((p) => p.name === "SPA_0_ALIAS")?.value).toBe(
      `spiffe://${TD}/agent/app1`,
    );
    expect(body.source?.script).not.toContain("agent/app1");
  });

  it("waits the cooldown between run-commands", async () => {
    const { server, client } = setup([
      { respond: () => [{ stdout: "Server is healthy." }] },
      { respond: () => [{ stdout: "Server is healthy." }] },
    ]);
    await server.health();
    await server.health();
    const deleted = Number(client.events.find((e) => e.startsWith("delete"))?.split("@")[1]);
    const created = Number(client.events.filter((e) => e.startsWith("create"))[1]?.split("@")[1]);
    expect(created - deleted).toBeGreaterThanOrEqual(10_000);
  });

  it("serialises concurrent callers: one run-command at a time", async () => {
    const { server, client } = setup([
      {
        states: [
          { exec: "Running", prov: "Creating" },
          { exec: "Succeeded", prov: "Succeeded" },
        ],
        respond: () => [{ stdout: "ok" }],
      },
      { respond: () => [{ stdout: "ok" }] },
    ]);
    await Promise.all([server.health(), server.health()]);
    const kinds = client.events.map((e) => e.split(" ")[0]);
    expect(kinds.indexOf("delete")).toBeLessThan(kinds.lastIndexOf("create"));
  });

  it("retries with exponential backoff when the create fails and nothing was created", async () => {
    const { server, client, clock } = setup([
      { createError: new Error("429 Too Many Requests") },
      { createError: new Error("Conflict: another operation in progress") },
      { respond: () => [{ stdout: "ok" }] },
    ]);
    expect((await server.health()).healthy).toBe(true);
    expect(client.events.filter((e) => e.startsWith("create"))).toHaveLength(3);
    // backoff 10 s then 20 s, each with ±20 % jitter, plus cooldowns
    const backoffs = clock.sleeps.filter((s) => s >= 8_000);
    expect(backoffs.length).toBeGreaterThanOrEqual(2);
    expect(backoffs.some((s) => s >= 16_000 && s <= 24_000)).toBe(true);
  });

  it("follows a run-command whose create errored but which exists, instead of running it twice", async () => {
    const { server, client } = setup([
      {
        createError: new Error("socket hang up"),
        existsAfterCreateError: true,
        respond: () => [{ stdout: tokenJson() }],
      },
    ]);
    const [token] = await server.createJoinTokens([`spiffe://${TD}/agent/app1`], 600);
    expect(token?.value).toBe(TOKEN);
    expect(client.events.filter((e) => e.startsWith("create"))).toHaveLength(1);
  });

  it("holds the VM's lock from create through the cooldown after the delete, and releases it on failure", async () => {
    const events: string[] = [];
    let clockRef: { t: number } | undefined;
    const lock: VmLock = {
      async acquire() {
        events.push(`acquire @${clockRef?.t}`);
        return {
          held: true,
          async release() {
            events.push(`release @${clockRef?.t}`);
          },
        };
      },
    };
    const { server, client, clock } = setup(
      [{ respond: () => [{ stdout: "Server is healthy." }] }, { createError: new Error("boom") }],
      { lock, maxAttempts: 1 },
    );
    clockRef = clock;
    const t0 = clock.t;
    expect((await server.health()).healthy).toBe(true);
    await server.close();
    const deleted = client.events.find((e) => e.startsWith("delete")) ?? "";
    const deletedAt = Number(deleted.split("@")[1]);
    // Released only once the cooldown after the delete passed (10 s in setup).
    expect(events).toEqual([`acquire @${t0}`, `release @${deletedAt + 10_000}`]);
    events.length = 0;
    await expect(server.listAgents()).rejects.toThrow(/create failed: boom/);
    await server.close();
    expect(events).toHaveLength(2);
    expect(events[1]).toMatch(/^release /);
  });

  it("fails with UNAVAILABLE, creating nothing, when the VM's lock cannot be had", async () => {
    const lock: VmLock = {
      acquire: async () => {
        throw new VmLockTimeoutError("another worker held the VM's run-command lease for over 900 s");
      },
    };
    const { server, client } = setup([], { lock });
    await expect(server.listAgents()).rejects.toMatchObject({ code: "UNAVAILABLE" });
    expect(client.events).toEqual([]);
  });

  it("gives up after maxAttempts", async () => {
    const { server } = setup([{ createError: new Error("boom") }, { createError: new Error("boom") }], {
      maxAttempts: 2,
    });
    await expect(server.listAgents()).rejects.toThrow(/create failed: boom/);
  });

  it("leaves a run-command that never reaches a terminal state in place and fails", async () => {
    const { server, client } = setup([{ states: [{ exec: "Succeeded", prov: "Updating" }] }], {
      timeoutSeconds: 60,
    });
    const err = await server.listAgents().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunCommandError);
    expect((err as RunCommandError).code).toBe("DEADLINE_EXCEEDED");
    expect((err as RunCommandError).details).toMatchObject({
      safeToRepeat: false,
      provisioningState: "Updating",
    });
    expect(client.events.some((e) => e.startsWith("delete"))).toBe(false);
  });

  it("repeats a run-command whose script printed nothing", async () => {
    const { server, client } = setup([
      { states: [{ exec: "Failed", prov: "Succeeded" }], rawOutput: () => "" },
      { respond: () => [{ stdout: '{"agents":[],"next_page_token":""}' }] },
    ]);
    expect(await server.listAgents()).toEqual([]);
    expect(client.events.filter((e) => e.startsWith("delete"))).toHaveLength(2);
  });

  it("does not repeat a script that started; calls it did not reach are reported", async () => {
    const { server, client } = setup(
      [
        {
          states: [{ exec: "TimedOut", prov: "Succeeded" }],
          rawOutput: (n, s) => `${s.key}\n@@spa:${n} begin 2\n@@spa:${n} 0 0 ${s.seal(tokenJson())} -`,
        },
      ],
      {},
    );
    await expect(
      server.createJoinTokens([`spiffe://${TD}/agent/a1`, `spiffe://${TD}/agent/a2`], 600),
    ).rejects.toThrow(/1 of 2 failed: spiffe:\/\/example.org\/agent\/a2: UNKNOWN the run-command timed out/);
    expect(client.events.filter((e) => e.startsWith("create"))).toHaveLength(1);
  });

  it("says when output was cut to the instance view's last 4 KB", async () => {
    const { server } = setup([
      {
        rawOutput: (n, s) =>
          `${"x".repeat(50)}\n@@spa:${n} 1 0 ${s.seal(tokenJson())} -\n${s.key}\n@@spa:${n} end`,
      },
    ]);
    await expect(
      server.createJoinTokens([`spiffe://${TD}/agent/a1`, `spiffe://${TD}/agent/a2`], 600),
    ).rejects.toThrow(/output was cut off/);
  });

  it("stops on a fatal preamble without retrying", async () => {
    const { server } = setup([{ rawOutput: (n) => `@@spa:${n} fatal missing gzip` }]);
    await expect(server.listAgents()).rejects.toThrow(/could not start: missing gzip/);
  });
});

describe("SpireServer over run-commands", () => {
  it("join tokens: one script for the batch, secrets registered, never logged", async () => {
    const tokens = ["11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"];
    const { server, client, secrets, logged } = setup([
      { respond: (ops) => ops.map((_, i) => ({ stdout: tokenJson(tokens[i]) })) },
    ]);
    const res = await server.createJoinTokens([`spiffe://${TD}/agent/a1`, `spiffe://${TD}/agent/a2`], 600);
    expect(res.map((t) => [t.alias, t.agentId])).toEqual([
      [`spiffe://${TD}/agent/a1`, `spiffe://${TD}/spire/agent/join_token/${tokens[0]}`],
      [`spiffe://${TD}/agent/a2`, `spiffe://${TD}/spire/agent/join_token/${tokens[1]}`],
    ]);
    expect(client.bodies).toHaveLength(1);
    expect(secrets).toEqual(tokens);
    for (const line of logged) for (const t of tokens) expect(line).not.toContain(t);
  });

  it("splits long batches into several scripts", async () => {
    const { server, client } = setup(
      [
        { respond: (ops) => ops.map(() => ({ stdout: tokenJson() })) },
        { respond: (ops) => ops.map(() => ({ stdout: tokenJson() })) },
      ],
      { maxCallsPerScript: 3 },
    );
    const aliases = [1, 2, 3, 4, 5].map((i) => `spiffe://${TD}/agent/a${i}`);
    expect(await server.createJoinTokens(aliases, 600)).toHaveLength(5);
    expect(
      client.bodies.map((b) => b.protectedParameters?.filter((p) => p.name.endsWith("_ALIAS")).length),
    ).toEqual([3, 2]);
  });

  it("maps CLI errors: NotFound evict is 'not deleted', PermissionDenied and docker errors throw", async () => {
    const { server } = setup([
      { respond: () => [{ exit: 1, stderr: "Error: rpc error: code = NotFound desc = agent not found\n" }] },
      {
        respond: () => [
          { exit: 1, stderr: "Error: rpc error: code = PermissionDenied desc = authorization denied\n" },
        ],
      },
      {
        respond: () => [{ exit: 1, stderr: "Error response from daemon: No such container: spire-server\n" }],
      },
      { respond: () => [{ exit: 124 }] },
    ]);
    expect(await server.deleteAgent(JT_AGENT)).toEqual({ deleted: false });
    await expect(server.banAgent(JT_AGENT)).rejects.toMatchObject({ code: "PERMISSION_DENIED" });
    const err = await server.getBundle().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpireApiError);
    expect(err).toMatchObject({ code: "UNAVAILABLE", retryable: true });
    await expect(server.listEntries({})).rejects.toMatchObject({ code: "DEADLINE_EXCEEDED" });
  });

  it("createEntries is idempotent: ALREADY_EXISTS is looked up and returned as 'exists'", async () => {
    const entry = (id: string) => ({
      id,
      spiffe_id: { trust_domain: TD, path: "/w" },
      parent_id: { trust_domain: TD, path: "/agent/a1" },
      selectors: [{ type: "unix", value: "uid:0" }],
      x509_svid_ttl: 3600,
    });
    const { server, client } = setup([
      {
        respond: () => [
          {
            stdout: JSON.stringify({
              results: [
                {
                  status: { code: 6, message: "similar entry already exists" },
                  entry: { ...entry(""), created_at: "0" },
                },
                { status: { code: 3, message: "invalid parent" }, entry: entry("") },
              ],
            }),
          },
        ],
      },
      {
        respond: (ops, params) => {
          expect(ops).toEqual(["entry_show"]);
          expect(params.SPA_0_SPIFFE_ID).toBe(`spiffe://${TD}/w`);
          expect(params.SPA_0_PARENT_ID).toBe(`spiffe://${TD}/agent/a1`);
          return [{ stdout: JSON.stringify({ entries: [entry("e-1")], next_page_token: "" }) }];
        },
      },
    ]);
    const spec = {
      spiffeId: `spiffe://${TD}/w`,
      parentId: `spiffe://${TD}/agent/a1`,
      selectors: [{ type: "unix", value: "uid:0" }],
    };
    const res = await server.createEntries([spec, { ...spec, spiffeId: `spiffe://${TD}/w2` }]);
    expect(res[0]).toMatchObject({ status: "exists", entry: { id: "e-1", spiffeId: `spiffe://${TD}/w` } });
    expect(res[1]).toMatchObject({ status: "failed", code: "INVALID_ARGUMENT", message: "invalid parent" });
    expect(client.bodies).toHaveLength(2);
  });

  it("deleteEntries: NOT_FOUND counts as done", async () => {
    const { server, client } = setup([
      {
        respond: () => [
          {
            stdout: JSON.stringify({
              results: [
                { id: "a", status: { code: 0, message: "OK" } },
                { id: "b", status: { code: 5, message: "entry not found" } },
              ],
            }),
          },
        ],
      },
    ]);
    expect(await server.deleteEntries(["a", "b"])).toEqual([
      { status: "deleted", id: "a" },
      { status: "not_found", id: "b" },
    ]);
    expect(
      JSON.parse(client.bodies[0]?.protectedParameters?.find((p) => p.name === "SPA_0_DATA")?.value ?? ""),
    ).toEqual({ ids: ["a", "b"] });
  });

  it("mintX509Svid is not offered through run-commands", async () => {
    const { server } = setup([]);
    await expect(server.mintX509Svid()).rejects.toBeInstanceOf(SpireUnsupportedError);
  });
});

describe("only validated values reach a run-command", () => {
  const attempts: [string, (s: RunCommandSpireServer) => Promise<unknown>][] = [
    ["alias with a quote", (s) => s.createJoinTokens([`spiffe://${TD}/agent/a";reboot;"`], 600)],
    ["alias with $()", (s) => s.createJoinTokens([`spiffe://${TD}/agent/$(reboot)`], 600)],
    ["alias with a backquote", (s) => s.createJoinTokens([`spiffe://${TD}/agent/\`id\``], 600)],
    ["alias with a newline", (s) => s.createJoinTokens([`spiffe://${TD}/agent/a\nreboot`], 600)],
    ["alias that is a flag", (s) => s.createJoinTokens(["-socketPath"], 600)],
    ["alias in another trust domain", (s) => s.createJoinTokens(["spiffe://evil.org/agent/a"], 600)],
    ["fractional ttl", (s) => s.createJoinTokens([`spiffe://${TD}/agent/a`], 1.5)],
    ["negative ttl", (s) => s.createJoinTokens([`spiffe://${TD}/agent/a`], -1)],
    ["NaN ttl", (s) => s.createJoinTokens([`spiffe://${TD}/agent/a`], Number.NaN)],
    ["agent id with a space", (s) => s.deleteAgent(`spiffe://${TD}/spire/agent/x y`)],
    [
      "selector with a semicolon",
      (s) =>
        s.createEntries([
          {
            spiffeId: `spiffe://${TD}/w`,
            parentId: `spiffe://${TD}/agent/a`,
            selectors: [{ type: "unix", value: "uid:0;reboot" }],
          },
        ]),
    ],
    [
      "selector type with a space",
      (s) =>
        s.createEntries([
          {
            spiffeId: `spiffe://${TD}/w`,
            parentId: `spiffe://${TD}/agent/a`,
            selectors: [{ type: "un ix", value: "uid:0" }],
          },
        ]),
    ],
    [
      "hint with a dollar",
      (s) =>
        s.createEntries([
          {
            spiffeId: `spiffe://${TD}/w`,
            parentId: `spiffe://${TD}/agent/a`,
            selectors: [{ type: "unix", value: "uid:0" }],
            hint: "$HOME",
          },
        ]),
    ],
    ["entry id with a space", (s) => s.deleteEntries(["a b"])],
    ["entry id that is a flag", (s) => s.deleteEntries(["-file"])],
    ["filter with a pipe", (s) => s.listEntries({ byParentId: `spiffe://${TD}/a|b` })],
    ["attestation type with a quote", (s) => s.listAgents({ byAttestationType: "join_token'" })],
  ];

  it.each(attempts)("refuses %s before any run-command", async (_name, call) => {
    const { server, client } = setup([{ respond: () => [{ stdout: "{}" }] }]);
    await expect(call(server)).rejects.toBeInstanceOf(SpireInputError);
    expect(client.bodies).toHaveLength(0);
  });

  it.each([
    [{ resourceGroup: "rg; reboot" }],
    [{ vmName: "vm name" }],
    [{ location: "West Europe" }],
    [
      {
        exec: {
          kind: "docker" as const,
          container: "spire server",
          serverPath: "/opt/spire/bin/spire-server",
        },
      },
    ],
    [
      {
        exec: {
          kind: "docker" as const,
          container: "spire-server",
          serverPath: "/opt/spire/bin/spire-server; reboot",
        },
      },
    ],
    [{ exec: { kind: "direct" as const, serverPath: "relative/spire-server" } }],
  ])("refuses configuration %j", (bad) => {
    expect(() => setup([], bad)).toThrow(SpireInputError);
  });
});
