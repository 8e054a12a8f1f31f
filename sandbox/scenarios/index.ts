import { hostResume } from "./host-resume.js";
import { partialUpdate } from "./partial-update.js";
import { runcommandWedge } from "./runcommand-wedge.js";
import { spireBasics } from "./spire-basics.js";
import type { Scenario } from "./types.js";

/** Every scenario the sandbox CLI knows, in the order `list` prints them. */
export const scenarios: Scenario[] = [hostResume, spireBasics, partialUpdate, runcommandWedge];

export function findScenario(name: string): Scenario | undefined {
  return scenarios.find((s) => s.name === name);
}
