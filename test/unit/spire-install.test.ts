import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { binaryVersion, ensureSpire, SPIRE_VERSION, versionMatches } from "../../scripts/install-spire.js";
import pin from "../../scripts/spire-version.json" with { type: "json" };

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A stand-in binary that prints `version` on stderr for --version, like SPIRE does. */
function fakeBinary(dir: string, name: string, version: string): string {
  const file = join(dir, name);
  writeFileSync(file, `#!/bin/sh\n[ "$1" = --version ] && echo "${version}" >&2\nexit 0\n`);
  chmodSync(file, 0o755);
  return file;
}

describe("install-spire", () => {
  it("pins one version in one place", () => {
    expect(SPIRE_VERSION).toBe(pin.version);
    expect(pin.version).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it.each([
    ["1.15.3", true],
    ["1.15.3-dev-unk", true],
    ["1.15.3-dev-abc123", true],
    ["  1.15.3\n", true],
    ["1.15.30", false],
    ["1.15.2", false],
    ["1.15.3-rc1", false],
    ["", false],
  ])("versionMatches(%j) is %s", (printed, ok) => {
    expect(versionMatches(printed, "1.15.3")).toBe(ok);
  });

  it("reads the version SPIRE prints on stderr", () => {
    const d = mkdtempSync(join(tmpdir(), "spire-install-"));
    dirs.push(d);
    expect(binaryVersion(fakeBinary(d, "spire-server", "1.15.3-dev-unk"))).toBe("1.15.3-dev-unk");
    expect(binaryVersion(join(d, "missing"))).toBeUndefined();
  });

  it("reuses matching binaries from the tools cache without building", async () => {
    const tools = mkdtempSync(join(tmpdir(), "spire-tools-"));
    dirs.push(tools);
    const bin = join(tools, SPIRE_VERSION, "bin");
    mkdirSync(bin, { recursive: true });
    fakeBinary(bin, "spire-server", `${SPIRE_VERSION}-dev-unk`);
    fakeBinary(bin, "spire-agent", `${SPIRE_VERSION}-dev-unk`);
    const lines: string[] = [];
    const got = await ensureSpire({ toolsDir: tools, usePath: false, log: (l) => lines.push(l) });
    expect(got).toEqual({
      serverBin: join(bin, "spire-server"),
      agentBin: join(bin, "spire-agent"),
      version: `${SPIRE_VERSION}-dev-unk`,
      source: "cache",
    });
    expect(lines).toEqual([]);
  });

  it("reuses matching binaries on PATH, and ignores other versions there", async () => {
    const onPath = mkdtempSync(join(tmpdir(), "spire-path-"));
    const tools = mkdtempSync(join(tmpdir(), "spire-tools-"));
    dirs.push(onPath, tools);
    fakeBinary(onPath, "spire-server", SPIRE_VERSION);
    fakeBinary(onPath, "spire-agent", SPIRE_VERSION);
    const oldPath = process.env.PATH;
    process.env.PATH = `${onPath}:${oldPath}`;
    try {
      const got = await ensureSpire({ toolsDir: tools, log: () => {} });
      expect(got.source).toBe("path");
      expect(got.serverBin).toBe(join(onPath, "spire-server"));
    } finally {
      process.env.PATH = oldPath;
    }
  });
});
