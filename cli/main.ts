import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { createColors } from "picocolors";
import { type ApiAnswer, type ApiTarget, ApiUnreachable, apiMessage, callApi } from "./api.js";
import { renderApps, renderBundle, renderOperation, renderRuns, renderStatus } from "./render.js";
import { type OperationView, succeeded, waitForOperation } from "./wait.js";

/*
 * spire-autopilot: the operator's command line, a client of the product's HTTP API only.
 * Exit codes: 0 success; 1 the operation failed (or the API could not answer); 2 usage errors and
 * refusals (the API's 4xx), with the API's message printed.
 */

export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

export interface CliIo {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  env: Record<string, string | undefined>;
  /** Whether stdout/stderr are terminals: colours and the live progress line. */
  isTTY: boolean;
}

interface GlobalOptions {
  url?: string;
  key?: string;
  json: boolean;
  timeout: string;
}

class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

const APP_NAME = /^[a-z][a-z0-9-]{0,30}[a-z0-9]$/;

function appName(value: string): string {
  if (!APP_NAME.test(value)) {
    throw new InvalidArgumentError(
      "an app is a Container App name: lower-case letters, digits and -, 2-32 long.",
    );
  }
  return value;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("a whole number of at least 1.");
  return n;
}

/** app/container=ref, collected into {app: {container: ref}}. */
export function collectImage(value: string, previous: Record<string, Record<string, string>> = {}) {
  const m = /^([a-z][a-z0-9-]{0,30}[a-z0-9])\/([a-z0-9][a-z0-9-]*)=(\S+)$/.exec(value);
  if (!m) throw new InvalidArgumentError(`"${value}" is not app/container=image-ref.`);
  const [, app, container, ref] = m as unknown as [string, string, string, string];
  return { ...previous, [app]: { ...previous[app], [container]: ref } };
}

function collectApps(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(",").map((a) => appName(a.trim()))];
}

