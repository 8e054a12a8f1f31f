import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { hostResume } from "../../sandbox/scenarios/host-resume.js";

it("host-resume: a SIGKILLed host resumes the orchestration and re-runs no completed activity", async () => {
  const workDir = mkdtempSync(join(tmpdir(), "host-resume-"));
  try {
    const result = await hostResume.run({
      workDir,
      log: () => undefined,
      signal: new AbortController().signal,
    });
    expect(result).toMatchObject({ resumed: true, activitiesRerun: 0, pass: true });
    expect(result.completedBeforeKill).toBeGreaterThanOrEqual(3);
    expect(Number(result.completedBeforeKill) + Number(result.activitiesAfterRestart)).toBeGreaterThanOrEqual(
      8,
    );
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
});
