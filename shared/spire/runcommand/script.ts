/**
 * Turns a batch of spire-server CLI calls into ONE bash script for a managed run-command, and
 * parses what it printed. Pure.
 *
 * Safety: the script text depends only on the kinds of calls (and the exec mode), never on a
 * value a caller supplied. Every value (SPIFFE IDs, TTLs, entry JSON, the container name...) is
 * validated by the adapter and travels as a run-command parameter, which Linux run-commands expose
 * as an environment variable; the script only ever expands them inside double quotes as single
 * arguments ("$SPA_0_ALIAS"), so no value can add a word, a command or a redirection.
 *
 * Output protocol (stdout): `@@spa:<nonce> begin <n>`, then per call one line
 * `@@spa:<nonce> <index> <exit> <stdout> <stderr>` where each stream is `-` (empty), `b:<base64>`
 * or `z:<base64 of gzip>` (larger outputs: the instance view keeps only the last 4 KB), then
 * `@@spa:<nonce> end`. The nonce is random per run, so nothing a SPIRE output contains can
 * forge a marker line.
 *
 * Sealed output (`sealWith`, what the executor always uses): the instance view (and the output
 * blob) is readable by anyone with Reader on the VM, and `token generate`, `agent list` and
 * `entry show` print join tokens. So the script makes a fresh AES-256 + HMAC-SHA256 key with
 * openssl, wraps it with the caller's one-off RSA public key (RSA-OAEP-SHA256, line
 * `@@spa:<nonce> key <base64>`), and prints every stream as `e:<iv hex>:<mac hex>:<base64 of
 * AES-256-CBC(gzip(stream))>`, the MAC over the IV's hex and the ciphertext (encrypt-then-MAC).
 * Only the holder of the private key (./sealing.ts) can read any of it.
 */
import type { KeyObject } from "node:crypto";
import { gunzipSync } from "node:zlib";
import type { RunCommandInputParameter } from "./azure.js";
import { openStream, type SealKey, unwrapSealKey } from "./sealing.js";

export type CliCall =
  | { op: "token_generate"; alias: string; ttl: number }
  | { op: "agent_list"; attestationType?: string; banned?: boolean; canReattest?: boolean }
  | { op: "agent_evict"; id: string }
  | { op: "agent_ban"; id: string }
  /**
   * Evict/ban the agent whose SPIFFE ID hashes (SHA-256, hex) to `idSha256`: a join-token agent's
   * ID embeds its token, so it must not travel to ARM even as a protected parameter. The script
   * finds the ID in `agent list` on the VM.
   */
  | { op: "agent_evict_by_hash"; idSha256: string; trustDomain: string }
  | { op: "agent_ban_by_hash"; idSha256: string; trustDomain: string }
  | { op: "entry_show"; parentId?: string; spiffeId?: string }
  /** `entries` is the JSON document `entry create -data -` reads ({"entries":[...]}). */
  | { op: "entry_create"; entriesJson: string }
  | { op: "entry_update"; entriesJson: string }
  /** `ids` is the JSON document `entry delete -file -` reads ({"ids":[...]}). */
  | { op: "entry_delete"; idsJson: string }
  | { op: "bundle_show" }
  /**
   * `x509 mint`: the server makes the key and prints it with the SVID, so this call is only ever
   * made with sealed output (the adapter refuses otherwise). `ttlSeconds` becomes a Go duration.
   */
  | { op: "x509_mint"; spiffeId: string; ttlSeconds: number }
  | { op: "healthcheck" }
  /**
   * `docker restart <container>`: the health sweep's repair of a hung server (#23). Restart keeps
   * the container and its data dir (datastore, CA keys); the product never removes the container.
   * Docker mode only.
   */
  | { op: "server_container_restart" }
  /**
   * `docker start <container>` when `docker inspect` says it is stopped (prints "running" and
   * changes nothing otherwise): a deploy's way back for a server whose container is stopped.
   * Start, never rm: the container keeps its data dir. Docker mode only.
   */
  | { op: "server_container_start" }
  /**
   * A deploy's last step for one app, on the VM: wait (bounded, `waitSeconds`) until the agent
   * whose join token hashes to `keepTokenSha256` is in `agent list`, then evict every other
   * join-token agent holding the app's alias (from `entry show -spiffeID <alias>`). Prints
   * {"attested":true,"evicted":n,"stale":m}; stale counts alias entries left with no agent to evict.
   * Tokens are named only by their hashes, so none reaches ARM.
   */
  | {
      op: "agents_rollover";
      alias: string;
      keepTokenSha256: string;
      trustDomain: string;
      waitSeconds: number;
    };

