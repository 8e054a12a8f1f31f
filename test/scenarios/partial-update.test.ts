import { scenarioTest } from "./run-scenario.js";

scenarioTest("partial-update");
