/**
 * The VM's Docker, as far as run-command scripts use it: a `docker` shim on the script's PATH
 * that talks to a small control server on a unix socket in the VM folder (like
 * /var/run/docker.sock). `docker exec spire-server /opt/spire/bin/spire-server ...` runs the real
 * local spire-server CLI against the real server's admin socket; restart/stop/start/rm/run act on
 * the server process (rm destroys its data and CA: learning #25).
 */
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { join } from "node:path";

/** The `spire-server` Docker container of the seed's VM, backed by a real local server process. */
export interface SpireServerContainer {
  /** The host binary `docker exec spire-server /opt/spire/bin/spire-server` runs. */
  readonly serverBin: string;
  /** Its admin API socket; the shim appends `-socketPath` with it. */
  readonly socketPath: string;
  state(): "running" | "exited" | "removed";
  /** docker restart: stop and start, keeping the data dir. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** docker rm: the container and its data dir (datastore, CA keys) are gone. */
  remove(): Promise<void>;
  /** docker run after rm: a fresh server with empty data: a new CA. */
  create(): Promise<void>;
  /** The last lines of its console log (docker logs). */
  logTail(lines: number): string;
  /** Fault: the server process hangs (SIGSTOP): Docker still says running, nothing answers (#23). */
  pause(): void;
  resume(): void;
}

export const SPIRE_SERVER_CONTAINER = "spire-server";
const CONTAINER_ID = "5f1e0c2b7d3a";

