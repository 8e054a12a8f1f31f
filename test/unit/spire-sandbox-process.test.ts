import { appendFileSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseFetchX509Output, splitDerChain } from "../../sandbox/spire/agent.js";
import { agentConfig, goDuration, serverConfig } from "../../sandbox/spire/config.js";
import {
  assertSocketPath,
  LogTail,
  ManagedProcess,
  makeShortTempDir,
  removeOwnedDir,
} from "../../sandbox/spire/process.js";

const dir = makeShortTempDir("spt-");
afterAll(async () => {
  await removeOwnedDir(dir);
});

describe("sandbox process helpers", () => {
  it("makes short temp dirs that fit unix sockets, and refuses long socket paths", () => {
    expect(dir.length).toBeLessThan(30);
    expect(assertSocketPath(join(dir, "api.sock"))).toBe(join(dir, "api.sock"));
    expect(() => assertSocketPath(`/tmp/${"x".repeat(120)}/api.sock`)).toThrow(/unix socket limit/);
    expect(() => assertSocketPath("relative.sock")).toThrow(/absolute/);
  });

  it("tails a JSON log file and waits for a line", async () => {
    const file = join(dir, "tail.log");
    writeFileSync(file, "");
    const tail = new LogTail(file, 20).start();
    try {
      const waiting = tail.waitFor((l) => l.msg === "Signed X509 SVID", { timeoutMs: 5_000 });
      appendFileSync(file, '{"level":"debug","msg":"other"}\n{"level":"debug","msg":"Signed X5');
      await new Promise((r) => setTimeout(r, 60));
      appendFileSync(file, '09 SVID","spiffe_id":"spiffe://x/y"}\nplain text\n');
      const line = await waiting;
      expect(line.json?.spiffe_id).toBe("spiffe://x/y");
      expect(line.level).toBe("debug");
      expect(tail.find("plain text")?.json).toBeUndefined();
      const mark = tail.mark();
      await expect(tail.waitFor("other", { since: mark, timeoutMs: 100 })).rejects.toThrow(
        /timed out after 100 ms/,
      );
    } finally {
      tail.stop();
    }
  });

  it("keeps a bounded number of lines with stable indexes", async () => {
    const file = join(dir, "long.log");
    writeFileSync(file, `${Array.from({ length: 25 }, (_, i) => `{"msg":"line ${i}"}`).join("\n")}\n`);
    const tail = new LogTail(file, 20, 10);
    await tail.poll();
    expect(tail.mark()).toBe(25);
    expect(tail.lines.length).toBeLessThanOrEqual(10);
    expect(tail.find(/line 2[0-9]/, 21)?.msg).toBe("line 21");
    expect(tail.find("line 3", 0)).toBeUndefined(); // dropped
    expect(tail.lines.at(-1)?.index).toBe(24);
  });

  it("stops waiting when the process exits", async () => {
    const file = join(dir, "exit.log");
    const proc = new ManagedProcess("sh", "sh", ["-c", `echo started > ${file}; exit 3`], {
      consoleFile: join(dir, "c.log"),
    });
    const tail = new LogTail(file, 20).start();
    try {
      await expect(tail.waitFor("never", { timeoutMs: 10_000, abort: proc.exited })).rejects.toThrow(
        /process exited/,
      );
      expect(await proc.exited).toEqual({ code: 3, signal: null });
    } finally {
      tail.stop();
    }
  });

  it("pauses, resumes and stops a child (SIGTERM, then SIGKILL when ignored)", async () => {
    const ready = join(dir, "ready");
    const proc = new ManagedProcess(
      "sleeper",
      "sh",
      ["-c", `trap '' TERM; touch ${ready}; while :; do sleep 0.05; done`],
      {
        consoleFile: join(dir, "s.log"),
      },
    );
    await expect.poll(() => existsSync(ready), { timeout: 5_000 }).toBe(true);
    expect(proc.running).toBe(true);
    proc.pause();
    proc.resume();
    const exit = await proc.stop(300);
    expect(exit.signal).toBe("SIGKILL");
    expect(proc.running).toBe(false);
  });

  it("writes configs with durations, never insecure_bootstrap", () => {
    expect(goDuration(30, "x")).toBe("30s");
    expect(goDuration("1h30m", "x")).toBe("1h30m");
    expect(() => goDuration("1 hour", "x")).toThrow(/Go duration/);
    const server = serverConfig({
      trustDomain: "example.org",
      dataDir: "/d",
      socketPath: "/d/api.sock",
      bindAddress: "127.0.0.1",
      bindPort: 1234,
      logFile: "/d/log",
      logLevel: "DEBUG",
      caTtl: 120,
      adminIds: ["spiffe://example.org/admin"],
    });
    expect(server).toContain('ca_ttl = "120s"');
    expect(server).toContain('admin_ids = ["spiffe://example.org/admin"]');
    expect(server).toContain('KeyManager "disk"');
    const agent = agentConfig({
      trustDomain: "example.org",
      serverAddress: "127.0.0.1",
      serverPort: 1234,
      trustBundlePath: "/b.pem",
      dataDir: "/a",
      socketPath: "/a/s",
      logFile: "/a/log",
      logLevel: "DEBUG",
      joinTokenFile: "/a/t",
    });
    expect(agent).toContain('trust_bundle_path = "/b.pem"');
    expect(agent).not.toContain("insecure_bootstrap =");
    expect(agent).toContain('WorkloadAttestor "unix"');
  });

  it("splits a DER chain and reads fetch x509 output", () => {
    const a = Buffer.from([0x30, 0x03, 1, 2, 3]);
    const b = Buffer.from([0x30, 0x81, 0x02, 9, 9]);
    expect(splitDerChain(Buffer.concat([a, b]))).toEqual([a, b]);
    expect(() => splitDerChain(Buffer.from([0x02, 0x01, 0]))).toThrow(/not a DER SEQUENCE/);
    expect(parseFetchX509Output('{"svids":[]}')).toEqual([]);
  });

  it("removes owned dirs", async () => {
    const d = makeShortTempDir("spt-");
    await removeOwnedDir(d);
    expect(existsSync(d)).toBe(false);
  });
});
