import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { expect, it } from "vitest";
import { describeSettings } from "../../shared/config.js";

const DOC = resolve(import.meta.dirname, "../../docs/configuration.md");

function render(): string {
  return [
    "# Configuration",
    "",
    "Every setting spire-autopilot reads, generated from `shared/config.ts` (the same table validates",
    "them when the app loads). Regenerate with `UPDATE_DOCS=1 npx vitest run test/unit/config-docs.test.ts`.",
    "",
    describeSettings().trim(),
    "",
  ].join("\n");
}

it("docs/configuration.md lists exactly the settings the app validates", () => {
  if (process.env.UPDATE_DOCS === "1") writeFileSync(DOC, render());
  expect(readFileSync(DOC, "utf8")).toBe(render());
});
