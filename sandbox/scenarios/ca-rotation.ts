import { startSandbox } from "../environment.js";
import { pollUntil } from "../spire/index.js";
import { BUNDLE_SECRET, bundleVersions, rotateNow, vaultClient } from "./bundle.js";
import { agentsHolding, deployFleet } from "./fleet.js";
import { operation, waitForOperation } from "./replica-restart.js";
import { NEVER } from "./sweep-common.js";
import type { Scenario } from "./types.js";

/*
 * SPIRE's CA rotating under a running fleet. With ca_ttl 60 s the server prepares the next CA at
 * half the current one's life (its root joins the bundle) and activates it at 5/6: every 30 s a
 * new root, 20 s before it signs anything (checked with the 1.15.3 binary). The product's own
 * timer checks every 5 s, as 15 minutes is to the 8 hours between prepare and activation of a
 * 24 h CA. Over two rotations: Key Vault gains each new root before it is used, no run without a
 * change writes a version, every agent keeps renewing, and no app is PUT. Then a re-attestation
 * pins the newest version and its new agent attests with it.
 */

const APPS = ["orders", "billing"];
const CA_TTL_SECONDS = 60;
const SVID_TTL_SECONDS = 10;
const SCHEDULE = "*/5 * * * * *";
const ROTATIONS = 2;

interface Activation {
  at: Date;
  expiration: string;
}

const secondsOf = (ms: number) => Math.round(ms / 100) / 10;

