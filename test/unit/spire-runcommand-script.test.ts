import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { entriesJson } from "../../shared/spire/runcommand/adapter.js";
import {
  buildScript,
  type CliCall,
  type ExecMode,
  parseScriptOutput,
} from "../../shared/spire/runcommand/script.js";
import { newSealKeyPair } from "../../shared/spire/runcommand/sealing.js";

const NONCE = "0123456789abcdef0123456789abcdef";
const DOCKER: ExecMode = {
  kind: "docker",
  container: "spire-server",
  serverPath: "/opt/spire/bin/spire-server",
};
const ALIAS = "spiffe://example.org/agent/app1";

function paramsOf(built: { parameters: { name: string; value: string }[] }): Record<string, string> {
  return Object.fromEntries(built.parameters.map((p) => [p.name, p.value]));
}

describe("buildScript", () => {
  it("keeps every value out of the script text; they travel as parameters", () => {
    const calls: CliCall[] = [
      { op: "token_generate", alias: ALIAS, ttl: 600 },
      { op: "entry_show", parentId: "spiffe://example.org/agent/app1" },
      {
        op: "entry_create",
        entriesJson: entriesJson([
          {
            spiffeId: "spiffe://example.org/w",
            parentId: ALIAS,
            selectors: [{ type: "unix", value: "uid:0" }],
          },
        ]),
      },
      {
        op: "agent_evict",
        id: "spiffe://example.org/spire/agent/join_token/9a52a0e7-9293-4c86-a2f4-b631a6e0296f",
      },
    ];
    const built = buildScript(calls, DOCKER, NONCE);
    for (const p of built.parameters.filter((x) => /^SPA_[0-9]+_/.test(x.name) && x.name !== "SPA_0_TTL")) {
      expect(built.script).not.toContain(p.value);
    }
    expect(built.script).not.toContain("example.org");
    expect(built.script).not.toContain(NONCE);
    const params = paramsOf(built);
    expect(params).toMatchObject({
      SPA_NONCE: NONCE,
      SPA_CONTAINER: "spire-server",
      SPA_SERVER_BIN: "/opt/spire/bin/spire-server",
      SPA_0_ALIAS: ALIAS,
      SPA_0_TTL: "600",
      SPA_1_PARENT_ID: ALIAS,
    });
    expect(JSON.parse(params.SPA_2_DATA ?? "")).toEqual({
      entries: [
        {
          spiffe_id: "spiffe://example.org/w",
          parent_id: ALIAS,
          selectors: [{ type: "unix", value: "uid:0" }],
          x509_svid_ttl: 0,
          jwt_svid_ttl: 0,
          admin: false,
          downstream: false,
          dns_names: [],
          hint: "",
        },
      ],
    });
  });

  it("depends only on the kinds of calls: other values give the same text", () => {
    const a = buildScript([{ op: "token_generate", alias: ALIAS, ttl: 600 }], DOCKER, NONCE);
    const b = buildScript(
      [{ op: "token_generate", alias: "spiffe://x.y/agent/other", ttl: 60 }],
      DOCKER,
      "f".repeat(32),
    );
    expect(a.script).toBe(b.script);
  });

  it("expands each value once, inside double quotes", () => {
    const built = buildScript(
      [
        { op: "token_generate", alias: ALIAS, ttl: 600 },
        { op: "agent_list", attestationType: "join_token", banned: false },
        { op: "entry_delete", idsJson: '{"ids":["a"]}' },
      ],
      DOCKER,
      NONCE,
    );
    const refs = [...built.script.matchAll(/\$\{?(SPA_[A-Z0-9_]+)/g)].map((m) => m[1]);
    for (const p of built.parameters) expect(refs).toContain(p.name);
    // No unquoted expansion of a parameter anywhere.
    expect(built.script).not.toMatch(/[^"{]\$\{?SPA_[0-9]/);
    expect(built.script).not.toMatch(/\beval\b/);
  });

  it("uses the socket flag and no docker in direct mode", () => {
    const built = buildScript(
      [{ op: "healthcheck" }],
      { kind: "direct", serverPath: "/usr/bin/spire-server", socketPath: "/run/s.sock" },
      NONCE,
    );
    expect(built.script).not.toContain("docker");
    expect(paramsOf(built).SPA_SOCKET).toBe("/run/s.sock");
  });

  it("refuses a bad nonce or no calls", () => {
    expect(() => buildScript([{ op: "healthcheck" }], DOCKER, "$(reboot)")).toThrow(/nonce/);
    expect(() => buildScript([], DOCKER, NONCE)).toThrow(/no calls/);
  });
});

// ---------------------------------------------------------------------------------------------
// The script under bash, with a fake `docker` that records its argv and stdin

describe("the generated script under bash", () => {
  let dir: string;
  let binDir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "spa-script-"));
    binDir = join(dir, "bin");
    spawnSync("mkdir", ["-p", binDir]);
    // Records argv NUL-separated, one file per invocation, plus stdin; answers like spire-server.
    writeFileSync(
      join(binDir, "docker"),
      [
        "#!/bin/bash",
        `n=$(ls "${dir}"/call-*.argv 2>/dev/null | wc -l)`,
        `printf '%s\\0' "$@" > "${dir}/call-$n.argv"`,
        `if [ "$1" = exec ] && [ "$2" = -i ]; then cat > "${dir}/call-$n.stdin"; fi`,
        'case "$5 $6" in',
        '  "token generate") echo \'{"expires_at":"1795432253","value":"1cac57fa-5657-497a-8d7e-7074f4f70774"}\' ;;',
        '  "agent evict") echo "Error: rpc error: code = NotFound desc = agent not found" >&2; exit 1 ;;',
        '  "entry create") printf \'{"results":[%s]}\\n\' "$(head -c 3000 /dev/zero | tr "\\0" " ")" ;;',
        '  "agent list") echo \'{"agents":[{"id":{"trust_domain":"example.org","path":"/spire/agent/join_token/aaaaaaaa-0000-4000-8000-000000000001"}}, {"id": {"trust_domain": "example.org", "path": "/spire/agent/join_token/bbbbbbbb-0000-4000-8000-000000000002"}}]}\' ;;',
        "  *) echo '{}' ;;",
        "esac",
      ].join("\n"),
    );
    chmodSync(join(binDir, "docker"), 0o755);
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function run(calls: CliCall[], sealWith?: string) {
    const built = buildScript(calls, DOCKER, NONCE, 120, sealWith === undefined ? {} : { sealWith });
    const env: NodeJS.ProcessEnv = { PATH: `${binDir}:${process.env.PATH}` };
    for (const p of built.parameters) env[p.name] = p.value;
    const res = spawnSync("bash", ["-c", built.script], { env, encoding: "utf8", timeout: 20_000 });
    return { res, parsed: parseScriptOutput(res.stdout, NONCE) };
  }

  const argv = (n: number) =>
    readFileSync(join(dir, `call-${n}.argv`), "utf8")
      .split("\0")
      .slice(0, -1);

  it("passes each value as exactly one argument, even one full of shell syntax", () => {
    // buildScript is never given unvalidated values by the adapter; this shows the text cannot be changed anyway.
    const hostile = `spiffe://example.org/x"; touch ${dir}/pwned; echo "$(touch ${dir}/pwned2) \`id\` 'q' \\ *`;
    const { res, parsed } = run([
      { op: "token_generate", alias: hostile, ttl: 600 },
      { op: "agent_evict", id: ALIAS },
      {
        op: "entry_create",
        entriesJson: entriesJson([
          {
            spiffeId: "spiffe://example.org/w",
            parentId: ALIAS,
            selectors: [{ type: "unix", value: "uid:0" }],
          },
        ]),
      },
    ]);
    expect(res.status).toBe(0);
    expect(existsSync(join(dir, "pwned"))).toBe(false);
    expect(existsSync(join(dir, "pwned2"))).toBe(false);
    expect(argv(0)).toEqual([
      "exec",
      "-i",
      "spire-server",
      "/opt/spire/bin/spire-server",
      "token",
      "generate",
      "-spiffeID",
      hostile,
      "-ttl",
      "600",
      "-output",
      "json",
    ]);
    expect(argv(1)).toEqual([
      "exec",
      "-i",
      "spire-server",
      "/opt/spire/bin/spire-server",
      "agent",
      "evict",
      "-spiffeID",
      ALIAS,
      "-output",
      "json",
    ]);
    expect(argv(2).slice(4)).toEqual(["entry", "create", "-data", "-", "-output", "json"]);
    expect(JSON.parse(readFileSync(join(dir, "call-2.stdin"), "utf8")).entries[0].spiffe_id).toBe(
      "spiffe://example.org/w",
    );

    expect(parsed.begun && parsed.ended).toBe(true);
    expect(parsed.calls.get(0)).toMatchObject({ exitCode: 0, stderr: "" });
    expect(JSON.parse(parsed.calls.get(0)?.stdout ?? "").value).toBe("1cac57fa-5657-497a-8d7e-7074f4f70774");
    expect(parsed.calls.get(1)).toMatchObject({ exitCode: 1, stdout: "" });
    expect(parsed.calls.get(1)?.stderr).toContain("code = NotFound");
    // Large output is gzipped: the line is far shorter than the 3 KB the call printed.
    const line = res.stdout.split("\n").find((l) => l.startsWith(`@@spa:${NONCE} 2 `)) ?? "";
    expect(line).toContain(" z:");
    expect(line.length).toBeLessThan(400);
    expect(parsed.calls.get(2)?.stdout.length).toBeGreaterThan(3000);
  });

  it("evicts a join-token agent by the hash of its ID: the token never travels as a parameter", () => {
    const id = "spiffe://example.org/spire/agent/join_token/bbbbbbbb-0000-4000-8000-000000000002";
    const idSha256 = createHash("sha256").update(id).digest("hex");
    const missing = createHash("sha256").update(`${id}x`).digest("hex");
    const built = buildScript(
      [
        { op: "agent_evict_by_hash", idSha256, trustDomain: "example.org" },
        { op: "agent_ban_by_hash", idSha256: missing, trustDomain: "example.org" },
      ],
      DOCKER,
      NONCE,
    );
    expect(JSON.stringify(built.parameters)).not.toContain("bbbbbbbb");
    expect(built.script).not.toContain("bbbbbbbb");
    const before = readdirSync(dir).filter((f) => f.endsWith(".argv")).length;
    const env: NodeJS.ProcessEnv = { PATH: `${binDir}:${process.env.PATH}` };
    for (const p of built.parameters) env[p.name] = p.value;
    const res = spawnSync("bash", ["-c", built.script], { env, encoding: "utf8", timeout: 20_000 });
    const parsed = parseScriptOutput(res.stdout, NONCE);
    // The fake server answers every evict with NotFound: what matters is which ID it was given.
    expect(parsed.calls.get(0)?.stderr).toContain("desc = agent not found");
    // list, evict (the matching ID), list; no ban: nothing matched, which reads as NotFound.
    expect(argv(before).slice(4, 6)).toEqual(["agent", "list"]);
    expect(argv(before + 1).slice(4)).toEqual(["agent", "evict", "-spiffeID", id, "-output", "json"]);
    expect(argv(before + 2).slice(4, 6)).toEqual(["agent", "list"]);
    expect(existsSync(join(dir, `call-${before + 3}.argv`))).toBe(false);
    expect(parsed.calls.get(1)?.exitCode).toBe(1);
    expect(parsed.calls.get(1)?.stderr).toContain("code = NotFound desc = no agent with that ID");
  });

  it("seals every stream with openssl so that only the one-off private key reads them", () => {
    const seal = newSealKeyPair();
    const calls: CliCall[] = [
      { op: "token_generate", alias: ALIAS, ttl: 600 },
      { op: "agent_evict", id: ALIAS },
    ];
    const built = buildScript(calls, DOCKER, NONCE, 120, { sealWith: seal.publicKeyPem });
    const env: NodeJS.ProcessEnv = { PATH: `${binDir}:${process.env.PATH}` };
    for (const p of built.parameters) env[p.name] = p.value;
    const res = spawnSync("bash", ["-c", built.script], { env, encoding: "utf8", timeout: 20_000 });
    expect(res.status, res.stderr).toBe(0);
    // What ARM (instance view, output blob) would hold: no token, no error text, in any form.
    expect(res.stdout).not.toContain("1cac57fa");
    expect(res.stdout).not.toContain(Buffer.from("1cac57fa").toString("base64").slice(0, 8));
    expect(res.stdout).not.toContain("NotFound");
    expect(res.stdout).not.toMatch(/ [bz]:/);
    const parsed = parseScriptOutput(res.stdout, NONCE, seal.privateKey);
    expect(parsed.begun && parsed.ended).toBe(true);
    expect(JSON.parse(parsed.calls.get(0)?.stdout ?? "").value).toBe("1cac57fa-5657-497a-8d7e-7074f4f70774");
    expect(parsed.calls.get(1)?.stderr).toContain("code = NotFound");
    // Another key reads nothing; a flipped ciphertext byte fails the MAC and counts as missing.
    expect(parseScriptOutput(res.stdout, NONCE, newSealKeyPair().privateKey).calls.size).toBe(0);
    const tampered = res.stdout.replace(
      /( 0 0 e:[0-9a-f]{32}:[0-9a-f]{64}:)(.)/,
      (_, a, c) => a + (c === "A" ? "B" : "A"),
    );
    expect(parseScriptOutput(tampered, NONCE, seal.privateKey).calls.has(0)).toBe(false);
    // Plain streams are refused when sealed output is expected (a forged, unsealed result).
    const forged = `@@spa:${NONCE} key x\n@@spa:${NONCE} begin 1\n@@spa:${NONCE} 0 0 b:e30= -\n@@spa:${NONCE} end`;
    expect(parseScriptOutput(forged, NONCE, seal.privateKey).calls.size).toBe(0);
  });

  it("server_container_restart runs `docker restart <container>` and nothing else (never rm)", () => {
    const before = readdirSync(dir).filter((f) => f.endsWith(".argv")).length;
    const { res, parsed } = run([{ op: "server_container_restart" }]);
    expect(res.status).toBe(0);
    expect(parsed.ended).toBe(true);
    expect(parsed.calls.get(0)?.exitCode).toBe(0);
    expect(readdirSync(dir).filter((f) => f.endsWith(".argv")).length).toBe(before + 1);
    expect(argv(before)).toEqual(["restart", "spire-server"]);
  });

  it("server_container_restart is refused outside docker mode", () => {
    expect(() =>
      buildScript(
        [{ op: "server_container_restart" }],
        { kind: "direct", serverPath: "/opt/spire/bin/spire-server" },
        NONCE,
      ),
    ).toThrow(/docker mode/);
  });
});

// ---------------------------------------------------------------------------------------------

describe("parseScriptOutput", () => {
  const b = (s: string) => (s === "" ? "-" : `b:${Buffer.from(s).toString("base64")}`);
  const z = (s: string) => `z:${gzipSync(Buffer.from(s)).toString("base64")}`;
  const M = `@@spa:${NONCE}`;

  it("decodes plain, gzipped and empty streams", () => {
    const out = [
      `${M} begin 2`,
      `${M} 0 0 ${b('{"a":1}')} -`,
      `${M} 1 1 - ${z("Error: boom")}`,
      `${M} end`,
    ].join("\n");
    const p = parseScriptOutput(out, NONCE);
    expect(p.begun && p.ended).toBe(true);
    expect(p.calls.get(0)).toEqual({ index: 0, exitCode: 0, stdout: '{"a":1}', stderr: "" });
    expect(p.calls.get(1)).toEqual({ index: 1, exitCode: 1, stdout: "", stderr: "Error: boom" });
  });

  it("ignores lines with another nonce (output cannot forge results)", () => {
    const forged = `@@spa:ffffffffffffffffffffffffffffffff 0 0 ${b('{"value":"forged"}')} -`;
    const p = parseScriptOutput(
      [`${M} begin 1`, forged, `${M} 0 0 ${b("{}")} -`, `${M} end`].join("\n"),
      NONCE,
    );
    expect(p.calls.get(0)?.stdout).toBe("{}");
  });

  it("sees truncation (no begin line) and a fatal preamble", () => {
    const cut = `pa:${NONCE} 0 0 ${b("x")} -\n${M} 1 0 ${b("{}")} -\n${M} end`;
    const p = parseScriptOutput(cut, NONCE);
    expect(p.begun).toBe(false);
    expect([...p.calls.keys()]).toEqual([1]);
    expect(parseScriptOutput(`${M} fatal missing gzip`, NONCE).fatal).toBe("missing gzip");
  });

  it("treats damaged lines as missing", () => {
    const p = parseScriptOutput(`${M} begin 1\n${M} 0 0 z:bm90Z3ppcA== -\n${M} end`, NONCE);
    expect(p.calls.size).toBe(0);
  });
});

describe("x509 mint", () => {
  const call: CliCall = {
    op: "x509_mint",
    spiffeId: "spiffe://example.org/spire-autopilot/admin",
    ttlSeconds: 120,
  };

  it("is refused without sealed output: the CLI prints the key it made", () => {
    expect(() => buildScript([call], DOCKER, NONCE)).toThrow(/must be sealed/);
  });

  it("passes the ID and a Go duration as parameters only", () => {
    const built = buildScript([call], DOCKER, NONCE, 120, { sealWith: newSealKeyPair().publicKeyPem });
    expect(built.script).toContain("x509 mint");
    expect(built.script).not.toContain("spire-autopilot/admin");
    expect(built.parameters).toContainEqual({ name: "SPA_0_TTL", value: "120s" });
    expect(built.parameters).toContainEqual({ name: "SPA_0_SPIFFE_ID", value: call.spiffeId });
  });
});
