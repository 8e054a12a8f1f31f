import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import type { ContainerApp } from "@azure/arm-appcontainers";
import { expect, it } from "vitest";
import { type DemoSandbox, runBreak, startDemoSandbox } from "../../sandbox/demo.js";
import { pollUntil } from "../../sandbox/spire/index.js";
import { ensureSpire } from "../../scripts/install-spire.js";
import { loadConfig } from "../../shared/config.js";
import { classifyApps } from "../../shared/containerapp/apps.js";

/*
 * `npm run sandbox` as a new user meets it: the demo fleet's shape (three never-attested managed
 * apps, one untagged, one tagged but unusable), the deploy command it prints, and every break verb
 * doing what it says to the running environment (one of them through the CLI process itself).
 */
const REPO = resolve(import.meta.dirname, "../..");
const run = promisify(execFile);

/** The process state letter in /proc (T: stopped by SIGSTOP). */
const procState = (pid: number) => readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0];
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

it("npm run sandbox starts a never-attested demo fleet, prints how to deploy it, and its break verbs work", async () => {
  await ensureSpire();
  const root = mkdtempSync(join(tmpdir(), "sandbox-demo-"));
  // The CLI keeps its state in ./.sandbox; the break verb below runs with cwd = root.
  const stateDir = join(root, ".sandbox");
  mkdirSync(stateDir);
  let demo: DemoSandbox | undefined;
  try {
    demo = await startDemoSandbox({
      stateDir,
      port: 0,
      timeScale: 10,
      echoHost: false,
      log: () => undefined,
    });
    const { sb, fleet, instructions } = demo;
    const rg = sb.settings.APPS_RESOURCE_GROUP!;
    const { containerApps } = sb.azure.clients();

    // The fleet's shape, as the product's own classifier sees it.
    const apps: ContainerApp[] = [];
    for await (const a of containerApps.containerApps.listByResourceGroup(rg)) apps.push(a);
    expect(apps.map((a) => a.name).sort()).toEqual(
      ["agent-01", "agent-02", "agent-03", "batch-worker", "legacy-portal"].sort(),
    );
    const config = loadConfig(sb.settings);
    const { managed, skipped } = classifyApps(apps, {
      trustDomain: config.spire.trustDomain,
      apps: config.apps,
    });
    expect(managed.map((a) => a.name)).toEqual(fleet.managed);
    expect(skipped).toEqual([
      { name: "batch-worker", reason: expect.stringMatching(/minReplicas = 0, maxReplicas = 3/) },
    ]);
    expect(apps.find((a) => a.name === "legacy-portal")?.tags?.[config.apps.managedTag.name]).toBeUndefined();
    // Never attested: no token anywhere, no agent on the server.
    for (const name of fleet.managed) {
      expect((await containerApps.containerApps.listSecrets(rg, name)).value ?? []).toEqual([]);
    }
    const spire = sb.spire.client();
    try {
      expect(await spire.listAgents()).toEqual([]);
    } finally {
      await spire.close();
    }
    expect(instructions).toContain(
      `curl -s -X POST "${sb.host.url}/api/deploy?code=${sb.host.keys.functionKeys.default}"`,
    );
    expect(instructions).toMatch(/npm run sandbox -- break kill-agent agent-01/);

    // The printed command deploys it: the three managed apps attest, the unusable one is reported.
    const key = sb.host.keys.functionKeys.default;
    const res = await fetch(`${sb.host.url}/api/deploy?code=${key}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ reason: "first deploy" }),
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const op = await pollUntil(
      "the demo deploy to finish",
      async () => {
        const r = await fetch(`${sb.host.url}/api/operations/${id}?code=${key}`);
        const o =
          r.status === 200 ? ((await r.json()) as { runtimeStatus: string; output: unknown }) : undefined;
        return o && ["Completed", "Failed", "Terminated"].includes(o.runtimeStatus) ? o : undefined;
      },
      { timeoutMs: 240_000, intervalMs: 500 },
    );
    expect(op.output).toMatchObject({ outcome: "succeeded", totals: { succeeded: 3, failed: 0 } });
    const pid = sb.azure.containerApps.agent(rg, "agent-01").pid!;
    expect(await runBreak(stateDir, "kill-agent", "agent-01")).toContain(`pid ${pid}`);
    await pollUntil("the killed agent to be gone", async () => (alive(pid) ? undefined : true), {
      timeoutMs: 15_000,
    });
    // The container kept running: its entrypoint restarts the agent in the same replica.
    await pollUntil(
      "the entrypoint to restart the agent",
      async () => {
        const a = sb.azure.containerApps.agent(rg, "agent-01");
        return a.pid !== undefined && a.pid !== pid ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );

    const [replica] = sb.azure.containerApps.replicas(rg, "agent-01");
    expect(await runBreak(stateDir, "restart-replica", "agent-01")).toContain(`replica ${replica}`);
    await pollUntil(
      "a fresh replica",
      async () => {
        const now = sb.azure.containerApps.replicas(rg, "agent-01");
        return now.length === 1 && now[0] !== replica ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );

    // Freeze through the CLI process itself, as a user in another shell would.
    const serverPid = sb.spire.pid;
    const out = await run(
      join(REPO, "node_modules/.bin/tsx"),
      [join(REPO, "sandbox/cli.ts"), "break", "freeze-server"],
      {
        cwd: root,
        timeout: 120_000,
      },
    );
    expect(out.stdout).toMatch(/freeze-server/);
    expect(procState(serverPid)).toBe("T");
    await runBreak(stateDir, "thaw-server");
    expect(procState(serverPid)).not.toBe("T");

    const before = sb.spire.client();
    let oldBundle: string;
    try {
      oldBundle = (await before.getBundle()).pem;
    } finally {
      await before.close();
    }
    // SPIRE's createdAt has one-second resolution: everything the old datastore held is older.
    const removedAt = Math.floor(Date.now() / 1000) * 1000;
    await runBreak(stateDir, "remove-server");
    const after = sb.spire.client();
    try {
      const fresh = await pollUntil("the new server to answer", async () => (await after.getBundle()).pem, {
        timeoutMs: 30_000,
        intervalMs: 250,
      });
      // A new CA and an empty datastore: what `docker rm` + `docker run` leave (#25). The product
      // is running and may already be repairing it, so what the new server holds is only what
      // was written after the removal: none of the deploy's entries survived.
      expect(fresh).not.toBe(oldBundle);
      for (const e of await after.listEntries({})) {
        expect(e.createdAt?.getTime(), `entry ${e.id} predates the removal`).toBeGreaterThanOrEqual(
          removedAt,
        );
      }
      // And the product repairs it with nobody awake: every managed app attests again to the new
      // server, with its workload entry registered there.
      await pollUntil(
        "the product to re-attest the fleet to the new server",
        async () => {
          const agents = await after.listAgents();
          const entries = await after.listEntries({});
          const workloads = fleet.managed.filter((name) =>
            entries.some((e) => e.parentId === `spiffe://${config.spire.trustDomain}/agent/${name}`),
          );
          return agents.length >= fleet.managed.length && workloads.length === fleet.managed.length
            ? true
            : undefined;
        },
        { timeoutMs: 180_000, intervalMs: 1_000 },
      );
    } finally {
      await after.close();
    }
  } finally {
    await demo?.sb.stop();
    rmSync(root, { recursive: true, force: true });
  }
}, 600_000);
