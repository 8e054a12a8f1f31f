import { scenarioTest } from "./run-scenario.js";

scenarioTest("runcommand-two-hosts");