export const caRotation: Scenario = {
  name: "ca-rotation",
  description: `SPIRE's CA rotates twice (ca_ttl ${CA_TTL_SECONDS} s) under ${APPS.length} running agents: Key Vault gains each new root before it is used, nothing restarts, a re-attestation pins the new version.`,
  timeoutSeconds: 300,
  async run(ctx) {
    const sb = await startSandbox({
      stateDir: ctx.workDir,
      port: 0,
      timeScale: 1,
      echoHost: false,
      log: (m) => ctx.log(m),
      spireTtls: { caTtl: `${CA_TTL_SECONDS}s`, defaultX509SvidTtl: `${SVID_TTL_SECONDS}s` },
      settings: {
        BUNDLE_ROTATION_SCHEDULE: SCHEDULE,
        // appPuts counts what the rotation does to apps; a health sweep's repair of an app it
        // judges unattested is another scenario's subject and would be counted here too.
        HEALTH_SWEEP_SCHEDULE: NEVER,
      },
    });
    const spire = sb.spire.client();
    try {
      const rg = sb.settings.APPS_RESOURCE_GROUP!;
      const vault = vaultClient(sb);
      // Deploy's step: the product writes the bundle before any app needs it.
      const first = await rotateNow(sb, "deploy", ctx.signal);
      ctx.log(
        `first rotation: ${first.output.action} (version ${first.output.version}) in ${first.seconds} s`,
      );
      const fleet = await deployFleet(sb, APPS, ctx.log, { writeBundle: false });

      const windowStart = Date.now();
      const putsBefore = sb.azure.counters.snapshot().containerApps.puts;
      const outputBefore = sb.host.output().length;
      const seen = new Set(
        sb.spire.logs.lines.filter((l) => l.msg === "X509 CA activated").map((l) => l.index),
      );
      ctx.log(`waiting for ${ROTATIONS} CA activations`);
      const activations: Activation[] = [];
      await pollUntil(
        `${ROTATIONS} CA activations`,
        async () => {
          for (const l of sb.spire.logs.lines) {
            if (l.msg !== "X509 CA activated" || seen.has(l.index)) continue;
            seen.add(l.index);
            activations.push({ at: new Date(String(l.json?.time)), expiration: String(l.json?.expiration) });
            ctx.log(`CA activated (expires ${l.json?.expiration})`);
          }
          return activations.length >= ROTATIONS ? true : undefined;
        },
        { timeoutMs: (CA_TTL_SECONDS * 2 + 30) * 1000, intervalMs: 250, signal: ctx.signal },
      );

      // Every agent renews after the last activation: its SVID now comes from the new CA, and it
      // still trusts the server, whose SVID does too.
      const serialsAtActivation = new Map(
        (await spire.listAgents()).map((a) => [a.id, a.x509SvidSerialNumber]),
      );
      const renewed = await pollUntil(
        "every agent to renew after the last CA activation",
        async () => {
          const agents = await spire.listAgents();
          const live: string[] = [];
          for (const app of fleet) for (const id of await agentsHolding(spire, app.alias)) live.push(id);
          const fresh = agents.filter(
            (a) =>
              live.includes(a.id) &&
              a.x509SvidSerialNumber !== serialsAtActivation.get(a.id) &&
              (a.x509SvidExpiresAt?.getTime() ?? 0) > Date.now(),
          );
          return fresh.length >= fleet.length ? fresh.length : undefined;
        },
        { timeoutMs: SVID_TTL_SECONDS * 3000, intervalMs: 500, signal: ctx.signal },
      ).catch(() => 0);
      const appPuts = sb.azure.counters.snapshot().containerApps.puts - putsBefore;

      // Key Vault held each activated CA's root before the CA signed anything.
      const bundle = await spire.getBundle();
      const versions = await bundleVersions(vault);
      const leads: number[] = [];
      for (const a of activations) {
        const root = bundle.roots.find(
          (r) => Math.abs(r.notAfter.getTime() - Date.parse(a.expiration)) < 1000,
        );
        const holder = root && versions.find((v) => v.fingerprints?.includes(root.sha256Fingerprint));
        // createdOn has whole seconds: count a version as written up to a second later.
        leads.push(holder ? secondsOf(a.at.getTime() - holder.createdOn.getTime() - 1000) : Number.NaN);
      }
      const gainedBeforeUse = leads.filter((s) => s > 0).length;

      let unchangedRunsWritten = 0;
      for (let i = 1; i < versions.length; i++) {
        const [prev, cur] = [versions[i - 1]!.fingerprints, versions[i]!.fingerprints];
        if (prev && cur && prev.join() === cur.join()) unchangedRunsWritten++;
      }
      const window = sb.host.output().slice(outputBefore);
      const unchangedRuns = window.split("the trust bundle is unchanged; nothing written").length - 1;
      const writes = window.split("wrote a new trust bundle version").length - 1;
      const versionsWritten = versions.filter((v) => v.createdOn.getTime() + 1000 >= windowStart).length;

      // Item 3: a bootstrap after the rotations is a re-attestation that pins the newest version.
      const app = fleet[0]!.name;
      const newestAtRequest = versions.length - 1;
      const key = sb.host.keys.functionKeys.default;
      const res = await fetch(`${sb.host.url}/api/apps/${app}/reattest?code=${key}`, {
        method: "POST",
        body: JSON.stringify({ reason: "after the CA rotations" }),
      });
      if (res.status !== 202) throw new Error(`reattest answered ${res.status}: ${await res.text()}`);
      await pollUntil(
        "the re-attestation to start",
        async () => ((await operation(sb, `reattest-${app}`)) ? true : undefined),
        {
          timeoutMs: 30_000,
          intervalMs: 250,
          signal: ctx.signal,
        },
      );
      const op = await waitForOperation(sb, `reattest-${app}`, 180_000, ctx.signal);
      const { containerApps } = sb.azure.clients();
      const pinned = (await containerApps.containerApps.get(rg, app)).configuration?.secrets?.find((s) =>
        s.keyVaultUrl?.includes(`/secrets/${BUNDLE_SECRET}/`),
      )?.keyVaultUrl;
      const pinnedVersion = pinned?.split("/").at(-1);
      // The CA keeps rotating meanwhile: the pin must be the newest version when the run was asked
      // for, or one written since.
      const after = await bundleVersions(vault);
      const pinnedIndex = after.findIndex((v) => v.version === pinnedVersion);
      const pinnedNewest = pinnedIndex >= newestAtRequest;
      const reattested = op.output?.outcome === "succeeded";

      const result = {
        rotations: activations.length,
        versionsWritten,
        writesLogged: writes,
        unchangedRuns,
        unchangedRunsWritten,
        appPuts,
        agentsRenewing: renewed,
        agents: fleet.length,
        leadSeconds: leads,
        gainedBeforeUse,
        firstRotationSeconds: first.seconds,
        reattest: { outcome: op.output?.outcome ?? op.runtimeStatus, failure: op.output?.failure },
        pinnedVersion,
        pinnedNewest,
        caTtlSeconds: CA_TTL_SECONDS,
        schedule: SCHEDULE,
      };
      return {
        ...result,
        pass:
          activations.length >= ROTATIONS &&
          gainedBeforeUse === activations.length &&
          versionsWritten >= ROTATIONS &&
          unchangedRunsWritten === 0 &&
          unchangedRuns > 0 &&
          appPuts === 0 &&
          renewed === fleet.length &&
          reattested &&
          pinnedNewest,
      };
    } finally {
      await spire.close();
      await sb.stop();
    }
  },
};
