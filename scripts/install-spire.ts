/**
 * Provides spire-server and spire-agent at the version pinned in ./spire-version.json.
 *
 * Order: binaries already in the tools cache or on PATH whose `--version` matches → `go install
 * module@version` → a build from the module source fetched with `go mod download` (works where
 * the module proxy refuses the version list or a dependency zip) → the official release archive.
 * Builds are serialised by a file lock so parallel test workers build once.
 *
 * Library: `ensureSpire()`. CLI: `tsx scripts/install-spire.ts [--tools-dir DIR] [--no-path] [--no-go]`
 * prints `{serverBin, agentBin, version, source, seconds}` on stdout; progress goes to stderr.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createWriteStream, rmSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import pin from "./spire-version.json" with { type: "json" };

export const SPIRE_VERSION: string = pin.version;

export type SpireSource = "cache" | "path" | "go-install" | "go-build" | "release-archive";

export interface SpireBinaries {
  serverBin: string;
  agentBin: string;
  /** What `--version` printed, e.g. `1.15.3` or `1.15.3-dev-unk`. */
  version: string;
  source: SpireSource;
}

export interface EnsureSpireOptions {
  /** Cache root; binaries land in `<toolsDir>/<version>/bin`. Default `$SPIRE_TOOLS_DIR` or `<repo>/.tools/spire`. */
  toolsDir?: string;
  /** Reuse matching binaries found on PATH (default true). */
  usePath?: boolean;
  /** Progress lines; default stderr. */
  log?: (line: string) => void;
  /** How long to wait for another process that holds the build lock (default 45 min). */
  lockTimeoutMs?: number;
  /** Go binary to build with; default found on PATH or /usr/local/go/bin. `false`: do not use Go. */
  go?: string | false;
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BINARIES = ["spire-server", "spire-agent"] as const;
const HEARTBEAT_MS = 20_000;

function defaultLog(line: string): void {
  process.stderr.write(`[install-spire] ${line}\n`);
}

export function defaultToolsDir(): string {
  return process.env.SPIRE_TOOLS_DIR || path.join(repoRoot, ".tools", "spire");
}

/** `1.15.3` or a local build's `1.15.3-dev-unk` / `1.15.3-dev-<sha>`; nothing else. */
export function versionMatches(printed: string, wanted: string = SPIRE_VERSION): boolean {
  const escaped = wanted.replace(/\./g, "\\.");
  return new RegExp(`^${escaped}(-dev-[0-9a-z]+)?$`).test(printed.trim());
}

/** What `<bin> --version` prints (SPIRE writes it to stderr), or undefined when it does not run. */
export function binaryVersion(bin: string): string | undefined {
  const res = spawnSync(bin, ["--version"], { encoding: "utf8", timeout: 15_000 });
  if (res.error || res.status !== 0) return undefined;
  const printed = `${res.stdout}${res.stderr}`.trim().split(/\s+/)[0];
  return printed || undefined;
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await fs.access(file, fs.constants.X_OK);
    return (await fs.stat(file)).isFile();
  } catch {
    return false;
  }
}

async function matchingPair(serverBin: string, agentBin: string): Promise<string | undefined> {
  if (!(await isExecutable(serverBin)) || !(await isExecutable(agentBin))) return undefined;
  const serverVersion = binaryVersion(serverBin);
  const agentVersion = binaryVersion(agentBin);
  if (serverVersion && agentVersion && versionMatches(serverVersion) && versionMatches(agentVersion)) {
    return serverVersion;
  }
  return undefined;
}