export type ExecMode =
  /** The seed deployment: `docker exec -i <container> <serverPath> ...` on the VM. */
  | { kind: "docker"; container: string; serverPath: string; socketPath?: string }
  /** The binary directly (a VM without Docker; the local integration test). */
  | { kind: "direct"; serverPath: string; socketPath?: string };

export interface BuiltScript {
  script: string;
  parameters: RunCommandInputParameter[];
  nonce: string;
}

const P = "SPA";

/** Builds the script. Values must already be validated; they only ever become parameters. */
export function buildScript(
  calls: readonly CliCall[],
  exec: ExecMode,
  nonce: string,
  callTimeoutSeconds = 120,
  options: { sealWith?: string } = {},
): BuiltScript {
  if (!/^[0-9a-f]{16,64}$/.test(nonce)) throw new Error("nonce must be 16-64 lowercase hex characters");
  if (calls.length === 0) throw new Error("no calls to run");
  const parameters: RunCommandInputParameter[] = [
    { name: `${P}_NONCE`, value: nonce },
    { name: `${P}_SERVER_BIN`, value: exec.serverPath },
    { name: `${P}_CALL_TIMEOUT`, value: String(callTimeoutSeconds) },
  ];
  if (exec.kind === "docker") parameters.push({ name: `${P}_CONTAINER`, value: exec.container });
  if (exec.socketPath !== undefined) parameters.push({ name: `${P}_SOCKET`, value: exec.socketPath });
  const sealed = options.sealWith !== undefined;
  if (options.sealWith !== undefined) parameters.push({ name: `${P}_SEAL_KEY`, value: options.sealWith });

  const lines: string[] = [
    "#!/bin/bash",
    "# spire-autopilot: a batch of spire-server calls. Values arrive as environment parameters.",
    "set -u",
    "umask 077",
    `M="@@spa:\${${P}_NONCE}"`,
    'T=$(mktemp -d) || { echo "$M fatal mktemp failed"; exit 70; }',
    "trap 'rm -rf \"$T\"' EXIT",
    'for c in gzip base64 wc; do command -v "$c" >/dev/null || { echo "$M fatal missing $c"; exit 71; }; done',
    exec.kind === "docker"
      ? `S=(docker exec -i "\${${P}_CONTAINER}" "\${${P}_SERVER_BIN}")`
      : `S=("\${${P}_SERVER_BIN}")`,
    exec.socketPath !== undefined ? `K=(-socketPath "\${${P}_SOCKET}")` : "K=()",
    `if command -v timeout >/dev/null; then L=(timeout -k 5 "\${${P}_CALL_TIMEOUT}"); else L=(); fi`,
    ...(sealed ? sealPreamble() : plainEncoder()),
    'emit() { printf "%s %s %s %s %s\\n" "$M" "$1" "$2" "$(enc "$T/o")" "$(enc "$T/e")"; }',
    ...(calls.some((c) => c.op === "agent_evict_by_hash" || c.op === "agent_ban_by_hash")
      ? byHashFunction()
      : []),
    ...(calls.some((c) => c.op === "agents_rollover") ? rolloverFunction() : []),
    `echo "$M begin ${calls.length}"`,
  ];

  calls.forEach((call, i) => {
    const v = (name: string, value: string) => {
      const param = `${P}_${i}_${name}`;
      parameters.push({ name: param, value });
      return `"\${${param}}"`;
    };
    const run = (words: string, flags: string[], stdin?: string) => {
      // ${X[@]+"${X[@]}"}: an empty array expands to nothing, also under `set -u` in old bash.
      const cmd = `\${L[@]+"\${L[@]}"} "\${S[@]}" ${words} \${K[@]+"\${K[@]}"} ${flags.join(" ")}`.replace(
        /\s+$/,
        "",
      );
      return stdin === undefined
        ? `${cmd} </dev/null >"$T/o" 2>"$T/e"`
        : `printf '%s' ${stdin} | ${cmd} >"$T/o" 2>"$T/e"`;
    };
    let line: string;
    switch (call.op) {
      case "token_generate":
        line = run("token generate", [
          "-spiffeID",
          v("ALIAS", call.alias),
          "-ttl",
          v("TTL", String(call.ttl)),
          "-output json",
        ]);
        break;
      case "agent_list": {
        const flags: string[] = [];
        if (call.attestationType !== undefined)
          flags.push("-attestationType", v("ATTESTATION_TYPE", call.attestationType));
        if (call.banned !== undefined) flags.push("-banned", v("BANNED", String(call.banned)));
        if (call.canReattest !== undefined)
          flags.push("-canReattest", v("CAN_REATTEST", String(call.canReattest)));
        line = run("agent list", [...flags, "-output json"]);
        break;
      }
      case "agent_evict":
        line = run("agent evict", ["-spiffeID", v("ID", call.id), "-output json"]);
        break;
      case "agent_ban":
        line = run("agent ban", ["-spiffeID", v("ID", call.id), "-output json"]);
        break;
      case "agent_evict_by_hash":
      case "agent_ban_by_hash":
        line = `by_hash ${call.op === "agent_evict_by_hash" ? "evict" : "ban"} ${v("ID_SHA256", call.idSha256)} ${v("TD", call.trustDomain)}`;
        break;
      case "entry_show": {
        const flags: string[] = [];
        if (call.parentId !== undefined) flags.push("-parentID", v("PARENT_ID", call.parentId));
        if (call.spiffeId !== undefined) flags.push("-spiffeID", v("SPIFFE_ID", call.spiffeId));
        line = run("entry show", [...flags, "-output json"]);
        break;
      }
      case "entry_create":
        line = run("entry create", ["-data -", "-output json"], v("DATA", call.entriesJson));
        break;
      case "entry_update":
        line = run("entry update", ["-data -", "-output json"], v("DATA", call.entriesJson));
        break;
      case "entry_delete":
        line = run("entry delete", ["-file -", "-output json"], v("DATA", call.idsJson));
        break;
      case "bundle_show":
        line = run("bundle show", ["-output json"]);
        break;
      case "x509_mint":
        if (!sealed) throw new Error("x509 mint prints a private key: its output must be sealed");
        line = run("x509 mint", [
          "-spiffeID",
          v("SPIFFE_ID", call.spiffeId),
          "-ttl",
          v("TTL", `${call.ttlSeconds}s`),
          "-output json",
        ]);
        break;
      case "healthcheck":
        line = run("healthcheck", []);
        break;
      case "server_container_restart":
        if (exec.kind !== "docker") throw new Error("the server runs in a container only in docker mode");
        line = `\${L[@]+"\${L[@]}"} docker restart "\${${P}_CONTAINER}" </dev/null >"$T/o" 2>"$T/e"`;
        break;
      case "server_container_start":
        if (exec.kind !== "docker") throw new Error("the server runs in a container only in docker mode");
        // Only a stopped container is started; a running one is left alone and reported.
        line = [
          `st=$(\${L[@]+"\${L[@]}"} docker inspect -f '{{.State.Running}}' "\${${P}_CONTAINER}" </dev/null 2>"$T/e")`,
          `if [ "$st" = true ]; then echo running >"$T/o"; : >"$T/e"; (exit 0)`,
          `elif [ "$st" = false ]; then \${L[@]+"\${L[@]}"} docker start "\${${P}_CONTAINER}" </dev/null >"$T/o" 2>"$T/e"`,
          "else (exit 1); fi",
        ].join("\n");
        break;
      case "agents_rollover":
        line = `rollover ${v("KEEP", call.keepTokenSha256)} ${v("ALIAS", call.alias)} ${v("TD", call.trustDomain)} ${v("WAIT", String(call.waitSeconds))}`;
        break;
    }
    lines.push(`# ${i}: ${call.op}`, line, `emit ${i} $?`);
  });
  if (sealed) lines.push('echo "$M key $W"');
  lines.push('echo "$M end"', "");
  return { script: lines.join("\n"), parameters, nonce };
}

