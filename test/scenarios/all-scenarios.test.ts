import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { scenarios } from "../../sandbox/scenarios/index.js";

// Every scenario the sandbox CLI offers must keep passing; host-resume has its own, stricter test.
const covered = scenarios.filter((s) => s.name !== "host-resume");

it.each(covered.map((s) => [s.name, s] as const))(
  "scenario %s passes in a fresh environment",
  async (_name, scenario) => {
    const workDir = mkdtempSync(join(tmpdir(), `scenario-${scenario.name}-`));
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), scenario.timeoutSeconds * 1000);
    try {
      const result = await scenario.run({ workDir, log: () => undefined, signal: controller.signal });
      expect(result, JSON.stringify(result)).toMatchObject({ pass: true });
    } finally {
      clearTimeout(timer);
      rmSync(workDir, { recursive: true, force: true });
    }
  },
  1_800_000,
);
