import { hostResume } from "./host-resume.js";
import type { Scenario } from "./types.js";

/** Every scenario the sandbox CLI knows, in the order `list` prints them. */
export const scenarios: Scenario[] = [hostResume];

export function findScenario(name: string): Scenario | undefined {
  return scenarios.find((s) => s.name === name);
}
