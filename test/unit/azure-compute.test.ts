/**
 * The VM side of run-commands without SPIRE: the script executor (clean environment, tails,
 * timeouts that kill the whole process group) and the docker shim against a fake spire-server
 * binary that prints the arguments it got.
 */
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DockerDaemon,
  installDockerShim,
  type SpireServerContainer,
} from "../../sandbox/azure/compute/docker.js";
import { lastBytes, runScript } from "../../sandbox/azure/compute/executor.js";
import { makeShortTempDir, removeOwnedDir } from "../../sandbox/spire/process.js";

let dir: string;

beforeAll(() => {
  dir = makeShortTempDir("sa-azu-");
});
afterAll(async () => {
  await removeOwnedDir(dir);
});

describe("script executor", () => {
  it("runs bash with only the given environment and reports exit code and streams", async () => {
    process.env.SIM_UNIT_LEAK = "leak";
    try {
      const work = join(dir, "run1");
      mkdirSync(work);
      const run = runScript({
        dir: work,
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion
        script: 'echo "a=$A leak=${SIM_UNIT_LEAK:-none} pwd=$(pwd)"; echo e >&2; exit 4',
        env: { PATH: "/usr/bin:/bin", A: "1 2; $(x)" },
      });
      const res = await run.done;
      expect(res).toMatchObject({
        exitCode: 4,
        stdout: `a=1 2; $(x) leak=none pwd=${work}\n`,
        stderr: "e\n",
        timedOut: false,
      });
    } finally {
      delete process.env.SIM_UNIT_LEAK;
    }
  });

  it("refuses environment names that are not variables", () => {
    expect(() => runScript({ dir, script: "true", env: { "A;B": "x" } })).toThrow(
      /invalid environment variable name/,
    );
  });

  it("a timeout kills the script and its background children", async () => {
    const work = join(dir, "run2");
    mkdirSync(work);
    const started = Date.now();
    const res = await runScript({
      dir: work,
      script: "sleep 30 & echo $! > bg.pid; sleep 30",
      env: { PATH: "/usr/bin:/bin" },
      timeoutMs: 300,
    }).done;
    expect(res.timedOut).toBe(true);
    expect(Date.now() - started).toBeLessThan(5_000);
    const pid = Number(
      spawnSync("cat", [join(work, "bg.pid")])
        .stdout.toString()
        .trim(),
    );
    expect(pid).toBeGreaterThan(0);
    // Gone, or a zombie waiting for its (re)parent to reap it; never still sleeping.
    const alive = () => {
      try {
        return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
      } catch {
        return false;
      }
    };
    const deadline = Date.now() + 2_000;
    while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(alive()).toBe(false);
  });

  it("cancel kills a running script", async () => {
    const work = join(dir, "run3");
    mkdirSync(work);
    const run = runScript({ dir: work, script: "echo started; sleep 30", env: { PATH: "/usr/bin:/bin" } });
    setTimeout(() => run.cancel(), 200);
    const res = await run.done;
    expect(res).toMatchObject({ canceled: true, stdout: "started\n" });
  });

  it("keeps the last bytes of a stream", () => {
    expect(lastBytes("abcdef", 3)).toBe("def");
    expect(lastBytes("abc", 10)).toBe("abc");
  });
});

