/**
 * Two host processes, one VM (issue 9, defects 3 and 4): each builds the product's services in
 * run-command mode and re-attests three apps at once. The per-VM blob lease in the hosts' storage
 * (Azurite) keeps the simulator at one run-command at a time with no wedge, and nothing ARM
 * served or was sent holds a join token or a private key. Without the lease (only the
 * in-process queue) the simulator sees two run-commands at once.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { runTwoHosts } from "../../sandbox/spire/runcommand-hosts.js";

it("two host processes re-attest six apps through one VM one run-command at a time", async () => {
  const workDir = mkdtempSync(join(tmpdir(), "rc-hosts-"));
  try {
    const r = await runTwoHosts({ workDir });
    console.log(JSON.stringify({ figures: "runcommand two hosts", ...r }));
    expect(r.hosts.map((h) => [h.host, h.exitCode, h.error])).toEqual([
      ["h1", 0, undefined],
      ["h2", 0, undefined],
    ]);
    expect(r.apps).toBe(6);
    // Six first tokens (their agents evicted by hash) and six new ones.
    expect(r.tokens).toBe(12);
    expect(r.agentsEvicted).toBe(6);
    expect(r.runCommandsCreated).toBe(24);
    expect(r.maxConcurrentRunCommands).toBe(1);
    expect(r.wedges).toBe(0);
    expect(r.runCommandResponsesScanned).toBeGreaterThan(18);
    expect(r.secretsInArm).toBe(0);
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}, 240_000);
