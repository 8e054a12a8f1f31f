import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildScript,
  type CliCall,
  type ExecMode,
  parseScriptOutput,
} from "../../shared/spire/runcommand/script.js";

/*
 * The deploy's run-command scripts (agents_rollover: wait for the new agent, evict the old ones;
 * server_container_start), run by bash against a fake `docker` that answers like spire-server and
 * records every invocation.
 */

const NONCE = "fedcba9876543210fedcba9876543210";
const DOCKER: ExecMode = {
  kind: "docker",
  container: "spire-server",
  serverPath: "/opt/spire/bin/spire-server",
};
const TD = "example.org";
const ALIAS = `spiffe://${TD}/agent/app1`;
const NEW = "aaaaaaaa-0000-4000-8000-000000000001";
const OLD = "bbbbbbbb-0000-4000-8000-000000000002";
const sha = (s: string) => createHash("sha256").update(s).digest("hex");
const agentPath = (t: string) => `/spire/agent/join_token/${t}`;

let dir: string;
let binDir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "spa-rollover-"));
  binDir = join(dir, "bin");
  mkdirSync(binDir);
  // FAKE_AGENTS: the tokens `agent list` shows; FAKE_PARENTS: the alias entries' parents' tokens;
  // FAKE_EVICT=fail: `agent evict` answers NotFound (an alias entry whose token never attested).
  writeFileSync(
    join(binDir, "docker"),
    [
      "#!/bin/bash",
      `n=$(ls "${dir}"/call-*.argv 2>/dev/null | wc -l)`,
      `printf '%s\\0' "$@" > "${dir}/call-$n.argv"`,
      // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion, not a template
      'ids() { local t out=""; for t in $1; do out="$out{\\"id\\":{\\"trust_domain\\":\\"example.org\\",\\"path\\":\\"/spire/agent/join_token/$t\\"}},"; done; printf "%s" "${out%,}"; }',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion, not a template
      'parents() { local t out=""; for t in $1; do out="$out{\\"id\\":\\"e-$t\\",\\"spiffe_id\\":{\\"trust_domain\\":\\"example.org\\",\\"path\\":\\"/agent/app1\\"},\\"parent_id\\":{\\"trust_domain\\":\\"example.org\\",\\"path\\":\\"/spire/agent/join_token/$t\\"}},"; done; printf "%s" "${out%,}"; }',
      'case "$5 $6" in',
      '  "agent list") printf \'{"agents":[%s]}\\n\' "$(ids "$FAKE_AGENTS")" ;;',
      '  "entry show") printf \'{"entries":[%s]}\\n\' "$(parents "$FAKE_PARENTS")" ;;',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion, not a template
      '  "agent evict") if [ "${FAKE_EVICT:-}" = fail ]; then echo "Error: rpc error: code = NotFound desc = agent not found" >&2; exit 1; fi; echo "{}" ;;',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion, not a template
      '  *) if [ "$1" = start ]; then echo spire-server; elif [ "$1" = inspect ]; then echo "${FAKE_RUNNING:-false}"; else echo "{}"; fi ;;',
      "esac",
    ].join("\n"),
  );
  chmodSync(join(binDir, "docker"), 0o755);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(calls: CliCall[], fake: Record<string, string | undefined>) {
  for (const f of readdirSync(dir).filter((x) => x.endsWith(".argv"))) rmSync(join(dir, f));
  const built = buildScript(calls, DOCKER, NONCE, 30);
  const env: NodeJS.ProcessEnv = { PATH: `${binDir}:${process.env.PATH}`, ...fake };
  for (const p of built.parameters) env[p.name] = p.value;
  const res = spawnSync("bash", ["-c", built.script], { env, encoding: "utf8", timeout: 30_000 });
  const argvs = readdirSync(dir)
    .filter((x) => x.endsWith(".argv"))
    .sort((a, b) => Number(a.match(/\d+/)?.[0]) - Number(b.match(/\d+/)?.[0]))
    .map((f) => readFileSync(join(dir, f), "utf8").split("\0").slice(0, -1));
  return { res, parsed: parseScriptOutput(res.stdout, NONCE), argvs };
}

const rollover = (waitSeconds: number, alias = ALIAS): CliCall => ({
  op: "agents_rollover",
  alias,
  keepTokenSha256: sha(NEW),
  trustDomain: TD,
  waitSeconds,
});