describe("docker shim", () => {
  let daemon: DockerDaemon;
  let binDir: string;
  const calls: string[] = [];
  let state: "running" | "exited" | "removed" = "running";
  const socket = () => join(dir, "docker.sock");

  beforeAll(async () => {
    const fakeServer = join(dir, "fake-spire-server");
    // Prints its arguments one per line and echoes stdin; exits 3 on "fail".
    writeFileSync(
      fakeServer,
      '#!/usr/bin/env bash\nfor a in "$@"; do echo "arg:$a"; done\nif [ "$1" = stdin ]; then cat; fi\n[ "$1" = fail ] && exit 3\nexit 0\n',
    );
    chmodSync(fakeServer, 0o755);
    const container: SpireServerContainer = {
      serverBin: fakeServer,
      socketPath: "/sock/api.sock",
      state: () => state,
      restart: async () => {
        calls.push("restart");
        state = "running";
      },
      stop: async () => {
        calls.push("stop");
        state = "exited";
      },
      start: async () => {
        calls.push("start");
        state = "running";
      },
      remove: async () => {
        calls.push("remove");
        state = "removed";
      },
      create: async () => {
        calls.push("create");
        state = "running";
      },
      logTail: (n) => ["l1", "l2", "l3"].slice(-n).join("\n"),
      pause: () => calls.push("pause"),
      resume: () => calls.push("resume"),
    };
    daemon = new DockerDaemon(
      socket(),
      () => container,
      () => {},
    );
    await daemon.listen();
    binDir = installDockerShim(join(dir, "bin"), socket());
  });
  afterAll(async () => {
    await daemon?.close();
  });

  // Asynchronous: the daemon answering the shim lives in this process.
  const docker = (args: string[], input?: string) =>
    new Promise<{ code: number | null; out: string; err: string }>((resolve, reject) => {
      const child = spawn(join(binDir, "docker"), args, { stdio: ["pipe", "pipe", "pipe"] });
      let out = "";
      let err = "";
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      child.stdout.on("data", (c: Buffer) => {
        out += c.toString();
      });
      child.stderr.on("data", (c: Buffer) => {
        err += c.toString();
      });
      child.on("error", reject);
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code, out, err });
      });
      child.stdin.end(input ?? "");
    });

  it("docker exec runs the server binary with -socketPath of the real server, passing stdin and the exit code", async () => {
    const r = await docker([
      "exec",
      "-i",
      "spire-server",
      "/opt/spire/bin/spire-server",
      "entry",
      "show",
      "-spiffeID",
      "spiffe://td/x y",
    ]);
    expect(r.code).toBe(0);
    expect(r.out).toBe(
      "arg:entry\narg:show\narg:-spiffeID\narg:spiffe://td/x y\narg:-socketPath\narg:/sock/api.sock\n",
    );
    const replaced = await docker([
      "exec",
      "spire-server",
      "spire-server",
      "healthcheck",
      "-socketPath",
      "/tmp/spire-server/private/api.sock",
    ]);
    expect(replaced.out).toBe("arg:healthcheck\narg:-socketPath\narg:/sock/api.sock\n");
    expect(
      (await docker(["exec", "-i", "spire-server", "/opt/spire/bin/spire-server", "stdin"], "from-stdin"))
        .out,
    ).toContain("from-stdin");
    expect((await docker(["exec", "spire-server", "/opt/spire/bin/spire-server", "fail"])).code).toBe(3);
  });

  it("docker exec of anything but the server binary, or into an unknown container, fails like Docker", async () => {
    const cat = await docker(["exec", "spire-server", "cat", "/etc/passwd"]);
    expect(cat.code).toBe(126);
    expect(cat.err).toContain('exec: "cat": executable file not found in $PATH');
    const other = await docker(["exec", "../../etc", "/opt/spire/bin/spire-server", "healthcheck"]);
    expect(other.code).toBe(1);
    expect(other.err).toContain("No such container: ../../etc");
  });

  it("restart, stop, start, rm and run act on the container; exec into a stopped one fails", async () => {
    expect((await docker(["restart", "spire-server"])).out).toBe("spire-server\n");
    const rmRunning = await docker(["rm", "spire-server"]);
    expect(rmRunning.code).toBe(1);
    expect(rmRunning.err).toContain("You cannot remove a running container");
    expect((await docker(["stop", "spire-server"])).code).toBe(0);
    const exec = await docker(["exec", "spire-server", "/opt/spire/bin/spire-server", "healthcheck"]);
    expect(exec.err).toMatch(/container \w+ is not running/);
    expect((await docker(["inspect", "-f", "{{.State.Running}}", "spire-server"])).out).toBe("false\n");
    expect((await docker(["start", "spire-server"])).code).toBe(0);
    const conflict = await docker(["run", "-d", "--name", "spire-server", "img"]);
    expect(conflict.err).toContain('The container name "/spire-server" is already in use');
    expect((await docker(["rm", "-f", "spire-server"])).code).toBe(0);
    expect((await docker(["ps", "-a", "-q"])).out).toBe("");
    expect((await docker(["run", "-d", "--name=spire-server", "img"])).code).toBe(0);
    expect((await docker(["ps"])).out).toMatch(/Up\s+spire-server/);
    expect((await docker(["logs", "--tail", "2", "spire-server"])).out).toBe("l2\nl3\n");
    expect(calls).toEqual(["restart", "stop", "start", "remove", "create"]);
  });

  it("other docker commands are refused", async () => {
    const r = await docker(["cp", "spire-server:/etc/passwd", "."]);
    expect(r.code).toBe(1);
    expect(r.err).toContain("'cp' is not a docker command");
  });
});
