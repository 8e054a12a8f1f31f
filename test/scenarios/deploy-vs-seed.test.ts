import { scenarioTest } from "./run-scenario.js";

// Issue 11 stays open on this scenario: with the gRPC API the product beats the seed 9.5x at N = 5,
// but in run-command mode it is 3.3x (the target is 5x), and at N = 1 the Event Grid rotation that
// the deploy's first bundle write triggers adds a 4th run-command. Run it by hand with
// `npm run sandbox -- scenario deploy-vs-seed --json`; this turns back into a passing test when
// both are fixed.
scenarioTest("deploy-vs-seed", undefined, {
  knownGap: "run-command mode: 3.3x the seed at N = 5 (target 5x), 4 run-commands at N = 1 (target 3)",
});
