import { scenarioTest } from "./run-scenario.js";

scenarioTest("ca-reset-detected");