/** The shim itself: plain JS run by this Node, no dependencies; it never uses a shell. */
const SHIM_SOURCE = String.raw`
import { request } from "node:http";
import { spawn } from "node:child_process";

const SOCKET = __SOCKET__;
const SERVER_PATHS = new Set(["/opt/spire/bin/spire-server", "spire-server"]);

function call(method, path) {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: SOCKET, method, path }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

function fail(message, code = 1) {
  process.stderr.write(message + "\n");
  process.exit(code);
}

function daemonError(res) {
  let message = res.body;
  try { message = JSON.parse(res.body).message; } catch {}
  fail("Error response from daemon: " + message);
}

async function inspect(name) {
  const res = await call("GET", "/containers/" + encodeURIComponent(name) + "/json");
  if (res.status !== 200) daemonError(res);
  return JSON.parse(res.body);
}

// Flags that take a value, for the few commands scripts use.
const VALUE_FLAGS = new Set(["-u", "--user", "-w", "--workdir", "-e", "--env", "--name", "-f", "--format", "--filter", "--tail", "-n", "--time", "-t", "--log-driver", "--log-opt", "-v", "--volume", "-p", "--publish", "--restart", "--network"]);

function splitFlags(args, valueFlags) {
  const flags = [];
  let i = 0;
  while (i < args.length && args[i].startsWith("-")) {
    const a = args[i];
    if (a.includes("=")) { flags.push([a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)]); i += 1; continue; }
    if (valueFlags.has(a)) { flags.push([a, args[i + 1]]); i += 2; continue; }
    flags.push([a, true]);
    i += 1;
  }
  return { flags, rest: args.slice(i) };
}

function withSocketPath(args, socketPath) {
  const out = [];
  let replaced = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "-socketPath" || a === "--socketPath") { out.push(a, socketPath); i += 1; replaced = true; continue; }
    if (a.startsWith("-socketPath=") || a.startsWith("--socketPath=")) { out.push("-socketPath=" + socketPath); replaced = true; continue; }
    out.push(a);
  }
  const sub = args[0];
  if (!replaced && sub !== "run" && sub !== "validate" && sub !== undefined && !sub.startsWith("-")) out.push("-socketPath", socketPath);
  return out;
}

async function main() {
  const [cmd, ...args] = process.argv.slice(2);
  switch (cmd) {
    case "exec": {
      // -t is a boolean for exec
      const { rest } = splitFlags(args, new Set(["-u", "--user", "-w", "--workdir", "-e", "--env"]));
      const [name, program, ...programArgs] = rest;
      if (!name || !program) fail('"docker exec" requires at least 2 arguments.');
      const c = await inspect(name);
      if (!c.State.Running) fail("Error response from daemon: container " + c.Id + " is not running");
      if (!SERVER_PATHS.has(program)) {
        fail('OCI runtime exec failed: exec failed: unable to start container process: exec: "' + program + '": executable file not found in $PATH: unknown', 126);
      }
      const child = spawn(c.Exec.bin, withSocketPath(programArgs, c.Exec.socketPath), { stdio: "inherit" });
      child.on("error", (e) => fail("exec failed: " + e.message, 126));
      child.on("exit", (code, signal) => process.exit(code ?? (signal ? 128 + 9 : 1)));
      return;
    }
    case "restart":
    case "stop":
    case "start":
    case "kill": {
      const { rest } = splitFlags(args, new Set(["-t", "--time", "-s", "--signal"]));
      if (rest.length === 0) fail('"docker ' + cmd + '" requires at least 1 argument.');
      for (const name of rest) {
        const res = await call("POST", "/containers/" + encodeURIComponent(name) + "/" + cmd);
        if (res.status >= 300) daemonError(res);
        process.stdout.write(name + "\n");
      }
      return;
    }
    case "rm": {
      const { flags, rest } = splitFlags(args, new Set());
      const force = flags.some(([f]) => f === "-f" || f === "--force");
      if (rest.length === 0) fail('"docker rm" requires at least 1 argument.');
      for (const name of rest) {
        const res = await call("DELETE", "/containers/" + encodeURIComponent(name) + (force ? "?force=1" : ""));
        if (res.status >= 300) daemonError(res);
        process.stdout.write(name + "\n");
      }
      return;
    }
    case "run": {
      const { flags } = splitFlags(args, VALUE_FLAGS);
      const name = flags.find(([f]) => f === "--name")?.[1];
      if (!name) fail("docker run: the sandbox VM only runs named containers (--name spire-server)", 125);
      const res = await call("POST", "/containers/create?name=" + encodeURIComponent(name));
      if (res.status >= 300) daemonError(res);
      process.stdout.write(JSON.parse(res.body).Id + "\n");
      return;
    }
    case "ps": {
      const { flags } = splitFlags(args, VALUE_FLAGS);
      const all = flags.some(([f]) => f === "-a" || f === "--all");
      const quiet = flags.some(([f]) => f === "-q" || f === "--quiet");
      const res = await call("GET", "/containers/json" + (all ? "?all=1" : ""));
      const list = JSON.parse(res.body);
      if (quiet) { for (const c of list) process.stdout.write(c.Id + "\n"); return; }
      process.stdout.write("CONTAINER ID   IMAGE                                 STATUS         NAMES\n");
      for (const c of list) process.stdout.write(c.Id + "   ghcr.io/spiffe/spire-server:1.15.3   " + c.Status.padEnd(14) + " " + c.Name + "\n");
      return;
    }
    case "inspect": {
      const { flags, rest } = splitFlags(args, VALUE_FLAGS);
      const format = flags.find(([f]) => f === "-f" || f === "--format")?.[1];
      for (const name of rest) {
        const c = await inspect(name);
        if (format === undefined) process.stdout.write(JSON.stringify([{ Id: c.Id, Name: "/" + c.Name, State: c.State }], null, 2) + "\n");
        else if (/\.State\.Running/.test(format)) process.stdout.write(String(c.State.Running) + "\n");
        else if (/\.State\.Status/.test(format)) process.stdout.write(c.State.Status + "\n");
        else fail("template: the sandbox docker supports only {{.State.Running}} and {{.State.Status}}");
      }
      return;
    }
    case "logs": {
      const { flags, rest } = splitFlags(args, VALUE_FLAGS);
      const tail = flags.find(([f]) => f === "--tail" || f === "-n")?.[1] ?? "all";
      const name = rest[0];
      if (!name) fail('"docker logs" requires exactly 1 argument.');
      const res = await call("GET", "/containers/" + encodeURIComponent(name) + "/logs?tail=" + encodeURIComponent(tail));
      if (res.status !== 200) daemonError(res);
      process.stdout.write(res.body);
      return;
    }
    case "version":
    case "--version":
      process.stdout.write("Docker version 27.0.0-sandbox, build simulated\n");
      return;
    default:
      fail("docker: '" + cmd + "' is not a docker command.\nSee 'docker --help'");
  }
}

main().catch((e) => fail("Cannot connect to the Docker daemon at unix://" + SOCKET + ". Is the docker daemon running? (" + e.message + ")"));
`;

