import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SimControlClient } from "./azure/control.js";
import { SANDBOX_SPIRE_VM, type Sandbox, type SandboxOptions, startSandbox } from "./environment.js";
import { createDemoFleet, type DemoFleet, type DemoFleetOptions } from "./scenarios/demo-fleet.js";

/*
 * What `npm run sandbox` gives a new user: the environment plus a small fleet to operate (three
 * never-attested managed apps, one untagged, one tagged but unusable), the one command that
 * deploys it, and verbs that break it on purpose while it runs. The verbs run in another shell
 * (`npm run sandbox -- break <verb> [app]`) and reach the running simulator through its /_sim/
 * control API, whose address the running sandbox leaves in <stateDir>/control.json (no keys in it).
 */

export const CONTROL_FILE = "control.json";

export interface DemoControl {
  simUrl: string;
  caFile: string;
  appsResourceGroup: string;
  vm: { resourceGroup: string; name: string };
  apps: string[];
}

export const BREAK_VERBS = {
  "restart-replica": {
    app: true,
    what: "the app's replica is recreated: fresh data dirs, its join token spent",
  },
  "kill-agent": {
    app: true,
    what: "the sidecar's spire-agent process is killed; the container keeps running",
  },
  "freeze-server": {
    app: false,
    what: "the SPIRE server hangs (SIGSTOP): Docker says running, nothing answers",
  },
  "thaw-server": { app: false, what: "the frozen SPIRE server resumes (SIGCONT)" },
  "remove-server": {
    app: false,
    what: "docker rm + docker run of the server container: empty data dir, a new CA, no agents or entries",
  },
} as const;
export type BreakVerb = keyof typeof BREAK_VERBS;

export const isBreakVerb = (v: string): v is BreakVerb => Object.hasOwn(BREAK_VERBS, v);

export interface DemoSandbox {
  sb: Sandbox;
  fleet: DemoFleet;
  instructions: string;
}

export async function startDemoSandbox(
  opts: SandboxOptions & { demo?: DemoFleetOptions },
): Promise<DemoSandbox> {
  const sb = await startSandbox(opts);
  try {
    opts.log("creating the demo fleet");
    const fleet = await createDemoFleet(sb, { managed: 3, unmanaged: true, unusable: true, ...opts.demo });
    const control: DemoControl = {
      simUrl: sb.azure.url,
      caFile: sb.settings.ARM_CA_CERT_FILE!,
      appsResourceGroup: sb.settings.APPS_RESOURCE_GROUP!,
      vm: SANDBOX_SPIRE_VM,
      apps: [...fleet.managed, fleet.unmanaged, fleet.unusable].filter((a): a is string => a !== undefined),
    };
    writeFileSync(join(opts.stateDir, CONTROL_FILE), `${JSON.stringify(control, null, 2)}\n`);
    return { sb, fleet, instructions: demoInstructions(sb, fleet) };
  } catch (err) {
    await sb.stop();
    throw err;
  }
}

export function demoInstructions(sb: Sandbox, fleet: DemoFleet): string {
  const key = sb.host.keys.functionKeys.default ?? "<function key>";
  const url = sb.host.url;
  const first = fleet.managed[0] ?? "<app>";
  const lines = [
    `demo fleet in resource group ${sb.settings.APPS_RESOURCE_GROUP}:`,
    `  ${fleet.managed.join(", ").padEnd(30)} managed, never attested: their sidecars wait for a join token`,
  ];
  if (fleet.unmanaged) lines.push(`  ${fleet.unmanaged.padEnd(30)} not tagged: the product leaves it alone`);
  if (fleet.unusable)
    lines.push(
      `  ${fleet.unusable.padEnd(30)} tagged, but scaled 0..3: the product reports why and skips it`,
    );
  lines.push(
    "",
    "deploy it (answers 202 with the operation's id):",
    `  curl -s -X POST "${url}/api/deploy?code=${key}" -H "content-type: application/json" -d '{"reason":"first deploy"}'`,
    "watch it (customStatus: step, apps done / total, each app's state):",
    `  curl -s "${url}/api/operations/<id>?code=${key}"`,
    "",
    "break things while it runs, from another shell, and watch the product repair them:",
    ...Object.entries(BREAK_VERBS).map(
      ([verb, v]) =>
        `  npm run sandbox -- break ${`${verb}${v.app ? ` ${first}` : ""}`.padEnd(28)} ${v.what}`,
    ),
  );
  return lines.join("\n");
}

export function readDemoControl(stateDir: string): DemoControl {
  const file = join(stateDir, CONTROL_FILE);
  try {
    return JSON.parse(readFileSync(file, "utf8")) as DemoControl;
  } catch (err) {
    throw new Error(
      `no running sandbox found (${file}: ${(err as Error).message}); start one with npm run sandbox`,
    );
  }
}

/** Performs one break verb on the running sandbox whose state is in `stateDir`; returns what it did. */
export async function runBreak(stateDir: string, verb: BreakVerb, app?: string): Promise<string> {
  const control = readDemoControl(stateDir);
  const sim = new SimControlClient(control.simUrl, readFileSync(control.caFile, "utf8"));
  const { resourceGroup: vmRg, name: vm } = control.vm;
  if (BREAK_VERBS[verb].app) {
    if (!app) throw new Error(`break ${verb} needs an app: one of ${control.apps.join(", ")}`);
    if (verb === "restart-replica") {
      const r = await sim.restartReplica(control.appsResourceGroup, app);
      return `restarted replica ${r.restarted} of ${app}`;
    }
    const r = await sim.agent(control.appsResourceGroup, app, "kill");
    return `killed the spire-agent (pid ${r.pid}) of ${app}`;
  }
  const action = ({ "freeze-server": "pause", "thaw-server": "resume", "remove-server": "replace" } as const)[
    verb as "freeze-server" | "thaw-server" | "remove-server"
  ];
  await sim.spireServer(vmRg, vm, action);
  return `${verb}: ${BREAK_VERBS[verb].what}`;
}
