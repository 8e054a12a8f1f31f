import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { splitPem } from "../../shared/spire/pem.js";
import { SANDBOX_ADMIN_SVID_SECRET, startSandbox } from "../environment.js";
import { pollUntil } from "../spire/index.js";
import { secretsInArm } from "../spire/runcommand-hosts.js";
import { rotateNow, vaultClient } from "./bundle.js";
import type { Scenario } from "./types.js";

/*
 * The product's own admin SVID across three lifetimes, over TCP with mTLS as in Azure. The secret
 * starts missing: the first rotation bootstraps it (a short SVID minted on the VM by a sealed
 * run-command, used once to sign the product's CSR over the API); from then on the timer renews
 * it over the API at half its life. Meanwhile GET /api/bundle is called every second, and each
 * answer carries one admin-only call made by the host's long-lived SPIRE client: every one must
 * succeed. Then every place a key could leak is scanned for the keys of every version: what ARM
 * served and was sent (run-commands included), the host's output, and its durable state.
 */

const TTL_SECONDS = 30;
const SCHEDULE = "*/5 * * * * *";
const LIFETIMES = 3;
const CALL_INTERVAL_MS = 1_000;

interface AdminVersion {
  version: string;
  createdOn: Date;
  notBefore: Date;
  notAfter: Date;
  minted?: string;
  keyPem?: string;
}

const secondsOf = (ms: number) => Math.round(ms / 100) / 10;
const base64Body = (pem: string) => pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path));
    else out.push(path);
  }
  return out;
}

/** Occurrences of a private key (PEM, the CLI's JSON field, or a piece of a known key's base64). */
function leaksIn(text: string, keys: readonly string[]): number {
  let found = 0;
  if (/PRIVATE KEY/.test(text)) found++;
  if (/"private_key"/.test(text)) found++;
  for (const k of keys) if (text.includes(k.slice(16, 72))) found++;
  return found;
}