/** Writes `<binDir>/docker` (and its JS) for scripts; returns binDir for PATH. */
export function installDockerShim(binDir: string, socketPath: string, nodeBin = process.execPath): string {
  mkdirSync(binDir, { recursive: true });
  const js = join(binDir, "docker-shim.mjs");
  writeFileSync(js, SHIM_SOURCE.replace("__SOCKET__", JSON.stringify(socketPath)));
  const sh = join(binDir, "docker");
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  writeFileSync(sh, `#!/usr/bin/env bash\nexec ${quote(nodeBin)} ${quote(js)} "$@"\n`);
  chmodSync(sh, 0o755);
  return binDir;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.statusCode = status;
  res.setHeader("content-type", typeof body === "string" ? "text/plain" : "application/json");
  res.end(text);
}

/**
 * The daemon side: a unix-socket HTTP server answering the shim. Only the one container name is
 * known; names never become paths, arguments or shell text on this side.
 */
export class DockerDaemon {
  private server: Server | undefined;

  constructor(
    readonly socketPath: string,
    private readonly container: () => SpireServerContainer | undefined,
    private readonly log: (line: string) => void,
  ) {}

  async listen(): Promise<void> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => send(res, 500, { message: (err as Error).message }));
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.socketPath, () => {
        server.off("error", reject);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private status(c: SpireServerContainer): { Status: string; Running: boolean } {
    const s = c.state();
    return { Status: s === "running" ? "running" : "exited", Running: s === "running" };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    for await (const _ of req) {
      // no request bodies are used
    }
    const url = new URL(req.url ?? "/", "http://docker");
    const method = req.method ?? "GET";
    const c = this.container();
    const present = c !== undefined && c.state() !== "removed";
    if (method === "GET" && url.pathname === "/containers/json") {
      const all = url.searchParams.get("all") === "1";
      const list =
        present && (all || c.state() === "running")
          ? [
              {
                Id: CONTAINER_ID,
                Name: SPIRE_SERVER_CONTAINER,
                Status: c.state() === "running" ? "Up" : "Exited (0)",
              },
            ]
          : [];
      send(res, 200, list);
      return;
    }
    if (method === "POST" && url.pathname === "/containers/create") {
      const name = url.searchParams.get("name") ?? "";
      if (name !== SPIRE_SERVER_CONTAINER || !c) {
        send(res, 404, { message: `the sandbox VM can only run the ${SPIRE_SERVER_CONTAINER} container` });
        return;
      }
      if (present) {
        send(res, 409, {
          message: `Conflict. The container name "/${name}" is already in use by container "${CONTAINER_ID}". You have to remove (or rename) that container to be able to reuse that name.`,
        });
        return;
      }
      this.log("docker run spire-server: a fresh server (new data dir, new CA)");
      await c.create();
      send(res, 201, { Id: CONTAINER_ID });
      return;
    }
    const m = /^\/containers\/([^/]+)(?:\/(json|restart|stop|start|kill|logs))?$/.exec(url.pathname);
    const name = m ? decodeURIComponent(m[1] ?? "") : "";
    if (!m || name !== SPIRE_SERVER_CONTAINER || !present || !c) {
      send(res, 404, { message: `No such container: ${name}` });
      return;
    }
    const action = m[2];
    if (method === "GET" && action === "json") {
      send(res, 200, {
        Id: CONTAINER_ID,
        Name: SPIRE_SERVER_CONTAINER,
        State: this.status(c),
        Exec: { bin: c.serverBin, socketPath: c.socketPath },
      });
      return;
    }
    if (method === "GET" && action === "logs") {
      const tail = url.searchParams.get("tail");
      const n = tail === null || tail === "all" ? 10_000 : Math.max(0, Number.parseInt(tail, 10) || 0);
      const text = c.logTail(n);
      send(res, 200, text === "" || text.endsWith("\n") ? text : `${text}\n`);
      return;
    }
    if (
      method === "POST" &&
      (action === "restart" || action === "stop" || action === "start" || action === "kill")
    ) {
      this.log(`docker ${action} spire-server`);
      if (action === "restart") await c.restart();
      else if (action === "start") await c.start();
      else await c.stop();
      send(res, 204, "");
      return;
    }
    if (method === "DELETE" && action === undefined) {
      if (c.state() === "running" && url.searchParams.get("force") !== "1") {
        send(res, 409, {
          message: `You cannot remove a running container ${CONTAINER_ID}. Stop the container before attempting removal or force remove`,
        });
        return;
      }
      this.log("docker rm spire-server: its data dir (datastore, CA keys) is destroyed");
      await c.remove();
      send(res, 204, "");
      return;
    }
    send(res, 405, { message: `unsupported: ${method} ${url.pathname}` });
  }
}
