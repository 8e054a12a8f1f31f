import { join } from "node:path";
import { ensureSpire } from "../../scripts/install-spire.js";
import { agentAliasId, workloadId } from "../../shared/spiffe/index.js";
import { rootFingerprints } from "../../shared/spire/bundle.js";
import {
  type SpireAgentHandle,
  type SpireServerHandle,
  startSpireAgent,
  startSpireServer,
} from "../spire/index.js";
import { MAX_SOCKET_PATH_BYTES } from "../spire/process.js";
import type { Scenario } from "./types.js";

const TD = "sandbox.spire-autopilot.test";
const APP = "basics-app";
const WORKLOAD = workloadId(
  TD,
  "1a2b3c4d-0000-4000-8000-0000000000bb",
  "1a2b3c4d-0000-4000-8000-0000000000aa",
);

const seconds = (ms: number) => Math.round(ms / 10) / 100;

/**
 * The SPIRE behaviour everything else builds on, with the real binaries: a join token attests
 * once (a reuse is refused by the server), the token's alias entry exists, a workload entry
 * under the alias gets an SVID signed and served, and the CA survives a server restart.
 */
export const spireBasics: Scenario = {
  name: "spire-basics",
  description:
    "Real spire-server and spire-agent: a join token attests once and its reuse is refused, the alias entry exists, a workload SVID is signed, the CA survives a restart.",
  // A fresh machine builds SPIRE first (about 5 minutes on 2 cores).
  timeoutSeconds: 1_500,
  async run(ctx) {
    const step = (m: string) => {
      if (ctx.signal.aborted) throw new Error("aborted");
      ctx.log(m);
    };
    step("providing spire-server and spire-agent");
    const bins = await ensureSpire({ log: (l) => ctx.log(`install: ${l}`) });

    // Keep everything in the run's folder when its socket path fits; otherwise a short /tmp folder.
    const inWorkDir = join(ctx.workDir, "spire");
    const dir =
      Buffer.byteLength(join(inWorkDir, "api.sock")) <= MAX_SOCKET_PATH_BYTES ? inWorkDir : undefined;
    const agents: SpireAgentHandle[] = [];
    let server: SpireServerHandle | undefined;
    try {
      step(`starting spire-server ${bins.version}`);
      server = await startSpireServer({ trustDomain: TD, bins, dir, caTtl: "2h", defaultX509SvidTtl: "20m" });
      const srv = server;
      const api = srv.client();
      try {
        const bundlePath = join(srv.dir, "bundle.pem");
        await srv.writeBundle(bundlePath);
        const startAgent = async (name: string, joinToken: string) => {
          const a = await startSpireAgent({
            serverAddress: srv.bindAddress,
            serverPort: srv.port,
            trustDomain: TD,
            trustBundlePath: bundlePath,
            joinToken,
            bins,
            name,
            dir: dir ? join(dir, name) : undefined,
          });
          agents.push(a);
          return a;
        };

        step(`join token for ${agentAliasId(TD, APP)} and a workload entry under the alias`);
        const [token] = await api.createJoinTokens([agentAliasId(TD, APP)], 600);
        if (!token) throw new Error("no token returned");
        await api.createEntries([
          {
            spiffeId: WORKLOAD,
            parentId: agentAliasId(TD, APP),
            selectors: [{ type: "unix", value: `uid:${process.getuid?.() ?? 0}` }],
          },
        ]);

        step("starting the agent with the token");
        const mark = srv.logs.mark();
        const agent = await startAgent("agent-1", token.value);
        const started = agent.startedAt;
        await agent.waitHealthy(60_000);
        const signed = await srv.waitForLog(
          (l) => l.msg === "Signed X509 SVID" && l.json?.spiffe_id === WORKLOAD,
          {
            since: mark,
            timeoutMs: 60_000,
            what: "the workload's Signed X509 SVID",
          },
        );
        const svidSignedSeconds = seconds(signed.seenAt - started);
        await agent.waitForWorkloadSvid(WORKLOAD, { timeoutMs: 60_000 });
        const workloadSvidServedSeconds = seconds(Date.now() - started);
        ctx.log(
          `workload SVID signed ${svidSignedSeconds}s and served ${workloadSvidServedSeconds}s after the agent started`,
        );

        const aliasEntries = await api.listEntries({ byParentId: token.agentId });
        const aliasCreated = aliasEntries.some(
          (e) =>
            e.spiffeId === agentAliasId(TD, APP) &&
            e.selectors.some((s) => s.type === "spiffe_id" && s.value === token.agentId),
        );

        step("a second agent with the same token");
        const reuseMark = srv.logs.mark();
        const second = await startAgent("agent-2", token.value);
        let tokenReuseRejected = false;
        try {
          await srv.waitForLog(/join token does not exist or has already been used/, {
            since: reuseMark,
            timeoutMs: 30_000,
          });
          tokenReuseRejected = !(await second.healthcheck());
        } catch (err) {
          ctx.log(`reuse was not refused: ${(err as Error).message.split("\n")[0]}`);
        }
        await second.dispose();
        const attested = (await api.listAgents()).filter((a) => a.id === token.agentId).length;
        tokenReuseRejected &&= attested === 1;

        step("restarting spire-server (disk key manager)");
        const before = rootFingerprints(await api.getBundle());
        await srv.restart();
        const after = rootFingerprints(await api.getBundle());
        const caStableAcrossRestart = before.length > 0 && JSON.stringify(before) === JSON.stringify(after);

        return {
          pass: tokenReuseRejected && aliasCreated && caStableAcrossRestart && svidSignedSeconds >= 0,
          tokenReuseRejected,
          aliasCreated,
          svidSignedSeconds,
          workloadSvidServedSeconds,
          caStableAcrossRestart,
          spireVersion: bins.version,
        };
      } finally {
        await api.close();
      }
    } finally {
      await Promise.allSettled(agents.map((a) => a.dispose()));
      await server?.dispose();
    }
  },
};