/**
 * `by_hash <evict|ban> <sha256> <trust domain>`: lists the agents, picks the one whose SPIFFE ID
 * hashes to <sha256>, and runs the verb on it; no match reads like the server's NotFound.
 */
function byHashFunction(): string[] {
  return [
    'command -v sha256sum >/dev/null || { echo "$M fatal missing sha256sum"; exit 71; }',
    "by_hash() {",
    '  : >"$T/o"',
    `  \${L[@]+"\${L[@]}"} "\${S[@]}" agent list \${K[@]+"\${K[@]}"} -output json </dev/null >"$T/l" 2>"$T/e" || return $?`,
    '  local p id=""',
    "  for p in $(grep -oE '/spire/agent/[A-Za-z0-9._/-]+' \"$T/l\" | sort -u); do",
    '    if [ "$(printf "%s" "spiffe://$3$p" | sha256sum | cut -c1-64)" = "$2" ]; then id="spiffe://$3$p"; break; fi',
    "  done",
    '  if [ -z "$id" ]; then echo "Error: rpc error: code = NotFound desc = no agent with that ID" >"$T/e"; return 1; fi',
    `  \${L[@]+"\${L[@]}"} "\${S[@]}" agent "$1" -spiffeID "$id" \${K[@]+"\${K[@]}"} -output json </dev/null >"$T/o" 2>"$T/e"`,
    "}",
  ];
}