describe("agents_rollover", () => {
  it.each([
    {
      name: "new agent attested: the old agent holding the alias is evicted, the new one kept",
      fake: { FAKE_AGENTS: `${NEW} ${OLD}`, FAKE_PARENTS: `${NEW} ${OLD}` },
      exit: 0,
      out: { attested: true, evicted: 1, stale: 0 },
      evicted: [`spiffe://${TD}${agentPath(OLD)}`],
    },
    {
      name: "an old alias entry whose agent is gone counts as stale, not evicted",
      fake: { FAKE_AGENTS: NEW, FAKE_PARENTS: `${NEW} ${OLD}`, FAKE_EVICT: "fail" },
      exit: 0,
      out: { attested: true, evicted: 0, stale: 1 },
      evicted: [`spiffe://${TD}${agentPath(OLD)}`],
    },
    {
      name: "first attestation (no old agent): nothing evicted",
      fake: { FAKE_AGENTS: NEW, FAKE_PARENTS: NEW },
      exit: 0,
      out: { attested: true, evicted: 0, stale: 0 },
      evicted: [],
    },
    {
      name: "new agent never attests: NotFound after the bounded wait, nothing evicted",
      fake: { FAKE_AGENTS: OLD, FAKE_PARENTS: OLD },
      exit: 1,
      out: undefined,
      evicted: [],
    },
  ])("$name", ({ fake, exit, out, evicted }) => {
    const { res, parsed, argvs } = run([rollover(0)], fake);
    expect(res.status).toBe(0);
    expect(parsed.ended).toBe(true);
    const call = parsed.calls.get(0);
    expect(call?.exitCode).toBe(exit);
    if (out) expect(JSON.parse(call?.stdout ?? "")).toEqual(out);
    else expect(call?.stderr).toMatch(/code = NotFound/);
    const evictions = argvs.filter((a) => a[4] === "agent" && a[5] === "evict").map((a) => a[7]);
    expect(evictions).toEqual(evicted);
    // The token travels as its hash only: never in a parameter.
    const built = buildScript([rollover(0)], DOCKER, NONCE);
    expect(JSON.stringify(built.parameters)).not.toContain(NEW);
  });

  it("one deadline for the whole script: a second app does not wait again", () => {
    const started = Date.now();
    const { parsed } = run([rollover(2), rollover(2, `spiffe://${TD}/agent/app2`)], {
      FAKE_AGENTS: OLD,
      FAKE_PARENTS: "",
    });
    expect(parsed.calls.get(0)?.exitCode).toBe(1);
    expect(parsed.calls.get(1)?.exitCode).toBe(1);
    // Two apps waiting 2 s each in turn would take >= 4 s.
    expect(Date.now() - started).toBeLessThan(4_000);
  });
});

describe("server_container_start", () => {
  it.each([
    {
      name: "a stopped container is started (docker start, never rm)",
      running: "false",
      argvs: [
        ["inspect", "-f", "{{.State.Running}}", "spire-server"],
        ["start", "spire-server"],
      ],
      stdout: "spire-server\n",
    },
    {
      name: "a running container is left alone",
      running: "true",
      argvs: [["inspect", "-f", "{{.State.Running}}", "spire-server"]],
      stdout: "running\n",
    },
  ])("$name", ({ running, argvs: expected, stdout }) => {
    const { parsed, argvs } = run([{ op: "server_container_start" }], { FAKE_RUNNING: running });
    expect(parsed.calls.get(0)?.exitCode).toBe(0);
    expect(parsed.calls.get(0)?.stdout).toBe(stdout);
    expect(argvs).toEqual(expected);
  });

  it("a container docker cannot inspect (gone) fails, and nothing is started", () => {
    const { parsed, argvs } = run([{ op: "server_container_start" }], {
      FAKE_RUNNING: "Error: No such object: spire-server",
    });
    expect(parsed.calls.get(0)?.exitCode).toBe(1);
    expect(argvs.filter((a) => a[0] === "start")).toEqual([]);
  });

  it("is refused outside docker mode", () => {
    expect(() =>
      buildScript([{ op: "server_container_start" }], { kind: "direct", serverPath: "/x" }, NONCE),
    ).toThrow(/docker mode/);
  });
});