export async function run(argv: string[], io: CliIo): Promise<number> {
  const colors = createColors(io.isTTY && !io.env.NO_COLOR);
  const program = new Command("spire-autopilot")
    .description("Operate spire-autopilot from a terminal: status, re-attest, deploy, sweep, runs, bundle.")
    .addOption(new Option("--url <url>", "base URL of the function app").env("SPIRE_AUTOPILOT_URL"))
    .addOption(new Option("--key <key>", "function key").env("SPIRE_AUTOPILOT_KEY"))
    .option("--json", "print the API's JSON (for scripts)", false)
    .option("--timeout <seconds>", "how long --wait waits", "900")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out.write(s),
      writeErr: (s) => io.err.write(s),
      outputError: (s, write) => write(colors.red(s)),
    })
    .showHelpAfterError("(add --help for usage)");

  // commander reads .env() from process.env; take the io's env instead so tests stay isolated.
  const target = (): ApiTarget => {
    const g = program.opts<GlobalOptions>();
    const url = g.url ?? io.env.SPIRE_AUTOPILOT_URL;
    if (!url) {
      io.err.write(colors.red("error: no API address: pass --url or set SPIRE_AUTOPILOT_URL\n"));
      throw new Exit(EXIT.usage);
    }
    try {
      const u = new URL(url);
      if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error("not http(s)");
    } catch {
      io.err.write(colors.red(`error: --url "${url}" is not an http(s) URL\n`));
      throw new Exit(EXIT.usage);
    }
    return { baseUrl: url, key: g.key ?? io.env.SPIRE_AUTOPILOT_KEY, timeoutMs: 30_000 };
  };
  const json = () => program.opts<GlobalOptions>().json;
  const print = (text: string) => io.out.write(text.endsWith("\n") ? text : `${text}\n`);
  const printJson = (v: unknown) => print(JSON.stringify(v, null, 2));

  /** A non-2xx answer ends the command: 4xx is a refusal (2), anything else a failure (1). */
  const expectOk = (answer: ApiAnswer, what: string): ApiAnswer => {
    if (answer.status >= 200 && answer.status < 300) return answer;
    io.err.write(colors.red(`${what}: ${apiMessage(answer)} (HTTP ${answer.status})\n`));
    throw new Exit(answer.status >= 400 && answer.status < 500 ? EXIT.usage : EXIT.failed);
  };

  const get = async (path: string, what: string) => expectOk(await callApi(target(), "GET", path), what).body;

  /** Start an operation (202 with {id}); with --wait, follow it to its end. */
  const startOperation = async (path: string, body: unknown, wait: boolean, what: string) => {
    const t = target();
    const answer = expectOk(await callApi(t, "POST", path, body), what);
    const started = answer.body as { id?: string; alreadyRunning?: boolean };
    if (!started.id) {
      // An answer without an operation (deploy --dry-run's plan): nothing started, nothing to
      // follow, and "started" would be a lie; the answer itself is the result.
      printJson(started);
      return EXIT.ok;
    }
    if (!wait) {
      if (json()) printJson(started);
      else print(`${what}: ${started.alreadyRunning ? "already running" : "started"} as ${started.id}`);
      return EXIT.ok;
    }
    if (!json())
      io.err.write(`${what}: ${started.alreadyRunning ? "already running" : "started"} as ${started.id}\n`);
    const begun = Date.now();
    const op = await waitForOperation({
      target: t,
      id: started.id,
      timeoutMs: Number(program.opts<GlobalOptions>().timeout) * 1000,
      intervalMs: 1000,
      live: io.isTTY && !json(),
      stream: io.err,
    });
    if (!op) {
      io.err.write(colors.red(`${what}: still running after --timeout; follow it with: runs\n`));
      return EXIT.failed;
    }
    const ok = succeeded(op);
    if (json()) printJson(op);
    else print(renderOperation(op, (Date.now() - begun) / 1000, ok, colors));
    return ok ? EXIT.ok : EXIT.failed;
  };

  let code: number = EXIT.ok;
  const action =
    <A extends unknown[]>(fn: (...args: A) => Promise<number>) =>
    async (...args: A) => {
      code = await fn(...args);
    };

  program
    .command("status")
    .description("the server, the trust bundle, the fleet's verdicts and what is running")
    .action(
      action(async () => {
        const t = target();
        const [fleet, bundle, ops] = await Promise.all([
          callApi(t, "GET", "api/fleet"),
          callApi(t, "GET", "api/bundle"),
          callApi(t, "GET", "api/operations?state=running"),
        ]);
        const view = {
          fleet: fleet.status === 200 ? fleet.body : null,
          bundle: bundle.status === 200 ? bundle.body : null,
          running: ops.status === 200 ? (ops.body as { operations: unknown[] }).operations : null,
        };
        if (json()) printJson(view);
        else print(renderStatus(view, colors));
        // Status is a read: it fails only when nothing at all could be read.
        if (fleet.status !== 200 && bundle.status !== 200 && ops.status !== 200) {
          io.err.write(colors.red(`status: ${apiMessage(bundle)} (HTTP ${bundle.status})\n`));
          return bundle.status >= 400 && bundle.status < 500 ? EXIT.usage : EXIT.failed;
        }
        return EXIT.ok;
      }),
    );

  program
    .command("apps")
    .description("every managed and skipped app with its verdict and SVID expiry")
    .action(
      action(async () => {
        const fleet = await get("api/fleet", "apps");
        if (json()) printJson(fleet);
        else print(renderApps(fleet, colors));
        return EXIT.ok;
      }),
    );

  program
    .command("reattest")
    .description("re-attest one app (a fresh join token and a new revision)")
    .argument("<app>", "the Container App", appName)
    .option("--force", "run even within the cooldown", false)
    .option("--reason <text>", "why, for the ledger")
    .option("--wait", "follow the run to its end", false)
    .action(
      action(async (app: string, o: { force: boolean; reason?: string; wait: boolean }) =>
        startOperation(
          `api/apps/${app}/reattest`,
          { ...(o.force ? { force: true } : {}), ...(o.reason ? { reason: o.reason } : {}) },
          o.wait,
          `reattest ${app}`,
        ),
      ),
    );

  program
    .command("deploy")
    .description("deploy (or re-deploy) the fleet's sidecars and entries")
    .option("--apps <names>", "only these apps (comma separated, repeatable)", collectApps)
    .option("--image <app/container=ref>", "set one container's image (repeatable)", collectImage)
    .option("--max-parallel <n>", "apps updated at once", positiveInt)
    .option("--dry-run", "plan only, change nothing", false)
    .option("--reason <text>", "why, for the ledger")
    .option("--wait", "follow the run to its end", false)
    .action(
      action(
        async (o: {
          apps?: string[];
          image?: Record<string, Record<string, string>>;
          maxParallel?: number;
          dryRun: boolean;
          reason?: string;
          wait: boolean;
        }) =>
          startOperation(
            "api/deploy",
            {
              ...(o.apps ? { apps: o.apps } : {}),
              ...(o.image ? { images: o.image } : {}),
              ...(o.maxParallel ? { maxParallel: o.maxParallel } : {}),
              ...(o.dryRun ? { dryRun: true } : {}),
              ...(o.reason ? { reason: o.reason } : {}),
            },
            o.wait,
            "deploy",
          ),
      ),
    );

  program
    .command("sweep")
    .description("run the health sweep now")
    .option("--observe", "classify only, repair nothing", false)
    .option("--wait", "follow the sweep to its end", false)
    .action(
      action(async (o: { observe: boolean; wait: boolean }) =>
        startOperation("api/sweep", o.observe ? { mode: "observe" } : {}, o.wait, "sweep"),
      ),
    );

  program
    .command("runs")
    .description("running and recent operations, or one app's runs")
    .argument("[app]", "only this app's runs", appName)
    .option("--limit <n>", "how many", positiveInt, 20)
    .action(
      action(async (app: string | undefined, o: { limit: number }) => {
        const query = new URLSearchParams({ limit: String(o.limit), ...(app ? { app } : {}) });
        const ops = (await get(`api/operations?${query}`, "runs")) as { operations: OperationView[] };
        // One app's history lives in the ledger (durable keeps the latest run per app only).
        let history: unknown[] | null = null;
        if (app) {
          const detail = await callApi(target(), "GET", `api/fleet/${app}?limit=${o.limit}`);
          if (detail.status === 200) history = (detail.body as { history?: unknown[] }).history ?? null;
          else if (detail.status === 404 && (detail.body as { error?: string } | null)?.error) {
            expectOk(detail, `runs ${app}`);
          }
        }
        if (json()) printJson({ operations: ops.operations, history });
        else print(renderRuns(ops.operations, history, colors));
        return EXIT.ok;
      }),
    );

  program
    .command("bundle")
    .description("the trust bundle: server roots, Key Vault's version, whether they match")
    .action(
      action(async () => {
        const bundle = await get("api/bundle", "bundle");
        if (json()) printJson(bundle);
        else print(renderBundle(bundle, colors));
        return EXIT.ok;
      }),
    );

  try {
    await program.parseAsync(argv, { from: "user" });
    return code;
  } catch (err) {
    if (err instanceof Exit) return err.code;
    if (err instanceof CommanderError) {
      // --help and --version are successes; every other parse error is a usage error.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof ApiUnreachable) {
      io.err.write(colors.red(`error: ${err.message}\n`));
      return EXIT.failed;
    }
    throw err;
  }
}