/**
 * `rollover <keep sha256> <alias> <trust domain> <wait s>` (see the agents_rollover call). Join
 * token agent IDs are found by their path; the token is the path's last segment, so its hash is
 * compared, never the token itself passed in. The wait is bounded by SECONDS, polling every 2 s.
 */
function rolloverFunction(): string[] {
  const cli = `\${L[@]+"\${L[@]}"} "\${S[@]}"`;
  const k = `\${K[@]+"\${K[@]}"}`;
  return [
    'command -v sha256sum >/dev/null || { echo "$M fatal missing sha256sum"; exit 71; }',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion, not a template
    "tokhash() { printf '%s' \"${1##*/}\" | sha256sum | cut -c1-64; }",
    "rollover() {",
    '  : >"$T/o"',
    // One deadline for every app of the script: the apps attest in parallel, so the wait is shared.
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion, not a template
    '  : "${RO_END:=$((SECONDS + $4))}"',
    '  local p found="" n=0 stale=0',
    "  while :; do",
    `    ${cli} agent list ${k} -output json </dev/null >"$T/l" 2>"$T/e" || return $?`,
    "    for p in $(grep -oE '/spire/agent/join_token/[A-Za-z0-9._-]+' \"$T/l\" | sort -u); do",
    '      if [ "$(tokhash "$p")" = "$1" ]; then found=1; break; fi',
    "    done",
    '    [ -n "$found" ] && break',
    '    if [ "$SECONDS" -ge "$RO_END" ]; then echo "Error: rpc error: code = NotFound desc = the new agent did not attest within $4 s" >"$T/e"; return 1; fi',
    "    sleep 2",
    "  done",
    `  ${cli} entry show -spiffeID "$2" ${k} -output json </dev/null >"$T/a" 2>"$T/e" || return $?`,
    "  for p in $(grep -oE '/spire/agent/join_token/[A-Za-z0-9._-]+' \"$T/a\" | sort -u); do",
    '    [ "$(tokhash "$p")" = "$1" ] && continue',
    `    if ${cli} agent evict -spiffeID "spiffe://$3$p" ${k} -output json </dev/null >/dev/null 2>"$T/x"; then n=$((n + 1)); else stale=$((stale + 1)); fi`,
    "  done",
    `  printf '{"attested":true,"evicted":%d,"stale":%d}' "$n" "$stale" >"$T/o"`,
    "}",
  ];
}

function plainEncoder(): string[] {
  return [
    "enc() {",
    '  if [ ! -s "$1" ]; then printf -- "-"',
    '  elif [ "$(wc -c <"$1")" -gt 200 ]; then printf "z:"; gzip -c <"$1" | base64 -w0',
    '  else printf "b:"; base64 -w0 <"$1"; fi',
    "}",
  ];
}

