import { existsSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import { scenarios } from "../../sandbox/scenarios/index.js";

// Every scenario the sandbox CLI offers runs in CI: each has its own test file (see run-scenario.ts).
it.each(scenarios.map((s) => s.name))("scenario %s has a test file", (name) => {
  expect(existsSync(join(import.meta.dirname, "..", "scenarios", `${name}.test.ts`))).toBe(true);
});