export const adminSvidRotation: Scenario = {
  name: "admin-svid-rotation",
  description: `The product's admin SVID (ttl ${TTL_SECONDS} s) over TCP with mTLS: bootstrapped once on the VM, renewed over the API at half its life for ${LIFETIMES} lifetimes while every API call succeeds and no key appears in ARM, logs or durable state.`,
  timeoutSeconds: 300,
  async run(ctx) {
    const sb = await startSandbox({
      stateDir: ctx.workDir,
      port: 0,
      timeScale: 1,
      echoHost: false,
      log: (m) => ctx.log(m),
      spireOverTcp: true,
      settings: { ADMIN_SVID_TTL_SECONDS: String(TTL_SECONDS), BUNDLE_ROTATION_SCHEDULE: SCHEDULE },
    });
    try {
      const vault = vaultClient(sb);
      const key = sb.host.keys.functionKeys.default;
      // Deploy's step (the timer would get there within seconds too): bundle first, then the SVID.
      const first = await rotateNow(sb, "deploy", ctx.signal);
      ctx.log(
        `first rotation in ${first.seconds} s: bundle ${first.output.action}, admin SVID ${first.output.adminSvid?.lastAction ?? first.output.failure}`,
      );
      await pollUntil(
        "the admin SVID secret",
        async () =>
          (await vault.getSecret(SANDBOX_ADMIN_SVID_SECRET).catch(() => undefined)) ? true : undefined,
        { timeoutMs: 60_000, intervalMs: 250, signal: ctx.signal },
      );

      // The steady stream: one GET a second, each with an admin-only call by the host's client.
      const start = Date.now();
      const lifetimeMs = (TTL_SECONDS + 10) * 1000; // SPIRE backdates notBefore by 10 s
      const until = start + LIFETIMES * lifetimeMs + 5_000;
      let calls = 0;
      let callsFailed = 0;
      const failures: string[] = [];
      const versionsSeen = new Set<string>();
      while (Date.now() < until) {
        if (ctx.signal.aborted) throw new Error("aborted");
        calls++;
        try {
          const res = await fetch(`${sb.host.url}/api/bundle?code=${key}`);
          const body = (await res.json()) as {
            adminSvid?: { version?: string; clientCheck?: { ok: boolean; error?: string } } | null;
          };
          const check = body.adminSvid?.clientCheck;
          if (res.status !== 200 || check?.ok !== true) {
            callsFailed++;
            failures.push(`${res.status}: ${check?.error ?? JSON.stringify(body.adminSvid)}`.slice(0, 300));
          }
          if (body.adminSvid?.version) versionsSeen.add(body.adminSvid.version);
        } catch (err) {
          callsFailed++;
          failures.push((err as Error).message.slice(0, 300));
        }
        await new Promise((r) => setTimeout(r, CALL_INTERVAL_MS));
      }
      const windowSeconds = secondsOf(Date.now() - start);

      // Every version Key Vault holds, with its key (to look for it elsewhere).
      const versions: AdminVersion[] = [];
      for await (const p of vault.listPropertiesOfSecretVersions(SANDBOX_ADMIN_SVID_SECRET)) {
        const s = await vault.getSecret(SANDBOX_ADMIN_SVID_SECRET, { version: p.version ?? "" });
        const tags = s.properties.tags ?? {};
        versions.push({
          version: p.version ?? "",
          createdOn: p.createdOn ?? new Date(0),
          notBefore: new Date(tags.notBefore ?? 0),
          notAfter: new Date(tags.notAfter ?? 0),
          ...(tags.minted ? { minted: tags.minted } : {}),
          ...(splitPem(s.value ?? "").privateKey ? { keyPem: splitPem(s.value ?? "").privateKey } : {}),
        });
      }
      versions.sort((a, b) => a.createdOn.getTime() - b.createdOn.getTime());
      const rotations = versions.filter((v) => v.minted === "api").length;
      const bootstraps = versions.filter((v) => v.minted === "run-command+api").length;
      // Each version written before the one before it expired: the credential never lapsed.
      let lapses = 0;
      for (let i = 1; i < versions.length; i++) {
        if (versions[i]!.createdOn.getTime() >= versions[i - 1]!.notAfter.getTime()) lapses++;
      }
      const actualLifetimeMs =
        versions[0] !== undefined
          ? versions[0].notAfter.getTime() - versions[0].notBefore.getTime()
          : lifetimeMs;
      const svidLifetimes = Math.floor(((Date.now() - start) / actualLifetimeMs) * 10) / 10;

      // How long each kind of mint took, as the activity logged it.
      const output = sb.host.output();
      const mints = output
        .split("\n")
        .filter((l) => l.includes("wrote a new admin SVID version"))
        .map((l) => {
          try {
            return JSON.parse(l.slice(l.indexOf("{"))) as { action?: string; mintSeconds?: number };
          } catch {
            return {};
          }
        });
      const mean = (xs: number[]) =>
        xs.length ? Math.round((xs.reduce((a, b) => a + b, 0) / xs.length) * 100) / 100 : null;
      const apiSeconds = mean(mints.filter((m) => m.action === "rotate").map((m) => m.mintSeconds ?? 0));
      const bootstrapSeconds = mean(
        mints.filter((m) => m.action === "bootstrap").map((m) => m.mintSeconds ?? 0),
      );

      // Key leaks: ARM (requests and responses, run-commands' streams decoded), host output, durable state.
      const keys = versions.flatMap((v) => (v.keyPem ? [base64Body(v.keyPem)] : []));
      const armLeaks = secretsInArm(
        sb.azure,
        keys.map((k) => k.slice(16, 72)),
      );
      const hostLeaks = leaksIn(output, keys);
      let stateLeaks = 0;
      for (const file of filesUnder(join(ctx.workDir, "host"))) {
        stateLeaks += leaksIn(readFileSync(file, "utf8"), keys);
      }
      const keyLeaks = armLeaks + hostLeaks + stateLeaks;
      // The scan finds a key where there is one (else keyLeaks: 0 would prove nothing).
      const scanFindsKey = versions[0]?.keyPem !== undefined && leaksIn(`x ${keys[0]} x`, keys) > 0;
      const runCommandResponses = sb.azure.transcript.runCommandResponses().length;

      const result = {
        svidLifetimes,
        rotations,
        bootstraps,
        callsFailed,
        keyLeaks,
        calls,
        lapses,
        versionsWritten: versions.length,
        versionsSeenByCalls: versionsSeen.size,
        lifetimeSeconds: secondsOf(actualLifetimeMs),
        windowSeconds,
        apiRotationSeconds: apiSeconds,
        bootstrapSeconds,
        firstRotationSeconds: first.seconds,
        leaks: { arm: armLeaks, host: hostLeaks, durableState: stateLeaks },
        runCommandResponsesScanned: runCommandResponses,
        scanFindsKey,
        ...(failures.length ? { failures: failures.slice(0, 5) } : {}),
        ttlSeconds: TTL_SECONDS,
        schedule: SCHEDULE,
      };
      return {
        ...result,
        pass:
          svidLifetimes >= LIFETIMES &&
          rotations >= LIFETIMES &&
          bootstraps === 1 &&
          lapses === 0 &&
          callsFailed === 0 &&
          calls > 0 &&
          keyLeaks === 0 &&
          keys.length === versions.length &&
          scanFindsKey &&
          runCommandResponses > 0,
      };
    } finally {
      await sb.stop();
    }
  },
};
