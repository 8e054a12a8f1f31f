import { scenarioTest } from "./run-scenario.js";

scenarioTest("runcommand-wedge");
