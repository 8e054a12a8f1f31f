// The sandbox CLI:
//   npm run sandbox                        start the local environment with a demo fleet, keep it up
//   npm run sandbox -- break <verb> [app]  break the running sandbox on purpose (verbs: see demo.ts)
//   npm run sandbox -- list                list scenarios
//   npm run sandbox -- scenario <name> [--json] [--keep] [--profile fast|azure]
//                                          run one scenario in a fresh environment; exit 0 only if it
//                                          passed; with --json the last stdout line is its JSON figures
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { ProfileName } from "./azure/profiles.js";
import { BREAK_VERBS, isBreakVerb, runBreak, startDemoSandbox } from "./demo.js";
import { findScenario, scenarios } from "./scenarios/index.js";

const progress = (message: string) => process.stderr.write(`[sandbox] ${message}\n`);

async function runScenario(
  name: string,
  json: boolean,
  keep: boolean,
  profile: ProfileName,
): Promise<number> {
  const scenario = findScenario(name);
  if (!scenario) {
    progress(`unknown scenario "${name}"; known: ${scenarios.map((s) => s.name).join(", ") || "(none)"}`);
    return 2;
  }
  const workDir = mkdtempSync(join(tmpdir(), `sa-${name}-`));
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), scenario.timeoutSeconds * 1000);
  const onSignal = () => controller.abort();
  process.once("SIGINT", onSignal);
  progress(`scenario ${name}: ${scenario.description}`);
  let result: Record<string, unknown> & { pass: boolean };
  try {
    const aborted = new Promise<never>((_, reject) =>
      controller.signal.addEventListener("abort", () =>
        reject(new Error(`scenario ${name} did not finish within ${scenario.timeoutSeconds} s`)),
      ),
    );
    result = await Promise.race([
      scenario.run({ workDir, log: (m) => progress(`${name}: ${m}`), signal: controller.signal, profile }),
      aborted,
    ]);
  } catch (err) {
    result = { pass: false, error: (err as Error).message };
    progress(`scenario ${name} failed: ${(err as Error).stack ?? err}`);
  } finally {
    clearTimeout(timer);
    process.off("SIGINT", onSignal);
    if (keep) progress(`kept ${workDir}`);
    else rmSync(workDir, { recursive: true, force: true });
  }
  progress(`scenario ${name}: ${result.pass ? "PASS" : "FAIL"}`);
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  return result.pass ? 0 : 1;
}

async function runEnvironment(port: number): Promise<void> {
  const { sb: env, instructions } = await startDemoSandbox({
    stateDir: join(process.cwd(), ".sandbox"),
    port,
    log: progress,
  });
  process.stdout.write(`${env.describe()}\n`);
  // The operator's view of this sandbox: the CLI and the status page, with the function key.
  const key = env.host.keys.functionKeys.default ?? "";
  process.stdout.write(
    `  CLI              SPIRE_AUTOPILOT_URL=${env.host.url} SPIRE_AUTOPILOT_KEY=${key} npx spire-autopilot status\n` +
      `  status page      ${env.host.url}/api/status?code=${key}\n\n${instructions}\n`,
  );
  progress("running; press Ctrl-C to stop");
  await new Promise<void>((resolveStop) => {
    const stop = () => resolveStop();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  progress("stopping");
  await env.stop();
}

async function main(): Promise<number> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      json: { type: "boolean", default: false },
      keep: { type: "boolean", default: false },
      port: { type: "string", default: "7071" },
      profile: { type: "string", default: "fast" },
    },
  });
  const [command, arg] = positionals;
  if (command === undefined || command === "up") {
    await runEnvironment(Number(values.port));
    return 0;
  }
  if (command === "list") {
    for (const s of scenarios) process.stdout.write(`${s.name.padEnd(20)} ${s.description}\n`);
    return 0;
  }
  if (command === "break") {
    if (!arg || !isBreakVerb(arg)) {
      progress(`break needs a verb: ${Object.keys(BREAK_VERBS).join(", ")}`);
      return 2;
    }
    process.stdout.write(`${await runBreak(join(process.cwd(), ".sandbox"), arg, positionals[2])}\n`);
    return 0;
  }
  if (values.profile !== "fast" && values.profile !== "azure") {
    progress(`--profile is fast or azure, not "${values.profile}"`);
    return 2;
  }
  if (command === "scenario" && arg) return runScenario(arg, values.json, values.keep, values.profile);
  progress(
    "usage: npm run sandbox [-- list | -- scenario <name> [--json] [--keep] [--profile fast|azure] | -- break <verb> [app]]",
  );
  return 2;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    progress(`error: ${(err as Error).stack ?? err}`);
    process.exit(1);
  },
);