// The key is 64 random bytes as hex: the first half encrypts, the second authenticates. It is on
// openssl's command line for a moment, which only root on the VM (who runs SPIRE) could read.
function sealPreamble(): string[] {
  return [
    'command -v openssl >/dev/null || { echo "$M fatal missing openssl"; exit 71; }',
    `printf '%s\n' "\${${P}_SEAL_KEY}" >"$T/seal.pem"`,
    'H=$(openssl rand -hex 64) || { echo "$M fatal openssl rand failed"; exit 72; }',
    'W=$(printf "%s" "$H" | openssl pkeyutl -encrypt -pubin -inkey "$T/seal.pem" -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 | base64 -w0)',
    '[ -n "$W" ] || { echo "$M fatal could not wrap the output key"; exit 72; }',
    'echo "$M key $W"',
    "EK=$(printf '%s' \"$H\" | cut -c1-64); MK=$(printf '%s' \"$H\" | cut -c65-128)",
    "enc() {",
    '  if [ ! -s "$1" ]; then printf -- "-"; return; fi',
    "  local iv; iv=$(openssl rand -hex 16)",
    '  gzip -c <"$1" | openssl enc -aes-256-cbc -K "$EK" -iv "$iv" -out "$1.c"',
    '  local mac; mac=$({ printf "%s" "$iv"; cat "$1.c"; } | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$MK" -r | cut -d" " -f1)',
    '  printf "e:%s:%s:" "$iv" "$mac"; base64 -w0 <"$1.c"',
    "}",
  ];
}

// ---------------------------------------------------------------------------------------------
// Output

export interface CallOutput {
  index: number;
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface ParsedScriptOutput {
  /** The `begin` line was seen (false: never ran, or the front of the output was cut off). */
  begun: boolean;
  /** The `end` line was seen: every call ran. */
  ended: boolean;
  calls: Map<number, CallOutput>;
  /** A `fatal` line from the preamble. */
  fatal?: string;
}

function decodeStream(field: string, key: SealKey | undefined): string {
  if (field === "-") return "";
  if (key !== undefined) {
    if (!field.startsWith("e:")) throw new Error("an unsealed stream in sealed output");
    return gunzipSync(openStream(field, key)).toString("utf8");
  }
  const data = Buffer.from(field.slice(2), "base64");
  if (field.startsWith("z:")) return gunzipSync(data).toString("utf8");
  if (field.startsWith("b:")) return data.toString("utf8");
  throw new Error(`unknown stream encoding ${JSON.stringify(field.slice(0, 2))}`);
}

/**
 * Parses the script's output. With `privateKey` (sealed output) the `key` line must come first
 * and every stream must be sealed; a stream that fails its MAC counts as missing.
 */
export function parseScriptOutput(output: string, nonce: string, privateKey?: KeyObject): ParsedScriptOutput {
  const mark = `@@spa:${nonce}`;
  const result: ParsedScriptOutput = { begun: false, ended: false, calls: new Map() };
  const stream = "(-|[bz]:[A-Za-z0-9+/=]*|e:[0-9a-f]{32}:[0-9a-f]{64}:[A-Za-z0-9+/=]*)";
  const callLine = new RegExp(`^(\\d+) (\\d+) ${stream} ${stream}$`);
  const lines = output.split(/\r?\n/).filter((l) => l.startsWith(`${mark} `));
  let key: SealKey | undefined;
  if (privateKey !== undefined) {
    // The key line comes first and again last: a front cut off at 4 KB still leaves one.
    for (const l of lines) {
      const rest = l.slice(mark.length + 1);
      if (!rest.startsWith("key ")) continue;
      try {
        key = unwrapSealKey(rest.slice(4), privateKey);
        break;
      } catch {
        // a key we cannot unwrap: try the other copy
      }
    }
  }
  for (const raw of lines) {
    const rest = raw.slice(mark.length + 1);
    if (rest.startsWith("key ")) {
      // read above
    } else if (privateKey !== undefined && key === undefined && !rest.startsWith("fatal ")) {
      // sealed output without a usable key: nothing below can be read
      if (rest.startsWith("begin ")) result.begun = true;
      else if (rest === "end") result.ended = true;
    } else if (rest.startsWith("begin ")) result.begun = true;
    else if (rest === "end") result.ended = true;
    else if (rest.startsWith("fatal ")) result.fatal = rest.slice(6);
    else {
      const m = callLine.exec(rest);
      if (!m) continue;
      const index = Number(m[1]);
      try {
        result.calls.set(index, {
          index,
          exitCode: Number(m[2]),
          stdout: decodeStream(m[3] as string, key),
          stderr: decodeStream(m[4] as string, key),
        });
      } catch {
        // a damaged line counts as missing
      }
    }
  }
  return result;
}