async function findOnPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function formatElapsed(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface RunResult {
  code: number | null;
  output: string;
}

/** Runs a command, appending its output to the build log, with a heartbeat on long runs. */
async function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; logFile: string; log: (l: string) => void; what: string },
): Promise<RunResult> {
  const started = Date.now();
  const logStream = createWriteStream(opts.logFile, { flags: "a" });
  logStream.write(
    `\n[${new Date().toISOString()}] $ ${cmd} ${args.join(" ")}${opts.cwd ? `   (in ${opts.cwd})` : ""}\n`,
  );
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const chunks: string[] = [];
  let kept = 0;
  const keep = (b: Buffer) => {
    logStream.write(b);
    // Keep the tail only: error messages are at the end and builds can be chatty.
    chunks.push(b.toString("utf8"));
    kept += b.length;
    while (kept > 256_000 && chunks.length > 1) kept -= (chunks.shift() ?? "").length;
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const heartbeat = setInterval(
    () => opts.log(`  … still ${opts.what} (${formatElapsed(Date.now() - started)})`),
    HEARTBEAT_MS,
  );
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  try {
    const code = await new Promise<number | null>((resolve) => {
      child.on("error", (err) => {
        keep(Buffer.from(`${err.message}\n`));
        resolve(127);
      });
      child.on("close", (c) => resolve(c));
    });
    return { code, output: chunks.join("") };
  } finally {
    clearInterval(heartbeat);
    process.removeListener("exit", killOnExit);
    await new Promise<void>((resolve) => logStream.end(resolve));
  }
}

function tail(text: string, lines = 15): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split(".").map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function goVersion(goBin: string): string | undefined {
  const res = spawnSync(goBin, ["env", "GOVERSION"], { encoding: "utf8", timeout: 30_000 });
  if (res.error || res.status !== 0) return undefined;
  return res.stdout.trim().replace(/^go/, "") || undefined;
}

async function findGo(): Promise<string | undefined> {
  return (
    (await findOnPath("go")) ??
    ((await isExecutable("/usr/local/go/bin/go")) ? "/usr/local/go/bin/go" : undefined)
  );
}

async function hasCCompiler(): Promise<boolean> {
  const cc = process.env.CC?.split(/\s+/)[0];
  if (cc && (path.isAbsolute(cc) ? await isExecutable(cc) : await findOnPath(cc))) return true;
  return Boolean((await findOnPath("gcc")) ?? (await findOnPath("cc")) ?? (await findOnPath("clang")));
}

/** Thrown when no way of providing the binaries worked; the message says what to install. */
export class SpireInstallError extends Error {
  override name = "SpireInstallError";
}

// ---------------------------------------------------------------------------------------------
// Lock

interface LockHolder {
  pid: number;
  host: string;
  since: string;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function readLock(
  lockPath: string,
): Promise<{ raw: string; holder?: LockHolder; ageMs: number } | undefined> {
  try {
    const [raw, st] = await Promise.all([fs.readFile(lockPath, "utf8"), fs.stat(lockPath)]);
    let holder: LockHolder | undefined;
    try {
      holder = JSON.parse(raw) as LockHolder;
    } catch {
      holder = undefined;
    }
    return { raw, holder, ageMs: Date.now() - st.mtimeMs };
  } catch {
    return undefined;
  }
}

async function withLock<T>(
  lockPath: string,
  timeoutMs: number,
  log: (l: string) => void,
  fn: () => Promise<T>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastNotice = 0;
  for (;;) {
    try {
      const fh = await fs.open(lockPath, "wx");
      const me: LockHolder = { pid: process.pid, host: os.hostname(), since: new Date().toISOString() };
      await fh.writeFile(JSON.stringify(me));
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const current = await readLock(lockPath);
    if (current) {
      const h = current.holder;
      const stale =
        (h && h.host === os.hostname() && !processAlive(h.pid)) ||
        (!h && current.ageMs > 10_000) ||
        current.ageMs > 2 * 60 * 60_000;
      if (stale) {
        const again = await readLock(lockPath);
        if (again?.raw === current.raw) await fs.rm(lockPath, { force: true });
        continue;
      }
      if (Date.now() - lastNotice > 30_000) {
        log(`waiting for another install (pid ${h?.pid ?? "?"}) holding ${lockPath}`);
        lastNotice = Date.now();
      }
    }
    if (Date.now() > deadline) {
      throw new SpireInstallError(
        `timed out after ${formatElapsed(timeoutMs)} waiting for the lock ${lockPath}`,
      );
    }
    await sleep(1000);
  }
  const release = () => rmSync(lockPath, { force: true });
  process.once("exit", release);
  try {
    return await fn();
  } finally {
    process.removeListener("exit", release);
    release();
  }
}

// ---------------------------------------------------------------------------------------------
// Ways of getting the binaries

interface Attempt {
  name: string;
  /** Puts both binaries into `staging`; returns undefined on success or the reason it failed. */
  run(staging: string): Promise<string | undefined>;
}

interface Ctx {
  versionDir: string;
  logFile: string;
  log: (l: string) => void;
}

function goEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, CGO_ENABLED: "1", ...extra };
}

function goInstallAttempt(ctx: Ctx, goBin: string): Attempt {
  return {
    name: "go install",
    async run(staging) {
      const pkgs = BINARIES.map((b) => `${pin.goModule}/cmd/${b}@v${pin.version}`);
      ctx.log(`go install ${pkgs.join(" ")}`);
      const res = await run(goBin, ["install", ...pkgs], {
        env: goEnv({ GOBIN: staging }),
        logFile: ctx.logFile,
        log: ctx.log,
        what: "running go install",
      });
      return res.code === 0 ? undefined : `exit ${res.code}: ${tail(res.output, 4)}`;
    },
  };
}

function goBuildFromModuleAttempt(ctx: Ctx, goBin: string): Attempt {
  return {
    name: "go build from module source",
    async run(staging) {
      const modRef = `${pin.goModule}@v${pin.version}`;
      ctx.log(`go mod download ${modRef}`);
      const dl = await run(goBin, ["mod", "download", "-json", modRef], {
        env: goEnv({}),
        logFile: ctx.logFile,
        log: ctx.log,
        what: "downloading the module",
      });
      let dir: string | undefined;
      try {
        const info = JSON.parse(dl.output.slice(dl.output.indexOf("{"))) as { Dir?: string; Error?: string };
        if (info.Error) return `go mod download: ${info.Error}`;
        dir = info.Dir;
      } catch {
        dir = undefined;
      }
      if (dl.code !== 0 || !dir) return `go mod download failed: ${tail(dl.output, 4)}`;

      const src = path.join(ctx.versionDir, "src");
      await fs.rm(src, { recursive: true, force: true });
      await fs.cp(dir, src, { recursive: true });
      await chmodWritable(src);

      const build = () =>
        run(
          goBin,
          [
            "build",
            "-mod=mod",
            "-trimpath",
            "-o",
            `${staging}${path.sep}`,
            ...BINARIES.map((b) => `./cmd/${b}`),
          ],
          {
            cwd: src,
            env: goEnv({}),
            logFile: ctx.logFile,
            log: ctx.log,
            what: "compiling spire-server and spire-agent",
          },
        );
      ctx.log("go build ./cmd/spire-server ./cmd/spire-agent (a cold build takes ~5 min on 2 cores)");
      let res = await build();
      for (const fix of pin.moduleReplaceFallbacks) {
        if (res.code === 0 || !res.output.includes(fix.module)) continue;
        ctx.log(`replacing ${fix.module} with ${fix.replacement} (${fix.reason}) and building again`);
        const edit = await run(goBin, ["mod", "edit", `-replace=${fix.module}=${fix.replacement}`], {
          cwd: src,
          env: goEnv({}),
          logFile: ctx.logFile,
          log: ctx.log,
          what: "editing go.mod",
        });
        if (edit.code !== 0) return `go mod edit failed: ${tail(edit.output, 4)}`;
        res = await build();
      }
      await fs.rm(src, { recursive: true, force: true });
      return res.code === 0 ? undefined : `exit ${res.code}: ${tail(res.output, 6)}`;
    },
  };
}

async function chmodWritable(dir: string): Promise<void> {
  const entries = await fs.readdir(dir, { withFileTypes: true, recursive: true });
  await fs.chmod(dir, 0o755);
  for (const e of entries) {
    const p = path.join(e.parentPath, e.name);
    if (e.isDirectory()) await fs.chmod(p, 0o755);
    else if (e.isFile()) {
      const st = await fs.stat(p);
      await fs.chmod(p, st.mode | 0o200);
    }
  }
}

function releaseArchiveAttempt(ctx: Ctx): Attempt {
  return {
    name: "official release archive",
    async run(staging) {
      const arch = (pin.releaseArchive.archs as Record<string, string>)[process.arch];
      if (process.platform !== "linux" || !arch) {
        return `no release archive for ${process.platform}/${process.arch}`;
      }
      const fill = (t: string) => t.replaceAll("{version}", pin.version).replaceAll("{arch}", arch);
      const url = fill(pin.releaseArchive.urlTemplate);
      const sumUrl = fill(pin.releaseArchive.checksumUrlTemplate);
      ctx.log(`downloading ${url}`);
      let archive: Buffer;
      let expected: string | undefined;
      try {
        const [res, sumRes] = await Promise.all([
          fetch(url, { signal: AbortSignal.timeout(180_000) }),
          fetch(sumUrl, { signal: AbortSignal.timeout(60_000) }),
        ]);
        if (!res.ok) return `GET ${url}: HTTP ${res.status}`;
        if (!sumRes.ok) return `GET ${sumUrl}: HTTP ${sumRes.status}`;
        archive = Buffer.from(await res.arrayBuffer());
        expected = (await sumRes.text()).trim().split(/\s+/)[0]?.toLowerCase();
      } catch (err) {
        const cause = (err as Error).cause;
        const detail = cause instanceof Error ? ` (${cause.message})` : "";
        return `download failed: ${(err as Error).message}${detail}`;
      }
      const actual = createHash("sha256").update(archive).digest("hex");
      if (!expected || actual !== expected) return `checksum mismatch: expected ${expected}, got ${actual}`;
      const tarball = path.join(staging, "spire.tar.gz");
      await fs.writeFile(tarball, archive);
      const untar = await run("tar", ["-xzf", tarball, "-C", staging], {
        logFile: ctx.logFile,
        log: ctx.log,
        what: "extracting",
      });
      if (untar.code !== 0) return `tar failed: ${tail(untar.output, 4)}`;
      for (const b of BINARIES) {
        const found = path.join(staging, `spire-${pin.version}`, "bin", b);
        if (!(await isExecutable(found))) return `archive has no ${b} at spire-${pin.version}/bin`;
        await fs.rename(found, path.join(staging, b));
      }
      return undefined;
    },
  };
}

// ---------------------------------------------------------------------------------------------

const inFlight = new Map<string, Promise<SpireBinaries>>();

/** Returns paths of spire-server and spire-agent at the pinned version, building them if needed. */
export function ensureSpire(options: EnsureSpireOptions = {}): Promise<SpireBinaries> {
  const toolsDir = path.resolve(options.toolsDir ?? defaultToolsDir());
  const key = `${toolsDir}|${options.usePath !== false}`;
  let p = inFlight.get(key);
  if (!p) {
    p = doEnsure(toolsDir, options);
    inFlight.set(key, p);
    p.catch(() => inFlight.delete(key));
  }
  return p;
}

async function doEnsure(toolsDir: string, options: EnsureSpireOptions): Promise<SpireBinaries> {
  const log = options.log ?? defaultLog;
  const versionDir = path.join(toolsDir, pin.version);
  const binDir = path.join(versionDir, "bin");
  const cached = () => {
    const serverBin = path.join(binDir, "spire-server");
    const agentBin = path.join(binDir, "spire-agent");
    return matchingPair(serverBin, agentBin).then((version) =>
      version ? { serverBin, agentBin, version, source: "cache" as const } : undefined,
    );
  };

  const hit = await cached();
  if (hit) return hit;

  if (options.usePath !== false) {
    const serverBin = await findOnPath("spire-server");
    const agentBin = await findOnPath("spire-agent");
    if (serverBin && agentBin) {
      const version = await matchingPair(serverBin, agentBin);
      if (version) {
        log(`using spire-server and spire-agent ${version} from PATH`);
        return { serverBin, agentBin, version, source: "path" };
      }
      log(`spire binaries on PATH are not version ${pin.version}; ignoring them`);
    }
  }

  await fs.mkdir(versionDir, { recursive: true });
  return withLock(
    path.join(toolsDir, `.${pin.version}.lock`),
    options.lockTimeoutMs ?? 45 * 60_000,
    log,
    async () => {
      const built = await cached();
      if (built) return built; // another process finished the build while we waited
      return install(versionDir, binDir, log, options.go);
    },
  );
}

async function install(
  versionDir: string,
  binDir: string,
  log: (l: string) => void,
  goOption: string | false | undefined,
): Promise<SpireBinaries> {
  const logFile = path.join(versionDir, "build.log");
  const ctx: Ctx = { versionDir, logFile, log };
  const started = Date.now();
  log(`installing SPIRE ${pin.version} into ${binDir} (log: ${logFile})`);

  const attempts: Attempt[] = [];
  const skipped: string[] = [];
  const goBin = goOption === false ? undefined : (goOption ?? (await findGo()));
  if (!goBin) {
    skipped.push("go: no Go toolchain found on PATH");
  } else if (!(await hasCCompiler())) {
    skipped.push("go: found Go but no C compiler (cgo needs gcc for the sqlite datastore)");
  } else {
    const v = goVersion(goBin);
    if (v && compareVersions(v, pin.minGoVersion) < 0) {
      log(`Go ${v} is older than ${pin.minGoVersion}; relying on GOTOOLCHAIN to fetch a newer toolchain`);
    }
    attempts.push(goInstallAttempt(ctx, goBin), goBuildFromModuleAttempt(ctx, goBin));
  }
  attempts.push(releaseArchiveAttempt(ctx));

  const failures: string[] = [...skipped];
  for (const attempt of attempts) {
    const staging = path.join(versionDir, `staging-${process.pid}`);
    await fs.rm(staging, { recursive: true, force: true });
    await fs.mkdir(staging, { recursive: true });
    try {
      const reason = await attempt.run(staging);
      if (reason) {
        log(`${attempt.name} failed: ${reason.split("\n").slice(-1)[0]}`);
        failures.push(`${attempt.name}: ${reason}`);
        continue;
      }
      const version = await matchingPair(
        path.join(staging, "spire-server"),
        path.join(staging, "spire-agent"),
      );
      if (!version) {
        failures.push(`${attempt.name}: produced binaries whose --version is not ${pin.version}`);
        continue;
      }
      await fs.mkdir(binDir, { recursive: true });
      for (const b of BINARIES) await fs.rename(path.join(staging, b), path.join(binDir, b));
      log(`SPIRE ${version} ready via ${attempt.name} in ${formatElapsed(Date.now() - started)}`);
      const source: SpireSource =
        attempt.name === "go install"
          ? "go-install"
          : attempt.name.startsWith("go build")
            ? "go-build"
            : "release-archive";
      return {
        serverBin: path.join(binDir, "spire-server"),
        agentBin: path.join(binDir, "spire-agent"),
        version,
        source,
      };
    } finally {
      await fs.rm(staging, { recursive: true, force: true });
    }
  }

  throw new SpireInstallError(
    [
      `Could not provide spire-server and spire-agent ${pin.version}. Tried:`,
      ...failures.map((f) => `  - ${f.replace(/\n/g, "\n    ")}`),
      "To fix, do one of:",
      `  - install Go >= ${pin.minGoVersion} (https://go.dev/dl/) and a C compiler for cgo (e.g. apt-get install gcc), then run again;`,
      `  - put spire-server and spire-agent ${pin.version} on PATH (or in ${binDir});`,
      "  - allow HTTPS downloads from github.com (official release archive).",
      `Build log: ${logFile}`,
    ].join("\n"),
  );
}

// ---------------------------------------------------------------------------------------------
// CLI

async function main(argv: string[]): Promise<number> {
  const opts: EnsureSpireOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--tools-dir") opts.toolsDir = argv[++i];
    else if (a === "--no-path") opts.usePath = false;
    else if (a === "--no-go") opts.go = false;
    else if (a === "--help" || a === "-h") {
      process.stdout.write(
        "usage: tsx scripts/install-spire.ts [--tools-dir DIR] [--no-path] [--no-go]\n" +
          `Provides spire-server and spire-agent ${pin.version}; prints their paths as JSON.\n`,
      );
      return 0;
    } else {
      process.stderr.write(`unknown argument: ${a}\n`);
      return 2;
    }
  }
  const started = Date.now();
  try {
    const bins = await ensureSpire(opts);
    const seconds = Math.round((Date.now() - started) / 100) / 10;
    process.stdout.write(`${JSON.stringify({ ...bins, seconds })}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 1;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
